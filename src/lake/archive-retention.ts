/**
 * Archive retention: entries archived more than `archive_retention_days` ago are dropped from
 * their archive manifest (committed first), then their objects deleted. Objects in the archive
 * area that no manifest records (a crash between storing and recording) are deleted once older
 * than the gc grace period.
 */

import type { ArchiveEntry } from '../core/types.js'
import { archivePartitions, loadArchive, updateArchive } from './archive.js'
import type { LakeContext } from './context.js'

export interface ArchiveRetentionResult {
  /** Archive entries removed (or, in a dry run, due). */
  removed: ArchiveEntry[]
  /** Unrecorded archive objects removed. */
  orphans: string[]
}

/**
 * Removes entries whose age (`nowMs - archivedAt`) is greater than `retentionMs` (0: keep all),
 * and unrecorded objects last modified more than `graceMs` before `nowMs`.
 */
export async function expireArchives(
  ctx: LakeContext,
  ds: string,
  opts: { retentionMs: number; graceMs: number; nowMs: number; dryRun: boolean },
): Promise<ArchiveRetentionResult> {
  const { paths, objects } = await archivePartitions(ctx, ds)
  const removed: ArchiveEntry[] = []
  const recorded = new Set<string>()
  for (const path of paths) {
    const doc = await loadArchive(ctx, ds, path)
    const entries = doc?.entries ?? []
    const due = opts.retentionMs > 0 ? entries.filter((e) => opts.nowMs - Date.parse(e.archivedAt) > opts.retentionMs) : []
    for (const e of entries) recorded.add(e.key)
    if (due.length === 0) continue
    if (!opts.dryRun) {
      const keys = new Set(due.map((e) => e.key))
      await updateArchive(ctx, ds, path, (current) => {
        const kept = current.filter((e) => !keys.has(e.key))
        return kept.length === current.length ? null : kept
      })
      await ctx.store.delete([...keys])
    }
    removed.push(...due)
  }
  const orphans = objects
    .filter((o) => !/\/_archive(?:\.v\d{20})?\.json$/.test(o.key) && !recorded.has(o.key))
    .filter((o) => o.lastModified.getTime() <= opts.nowMs - opts.graceMs)
    .map((o) => o.key)
  if (!opts.dryRun && orphans.length) await ctx.store.delete(orphans)
  return { removed, orphans }
}
