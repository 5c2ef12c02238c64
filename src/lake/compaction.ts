/**
 * Compaction of one partition: its live files merged into files of about the target size,
 * deduplicated by key (the later file in manifest order wins, as upsert does), sorted, with
 * fresh stats and checksums, committed through the ordinary commit loop (`mutate.ts`). A
 * concurrent writer that commits first makes the loop re-plan: the same output is reused when
 * every merged file is still live (new files of the writer stay beside it), otherwise the
 * partition is read again. The replaced files are journaled before the commit and archived after
 * it (`journal.ts`), never deleted outright.
 */

import { allOwned } from '../concurrency.js'
import { CommitInDoubtError, FileVanishedError, LeaseLostError } from '../core/errors.js'
import { type ArchiveCodec, evaluate, type RotationPolicy } from '../core/rotation-policy.js'
import { concat, dedupeLastWins, slice } from '../core/table.js'
import type { ArchiveEntry, ManifestFile, PartitionManifest, PartitionRef, Schema, Table } from '../core/types.js'
import { type LakeContext, readDataFile } from './context.js'
import { deleteJournal, finishJournal, type Journal, writeJournal } from './journal.js'
import type { Lease } from './lease.js'
import { mutatePartition, type Plan, type Planner } from './mutate.js'

/** Splits a sorted table into pieces of at most `rowsPerFile` rows (views, no copies). */
export function splitRows(t: Table, rowsPerFile: number): Table[] {
  if (t.length <= rowsPerFile) return [t]
  const out: Table[] = []
  for (let i = 0; i < t.length; i += rowsPerFile) out.push(slice(t, i, Math.min(t.length, i + rowsPerFile)))
  return out
}

/**
 * Plans the compaction of a partition that is (still) due under `policy`; null when it is not
 * (another run compacted it meanwhile). `onSkip` hears why not.
 */
export function compactionPlanner(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  policy: RotationPolicy,
  nowMs: number,
  onSkip: (reason: string) => void,
): Planner {
  let prev: Plan | null = null
  return async (m) => {
    if (!m || m.files.length === 0) return null
    const d = evaluate(m, policy, nowMs)
    if (!d.due) {
      onSkip(d.reason)
      return null
    }
    const live = new Set(m.files.map((f) => f.name))
    if (prev?.remove.every((f) => live.has(f.name))) return prev
    const tables = await allOwned(m.files.map((f) => readDataFile(ctx, ds, ref.path, f)))
    if (tables.some((t) => t === null)) throw new FileVanishedError(`${ds}/${ref.path}`)
    const merged = dedupeLastWins(concat(tables as Table[], m.schema))
    const bytes = m.files.reduce((s, f) => s + f.bytes, 0)
    const rowsPerFile = Math.max(1, Math.floor((merged.length * policy.maxFileBytes) / Math.max(bytes, 1)))
    prev = { remove: m.files, add: splitRows(merged, rowsPerFile) }
    return prev
  }
}

export interface RewriteOutcome {
  committed: boolean
  removed: ManifestFile[]
  added: ManifestFile[]
  archived: ArchiveEntry[]
  manifest: PartitionManifest | null
}

/**
 * Commits `planner`'s change to the partition keeping the replaced files, journaled, then
 * archives them (reason, codec) and deletes the originals. Used by compaction and by row
 * retention on the lake.
 */
export async function rewriteWithArchive(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  schema: Schema,
  planner: Planner,
  opts: {
    reason: ArchiveEntry['reason']
    codec: ArchiveCodec
    owner: string
    nowMs: number
    /** The run's lease: checked (and renewed) right before each commit; a run that lost it does not commit. */
    lease?: Lease
  },
): Promise<RewriteOutcome> {
  let journal: Journal | null = null
  const drop = async () => {
    const j = journal as Journal | null
    journal = null
    if (j) await deleteJournal(ctx, j)
  }
  let result: Awaited<ReturnType<typeof mutatePartition>>
  try {
    result = await mutatePartition(ctx, ds, ref, schema, planner, {
      keepReplaced: true,
      beforeCommit: async (next, change) => {
        await drop() // an earlier attempt's: that commit was lost
        if (opts.lease && !(await opts.lease.hold())) throw new LeaseLostError(ds)
        journal = {
          format: 'friday.maintenance-journal',
          formatVersion: 1,
          dataset: ds,
          partition: ref,
          reason: opts.reason,
          codec: opts.codec,
          owner: opts.owner,
          createdAt: new Date().toISOString(),
          commitId: next.commitId,
          version: next.version,
          remove: change.remove,
          add: next.files.slice(next.files.length - change.add.length).map((f) => f.name),
        }
        await writeJournal(ctx, journal)
      },
    })
  } catch (err) {
    // in doubt: the journal stays, and the run that finds it learns the outcome (fencing if need be)
    if (!(err instanceof CommitInDoubtError)) await drop().catch(() => undefined)
    throw err
  }
  const j = journal as Journal | null
  if (!result.committed || !j) {
    await drop()
    return { committed: false, removed: [], added: [], archived: [], manifest: result.manifest }
  }
  const done = await finishJournal(ctx, j, opts.nowMs)
  const added = new Set(j.add)
  return {
    committed: true,
    removed: j.remove,
    added: result.manifest?.files.filter((f) => added.has(f.name)) ?? [],
    archived: done.archived,
    manifest: result.manifest,
  }
}
