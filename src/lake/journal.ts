/**
 * Compaction journals: `_friday/<dataset>/_maintenance/journal/<partition path>/<commit id>.json`,
 * written right before a compaction (or retention rewrite) commits, naming the files it replaces
 * and adds. While a journal exists, gc keeps those files. After the commit the replaced files are
 * archived and deleted, then the journal. A run that finds a journal (its writer crashed, or
 * stalled and lost its lease) finishes it: if the commit landed, the replaced files still there
 * are archived; if it can still land (its version is the next one), the partition is fenced
 * first (the current manifest committed again), so it never will; then its new files are orphans
 * and are deleted with the journal.
 */

import { CommitConflictError } from '../core/errors.js'
import { metaDir } from '../core/layout.js'
import type { ArchiveCodec } from '../core/rotation-policy.js'
import type { ArchiveEntry, ManifestFile, PartitionManifest, PartitionRef } from '../core/types.js'
import { archiveFiles } from './archive.js'
import { type LakeContext, manifestBase, partitionDir } from './context.js'
import { fenceOf } from './mutate.js'

export interface Journal {
  format: 'friday.maintenance-journal'
  formatVersion: 1
  dataset: string
  partition: PartitionRef
  reason: ArchiveEntry['reason']
  codec: ArchiveCodec
  owner: string
  createdAt: string
  /** The manifest commit this journal precedes. */
  commitId: string
  version: number
  remove: ManifestFile[]
  add: string[]
  /** Where it was read from (journals of older versions sit at `<partition path>.json`). */
  key?: string
}

const enc = new TextEncoder()
const dec = new TextDecoder()

export const journalRoot = (ds: string): string => `${metaDir(ds)}/_maintenance/journal/`
export const journalKey = (j: Journal): string => j.key ?? `${journalRoot(j.dataset)}${j.partition.path}/${j.commitId}.json`

export async function writeJournal(ctx: LakeContext, j: Journal): Promise<void> {
  await ctx.store.put(journalKey(j), enc.encode(JSON.stringify(j)), { contentType: 'application/json' })
}

export async function deleteJournal(ctx: LakeContext, j: Journal): Promise<void> {
  await ctx.store.delete([journalKey(j)])
}

/** Journals left in the dataset (by crashed or running jobs). */
export async function listJournals(ctx: LakeContext, ds: string): Promise<Journal[]> {
  const { objects } = await ctx.store.list(journalRoot(ds))
  const out: Journal[] = []
  for (const o of objects) {
    if (!o.key.endsWith('.json')) continue
    const j = await readJournal(ctx, o.key)
    if (j) out.push(j)
  }
  return out
}

async function readJournal(ctx: LakeContext, key: string): Promise<Journal | null> {
  const got = await ctx.store.get(key)
  if (!got) return null
  try {
    return { ...(JSON.parse(dec.decode(got.body)) as Journal), key }
  } catch {
    return null
  }
}

/** Keys of data files pending journals protect, given keys under `_friday/<dataset>/_` from a listing. */
export async function protectedByJournals(ctx: LakeContext, internalKeys: string[]): Promise<Set<string>> {
  const out = new Set<string>()
  for (const key of internalKeys) {
    if (!/\/_maintenance\/journal\/.+\.json$/.test(key)) continue
    const j = await readJournal(ctx, key)
    if (!j) continue
    const dir = partitionDir(j.dataset, j.partition.path)
    for (const f of j.remove) out.add(`${dir}/${f.name}`)
    for (const name of j.add) out.add(`${dir}/${name}`)
  }
  return out
}

export interface Finished {
  committed: boolean
  archived: ArchiveEntry[]
}

/**
 * Completes a journal whose commit is done or abandoned (see the module doc). Idempotent.
 * `nowMs` stamps new archive entries.
 */
export async function finishJournal(ctx: LakeContext, j: Journal, nowMs: number): Promise<Finished> {
  const ds = j.dataset
  const dir = partitionDir(ds, j.partition.path)
  const base = manifestBase(ds, j.partition.path)
  for (let attempt = 0; ; attempt++) {
    const { doc, token } = await ctx.log.load<PartitionManifest>(base)
    const verdict = journalVerdict(doc, j)
    if (verdict === 'open') {
      // its run may still commit (it stalled, or lost its lease mid-commit): fence it off first
      if (attempt >= 20) throw new CommitConflictError(`${ds}/${j.partition.path}`, attempt)
      await ctx.log.commit(base, fenceOf(ds, j.partition, doc, token.version + 1), token)
      continue
    }
    const live = new Set(doc?.files.map((f) => f.name) ?? [])
    if (verdict === 'never') {
      const orphans = j.add.filter((n) => !live.has(n)).map((n) => `${dir}/${n}`)
      if (orphans.length) await ctx.store.delete(orphans)
      await deleteJournal(ctx, j)
      return { committed: false, archived: [] }
    }
    const replaced = j.remove.filter((f) => !live.has(f.name))
    const archived = await archiveFiles(ctx, ds, j.partition.path, replaced, { codec: j.codec, reason: j.reason, nowMs })
    const gone = replaced.map((f) => `${dir}/${f.name}`)
    if (gone.length) await ctx.store.delete(gone)
    await deleteJournal(ctx, j)
    return { committed: true, archived }
  }
}

/** Did the journal's commit land ('landed'), can it never land ('never'), or is its slot still open? */
function journalVerdict(doc: PartitionManifest | null, j: Journal): 'landed' | 'never' | 'open' {
  const current = doc?.version ?? 0
  if (doc?.commitId === j.commitId) return 'landed'
  if (current + 1 === j.version) return 'open'
  if (current < j.version) return 'never' // not a version this manifest can reach next: a stale journal
  const back = current - j.version // >= 1: the version is taken; whose is it?
  const prior = doc?.prior ?? []
  if (back - 1 < prior.length) return prior[back - 1] === j.commitId ? 'landed' : 'never'
  if (prior.includes(j.commitId)) return 'landed'
  // past the history window: a replaced file still live proves the commit never landed
  const live = new Set(doc?.files.map((f) => f.name) ?? [])
  return j.remove.some((f) => live.has(f.name)) ? 'never' : 'landed'
}
