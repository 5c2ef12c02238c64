/** gc (unreferenced files past the grace period) and verify (files against manifest checksums). */

import pLimit from 'p-limit'
import { runAll } from '../concurrency.js'
import { metaDir } from '../core/layout.js'
import type { GcReport, PartitionManifest, VerifyProblem, VerifyReport } from '../core/types.js'
import { readParquetMetadata } from '../parquet/index.js'
import { type LakeContext, manifestBase, partitionDir } from './context.js'
import { protectedByJournals } from './journal.js'
import { sha256 } from './manifest.js'
import { versionKey } from './manifest-log.js'

/** Versions of a chain manifest kept besides the current one. */
const KEEP_VERSIONS = 16
const DATA_FILE_RE = /^(.*)\/(part-[^/]+\.parquet)$/
const VERSION_RE = /^(.*)\/_manifest\.v(\d{20})\.json$/

/**
 * Deletes unreferenced data files older than `graceMs` (and old chain manifest versions). Data
 * files are listed under `<dataset>/`, manifests under `_friday/<dataset>/`; keys under
 * `_friday/<dataset>/_...` (the archive, leases, journals) are never candidates, nor files a
 * pending compaction journal names (replaced files waiting to be archived, and its new files).
 */
export async function collectGarbage(
  ctx: LakeContext,
  datasets: string[],
  graceMs: number,
  dryRun: boolean,
  now = Date.now(),
): Promise<GcReport> {
  const report: GcReport = { filesDeleted: 0, bytesDeleted: 0, keys: [] }
  const cutoff = now - graceMs
  const versions: { base: string; versions: number[] }[] = []
  for (const ds of datasets) {
    const dataRoot = `${ds}/`
    const meta = `${metaDir(ds)}/`
    const [data, metadata] = await Promise.all([ctx.store.list(dataRoot), ctx.store.list(meta)])
    const internal = `${meta}_`
    const journaled = await protectedByJournals(
      ctx,
      metadata.objects.filter((o) => o.key.startsWith(internal)).map((o) => o.key),
    )
    /** Per partition path: its data files and its manifest versions. */
    const parts = new Map<
      string,
      { files: { key: string; name: string; size: number; old: boolean }[]; versions: { key: string; v: number; old: boolean }[] }
    >()
    const partOf = (path: string) => {
      let e = parts.get(path)
      if (!e) {
        e = { files: [], versions: [] }
        parts.set(path, e)
      }
      return e
    }
    for (const o of data.objects) {
      // nothing of ours starts with `_` in a dataset directory; never a candidate all the same
      if (o.key.startsWith(`${dataRoot}_`)) continue
      const file = DATA_FILE_RE.exec(o.key)
      if (file) {
        const old = o.lastModified.getTime() <= cutoff
        partOf(`${file[1]}/`.slice(dataRoot.length, -1)).files.push({ key: o.key, name: file[2], size: o.size, old })
      }
    }
    for (const o of metadata.objects) {
      if (o.key.startsWith(internal)) continue
      const ver = VERSION_RE.exec(o.key)
      if (ver)
        partOf(ver[1].slice(meta.length)).versions.push({
          key: o.key,
          v: Number(ver[2]),
          old: o.lastModified.getTime() <= cutoff,
        })
    }
    const doomed = await runAll([...parts], ctx.concurrency, async ([path, e]) => {
      const candidates = e.files.filter((f) => f.old)
      const oldVersions = e.versions.filter((v) => v.old)
      if (candidates.length === 0 && oldVersions.length === 0) return []
      // load the manifest after listing: a file committed since the listing is referenced now
      // (a file directly in the dataset directory belongs to no partition: no manifest names it)
      const base = path ? manifestBase(ds, path) : null
      const doc = base ? (await ctx.log.load<PartitionManifest>(base)).doc : null
      const live = new Set(doc?.files.map((f) => f.name) ?? [])
      const out = candidates.filter((f) => !live.has(f.name) && !journaled.has(f.key)).map((f) => ({ key: f.key, size: f.size }))
      if (doc && base) {
        const doomedVersions = oldVersions.filter((v) => v.v < doc.version - KEEP_VERSIONS).map((v) => v.v)
        if (doomedVersions.length) versions.push({ base, versions: doomedVersions })
        for (const v of doomedVersions) out.push({ key: versionKey(base, v), size: 0 })
      }
      return out
    })
    for (const d of doomed.flat()) {
      report.keys.push(d.key)
      if (d.key.endsWith('.parquet')) {
        report.filesDeleted++
        report.bytesDeleted += d.size
      }
    }
  }
  if (!dryRun && report.keys.length) {
    const files = report.keys.filter((k) => !VERSION_RE.test(k))
    for (let i = 0; i < files.length; i += 1000) await ctx.store.delete(files.slice(i, i + 1000))
    // manifest versions oldest first, one at a time: a reader probing forward from a stale hint
    // then never meets a gap above a version that still exists (see `ManifestLog.probe`)
    await runAll(versions, ctx.concurrency, (v) => ctx.log.deleteVersions(v.base, v.versions))
  }
  return report
}

export async function verifyLake(
  ctx: LakeContext,
  datasets: { name: string; manifests: PartitionManifest[] }[],
): Promise<VerifyReport> {
  const report: VerifyReport = { ok: true, datasets: datasets.length, partitions: 0, files: 0, bytes: 0, problems: [] }
  const limit = pLimit(ctx.concurrency)
  const problem = (p: VerifyProblem): void => {
    report.problems.push(p)
  }
  const tasks: Promise<void>[] = []
  for (const { name, manifests } of datasets) {
    for (const m of manifests) {
      report.partitions++
      for (const f of m.files) {
        report.files++
        tasks.push(
          limit(async () => {
            const key = `${partitionDir(name, m.partition.path)}/${f.name}`
            const base = { dataset: name, partition: m.partition.path, file: f.name }
            const got = await ctx.store.get(key)
            if (!got)
              return problem({ ...base, problem: 'missing-file', message: `${key} is listed in the manifest but missing` })
            report.bytes += got.body.byteLength
            if (got.body.byteLength !== f.bytes) {
              return problem({
                ...base,
                problem: 'size-mismatch',
                message: `${key}: ${got.body.byteLength} bytes, manifest says ${f.bytes}`,
              })
            }
            const sum = await sha256(got.body, ctx.sha256)
            if (sum !== f.checksum)
              return problem({
                ...base,
                problem: 'checksum-mismatch',
                message: `${key}: checksum ${sum}, manifest says ${f.checksum}`,
              })
            try {
              const meta = await readParquetMetadata(got.body)
              const rows = Number(meta.num_rows)
              if (rows !== f.rows)
                problem({ ...base, problem: 'row-count-mismatch', message: `${key}: ${rows} rows, manifest says ${f.rows}` })
            } catch (err) {
              problem({ ...base, problem: 'unreadable', message: `${key}: ${(err as Error).message}` })
            }
          }),
        )
      }
    }
  }
  await Promise.all(tasks)
  report.ok = report.problems.length === 0
  return report
}
