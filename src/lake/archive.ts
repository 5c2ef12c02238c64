/**
 * The archive area of a dataset: files that compaction or retention replaced, kept (optionally
 * compressed) beside an archive manifest per partition that records where each came from, when
 * and why, and its checksum.
 *
 * ```
 * _friday/<dataset>/_archive/<partition path>/<original name>.gz|.zst|.archived   the original Parquet bytes
 * _friday/<dataset>/_archive/<partition path>/_archive.json               archive manifest (versioned like partition manifests)
 * ```
 *
 * Archiving is idempotent: the object key depends only on the original name (file names are
 * unique), and a file already in the manifest is skipped, so a re-run after a crash rewrites the
 * same objects and records each once.
 */

import pLimit from 'p-limit'
import { allOwned } from '../concurrency.js'
import { codecSuffix, compress } from '../core/archive-codec.js'
import { CommitConflictError } from '../core/errors.js'
import { newId } from '../core/ids.js'
import { archiveRoot } from '../core/layout.js'
import type { ArchiveCodec } from '../core/rotation-policy.js'
import type { ArchiveEntry, ManifestFile } from '../core/types.js'
import { type LakeContext, partitionDir } from './context.js'
import { versionKey } from './manifest-log.js'

export interface ArchiveDoc {
  format: 'friday.archive-manifest'
  formatVersion: 1
  dataset: string
  partition: string
  version: number
  commitId: string
  committedAt: string
  entries: ArchiveEntry[]
}

export { archiveRoot }
export const archiveDir = (ds: string, path: string): string => `${archiveRoot(ds)}${path}`
export const archiveBase = (ds: string, path: string): string => `${archiveDir(ds, path)}/_archive`
const ARCHIVE_DOC_RE = /^(.*)\/_archive(?:\.v\d{20})?\.json$/

/** Chain versions kept besides the newest. */
const KEEP = 4

export async function loadArchive(ctx: LakeContext, ds: string, path: string): Promise<ArchiveDoc | null> {
  return (await ctx.log.load<ArchiveDoc>(archiveBase(ds, path))).doc
}

/** Applies `change` to the partition's archive manifest with a conditional commit, retrying on a lost race. */
export async function updateArchive(
  ctx: LakeContext,
  ds: string,
  path: string,
  change: (entries: ArchiveEntry[]) => ArchiveEntry[] | null,
): Promise<ArchiveDoc | null> {
  const base = archiveBase(ds, path)
  for (let attempt = 0; attempt < 30; attempt++) {
    const { doc, token } = await ctx.log.load<ArchiveDoc>(base)
    const entries = change(doc?.entries ?? [])
    if (entries === null) return doc
    const next: ArchiveDoc = {
      format: 'friday.archive-manifest',
      formatVersion: 1,
      dataset: ds,
      partition: path,
      version: token.version + 1,
      commitId: newId(),
      committedAt: new Date().toISOString(),
      entries,
    }
    if (await ctx.log.commit(base, next, token)) {
      if (ctx.log.strategy === 'chain' && next.version > KEEP)
        await ctx.store.delete([versionKey(base, next.version - KEEP)]).catch(() => undefined)
      return next
    }
  }
  throw new CommitConflictError(base, 30)
}

/**
 * Copies `files` (replaced, no longer live) of partition `path` into the archive, compressed
 * with `codec`, and records them. Files already archived or already gone are skipped. Returns
 * the new entries. The originals are left for the caller to delete.
 */
export async function archiveFiles(
  ctx: LakeContext,
  ds: string,
  path: string,
  files: ManifestFile[],
  opts: { codec: ArchiveCodec; reason: ArchiveEntry['reason']; nowMs: number },
): Promise<ArchiveEntry[]> {
  const known = new Set((await loadArchive(ctx, ds, path))?.entries.map((e) => e.originalName) ?? [])
  const limit = pLimit(4)
  const fresh = await allOwned(
    files
      .filter((f) => !known.has(f.name))
      .map((f) =>
        limit(async (): Promise<ArchiveEntry | null> => {
          const got = await ctx.store.get(`${partitionDir(ds, path)}/${f.name}`)
          if (!got) return null
          const stored = await compress(opts.codec, got.body)
          // never `.parquet` at the end: a `<dataset>/**/*.parquet` glob must not read archives
          const key = `${archiveDir(ds, path)}/${f.name}${codecSuffix(opts.codec) || '.archived'}`
          await ctx.store.put(key, stored)
          return {
            key,
            dataset: ds,
            partition: path,
            originalName: f.name,
            archivedAt: new Date(opts.nowMs).toISOString(),
            reason: opts.reason,
            codec: opts.codec,
            bytes: f.bytes,
            checksum: f.checksum,
            storedBytes: stored.byteLength,
            rows: f.rows,
            file: f,
          }
        }),
      ),
  )
  const entries = fresh.filter((e): e is ArchiveEntry => e !== null)
  if (entries.length === 0) return []
  let added: ArchiveEntry[] = []
  await updateArchive(ctx, ds, path, (current) => {
    const have = new Set(current.map((e) => e.originalName))
    added = entries.filter((e) => !have.has(e.originalName))
    return added.length ? [...current, ...added] : null
  })
  return added
}

/** Partition paths that have an archive manifest, from one listing of the archive area; also every object key in it. */
export async function archivePartitions(
  ctx: LakeContext,
  ds: string,
): Promise<{ paths: string[]; objects: Awaited<ReturnType<LakeContext['store']['list']>>['objects'] }> {
  const root = archiveRoot(ds)
  const { objects } = await ctx.store.list(root)
  const paths = new Set<string>()
  for (const o of objects) {
    const m = ARCHIVE_DOC_RE.exec(o.key)
    if (m && m[1].length > root.length) paths.add(m[1].slice(root.length))
  }
  return { paths: [...paths].sort(), objects }
}

/** Every archive entry of the dataset (optionally one partition), oldest first. */
export async function listArchiveEntries(ctx: LakeContext, ds: string, partition?: string): Promise<ArchiveEntry[]> {
  const paths = partition !== undefined ? [partition] : (await archivePartitions(ctx, ds)).paths
  const limit = pLimit(ctx.concurrency)
  const docs = await allOwned(paths.map((p) => limit(() => loadArchive(ctx, ds, p))))
  return docs
    .flatMap((d) => d?.entries ?? [])
    .sort((a, b) => (a.archivedAt < b.archivedAt ? -1 : a.archivedAt > b.archivedAt ? 1 : a.key < b.key ? -1 : 1))
}
