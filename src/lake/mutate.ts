/**
 * The commit loop for one partition: load the manifest, plan a change against it, write the new
 * data files, commit the next manifest version conditionally, and on a lost race start over
 * from the new state. Readers never see a partial change: files become live only through the
 * manifest commit. Files a commit replaced are deleted right after it (readers holding the old
 * manifest re-read it when a file is gone); files of a lost attempt are deleted at once, and
 * anything a crash leaves behind is removed by `gc()` after the grace period.
 */

import { CommitConflictError } from '../errors.js'
import type { ManifestFile, PartitionManifest, PartitionRef, Schema, Table } from '../types.js'
import { type LakeContext, manifestBase, newCommitId, partitionDir, writeDataFile } from './context.js'
import { summarize } from './manifest.js'
import { FileVanishedError } from './planners.js'

export interface Plan {
  /** Live files the change replaces or drops. */
  remove: ManifestFile[]
  /** Tables to store as new files. The same Table object across attempts reuses its file. */
  add: Table[]
}

/** Plans a change from the current manifest; null means "nothing to change". */
export type Planner = (manifest: PartitionManifest | null) => Promise<Plan | null>

const MAX_ATTEMPTS = 60

/** Extra steps around the commit, for compaction (see `compaction.ts`). */
export interface MutateHooks {
  /** Runs after the new files are written and right before the commit; a throw aborts the attempt. */
  beforeCommit?(next: PartitionManifest, change: Plan): Promise<void>
  /** Leave the files the commit replaced in place (the caller archives them) instead of deleting them. */
  keepReplaced?: boolean
}

export interface MutateResult {
  committed: boolean
  manifest: PartitionManifest | null
}

export async function mutatePartition(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  schema: Schema,
  plan: Planner,
  hooks: MutateHooks = {},
): Promise<MutateResult> {
  const base = manifestBase(ds, ref.path)
  const written = new Map<Table, { file: ManifestFile; at: number }>()
  const cleanup = async (keep: Set<ManifestFile>) => {
    const stale = [...written.values()]
      .filter((w) => !keep.has(w.file))
      .map((w) => `${partitionDir(ds, ref.path)}/${w.file.name}`)
    if (stale.length) await ctx.store.delete(stale).catch(() => undefined)
  }
  let committed = false
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { doc, token } = await ctx.log.load<PartitionManifest>(base)
      let change: Plan | null
      try {
        change = await plan(doc)
      } catch (err) {
        // a concurrent commit replaced a file we were reading: start over from its manifest
        if (err instanceof FileVanishedError) {
          ctx.counters.retries++
          continue
        }
        throw err
      }
      if (!change) {
        await cleanup(new Set())
        return { committed: false, manifest: doc }
      }
      const added: ManifestFile[] = []
      for (const t of change.add) {
        let w = written.get(t)
        // a file older than half the gc grace period might be collected before we commit it
        if (!w || Date.now() - w.at > ctx.gcGraceMs / 2) {
          w = { file: await writeDataFile(ctx, ds, ref.path, t), at: Date.now() }
          written.set(t, w)
        }
        added.push(w.file)
      }
      const removed = new Set(change.remove.map((f) => f.name))
      const files = [...(doc?.files ?? []).filter((f) => !removed.has(f.name)), ...added]
      const next = summarize({
        format: 'friday.partition-manifest',
        formatVersion: 1,
        dataset: ds,
        partition: ref,
        version: token.version + 1,
        commitId: newCommitId(),
        committedAt: new Date().toISOString(),
        schema: mergeSchemas(doc?.schema ?? [], schema, files),
        files,
      })
      await hooks.beforeCommit?.(next, change)
      if (await ctx.log.commit(base, next, token)) {
        committed = true
        await cleanup(new Set(added))
        if (hooks.keepReplaced) return { committed: true, manifest: next }
        const gone = change.remove.map((f) => `${partitionDir(ds, ref.path)}/${f.name}`)
        if (gone.length) await ctx.store.delete(gone).catch(() => undefined)
        return { committed: true, manifest: next }
      }
      // lost the race: back off with jitter, then plan again from the winner's state
      ctx.counters.retries++
      await sleep(Math.min(200, 2 + attempt * 4) * Math.random())
    }
    throw new CommitConflictError(`${ds}/${ref.path}`, MAX_ATTEMPTS)
  } catch (err) {
    if (!committed) await cleanup(new Set())
    throw err
  }
}

/** The columns of the partition's live files, in the dataset schema's order. */
function mergeSchemas(current: Schema, dataset: Schema, files: ManifestFile[]): Schema {
  const live = new Set<string>()
  for (const f of files) for (const c of Object.keys(f.columns)) live.add(c)
  const out = dataset.filter((c) => live.has(c.name))
  for (const c of current) if (live.has(c.name) && !out.some((o) => o.name === c.name)) out.push(c)
  return out
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
