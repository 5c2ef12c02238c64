/**
 * The commit loop for one partition: load the manifest, plan a change against it, write the new
 * data files, commit the next manifest version conditionally, and on a lost race start over
 * from the new state. Readers never see a partial change: files become live only through the
 * manifest commit.
 *
 * Deleting files is where data can be lost, so the rules are strict:
 * - files a commit replaced are deleted right after it (readers holding the old manifest re-read
 *   it when a file is gone), unless the caller archives them;
 * - files this call wrote are deleted only when the manifest log proved that no commit naming
 *   them landed or can still land (a lost race, a fenced-off commit); a commit in doubt leaves
 *   them in place for `gc()`, which collects unreferenced files after the grace period;
 * - a commit must land within half the gc grace period of its files' writing (its deadline):
 *   older files are written anew, and a commit not confirmed by then is fenced off.
 */

import { sleep } from '../concurrency.js'
import { CommitConflictError, CommitInDoubtError, FileVanishedError } from '../core/errors.js'
import type { ManifestFile, PartitionManifest, PartitionRef, Schema, Table } from '../core/types.js'
import { type LakeContext, manifestBase, newCommitId, partitionDir, writeDataFile } from './context.js'
import { summarize } from './manifest.js'

export interface Plan {
  /** Live files the change replaces or drops. */
  remove: ManifestFile[]
  /** Tables to store as new files. The same Table object across attempts reuses its file. */
  add: Table[]
}

/**
 * Plans a change from the current manifest; null means "nothing to change". `schema` is the
 * writer's dataset schema widened by the manifest's columns: a writer whose schema is older than
 * the partition's keeps the columns it does not know (they are null in its new rows).
 */
export type Planner = (manifest: PartitionManifest | null, schema: Schema) => Promise<Plan | null>

const MAX_ATTEMPTS = 60

/** Extra steps around the commit, for compaction (see `compaction.ts`). */
export interface MutateHooks {
  /** Runs after the new files are written and right before the commit; a throw aborts the attempt. */
  beforeCommit?(next: PartitionManifest, change: Plan): Promise<void>
  /** Leave the files the commit replaced in place (the caller archives them) instead of deleting them. */
  keepReplaced?: boolean
  /** Checked before files are written and before the commit: stop without committing once aborted. */
  signal?: AbortSignal
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
  const dir = partitionDir(ds, ref.path)
  /** The current file of each planned table. */
  const current = new Map<Table, { file: ManifestFile; at: number }>()
  /** Every file this call wrote: none is named by a landed commit unless `committed`. */
  const mine: ManifestFile[] = []
  const cleanup = async (keep: Set<ManifestFile>) => {
    const stale = mine.filter((f) => !keep.has(f)).map((f) => `${dir}/${f.name}`)
    if (stale.length) await ctx.store.delete(stale).catch(() => undefined)
  }
  let committed = false
  let inDoubt = false
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { doc, token } = await ctx.log.load<PartitionManifest>(base)
      const widened = widenSchema(schema, doc?.schema)
      let change: Plan | null
      try {
        change = await plan(doc, widened)
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
      hooks.signal?.throwIfAborted()
      const added: ManifestFile[] = []
      let oldest = Number.POSITIVE_INFINITY
      for (const t of change.add) {
        let w = current.get(t)
        // gc may collect an unreferenced file once it is older than the grace period
        if (!w || Date.now() - w.at > ctx.gcGraceMs / 4) {
          const at = Date.now() // before the put: the store may stamp the file as early as this
          w = { file: await writeDataFile(ctx, ds, ref.path, t), at }
          mine.push(w.file)
          current.set(t, w)
        }
        added.push(w.file)
        oldest = Math.min(oldest, w.at)
      }
      const removed = new Set(change.remove.map((f) => f.name))
      const files = [...(doc?.files ?? []).filter((f) => !removed.has(f.name)), ...added]
      const next = manifestOf(ds, ref, token.version + 1, mergeSchemas(doc?.schema ?? [], widened, files), files)
      await hooks.beforeCommit?.(next, change)
      hooks.signal?.throwIfAborted()
      let landed: boolean
      try {
        landed = await ctx.log.commit(base, next, token, {
          deadline: added.length ? oldest + ctx.gcGraceMs / 2 : undefined,
          fence: (m, version) => fenceOf(ds, ref, m, version),
        })
      } catch (err) {
        if (err instanceof CommitInDoubtError) inDoubt = true
        throw err
      }
      if (landed) {
        committed = true
        await cleanup(new Set(added))
        if (hooks.keepReplaced) return { committed: true, manifest: next }
        const gone = change.remove.map((f) => `${dir}/${f.name}`)
        if (gone.length) await ctx.store.delete(gone).catch(() => undefined)
        return { committed: true, manifest: next }
      }
      // lost the race: back off with jitter, then plan again from the winner's state
      ctx.counters.retries++
      await sleep(Math.min(200, 2 + attempt * 4) * Math.random())
    }
    throw new CommitConflictError(`${ds}/${ref.path}`, MAX_ATTEMPTS)
  } catch (err) {
    // a commit in doubt may name our files: they are gc's to collect once proven unreferenced
    if (!committed && !inDoubt) await cleanup(new Set())
    throw err
  }
}

/** The current state committed again under a new id: once it lands, a pending commit for its version can never land. */
export function fenceOf(ds: string, ref: PartitionRef, m: PartitionManifest | null, version: number): PartitionManifest {
  return manifestOf(ds, ref, version, m?.schema ?? [], m?.files ?? [])
}

/** Version `version` of the partition's manifest, committed now under a new id. */
function manifestOf(ds: string, ref: PartitionRef, version: number, schema: Schema, files: ManifestFile[]): PartitionManifest {
  return summarize({
    format: 'friday.partition-manifest',
    formatVersion: 1,
    dataset: ds,
    partition: ref,
    version,
    commitId: newCommitId(),
    committedAt: new Date().toISOString(),
    schema,
    files,
  })
}

/** The writer's schema plus the manifest's columns it lacks (a newer dataset schema than the writer's). */
export function widenSchema(schema: Schema, manifest: Schema | undefined): Schema {
  if (!manifest) return schema
  let out: Schema | null = null
  for (const c of manifest) {
    if (!schema.some((s) => s.name === c.name)) {
      out ??= [...schema]
      out.push(c)
    }
  }
  return out ?? schema
}

/** The columns of the partition's live files, in the dataset schema's order. */
function mergeSchemas(current: Schema, dataset: Schema, files: ManifestFile[]): Schema {
  const live = new Set<string>()
  for (const f of files) for (const c of Object.keys(f.columns)) live.add(c)
  const out = dataset.filter((c) => live.has(c.name))
  for (const c of current) if (live.has(c.name) && !out.some((o) => o.name === c.name)) out.push(c)
  return out
}
