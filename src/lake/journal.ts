/**
 * Compaction journals: `<dataset>/_maintenance/journal/<partition path>.json`, written right
 * before a compaction (or retention rewrite) commits, naming the files it replaces and adds.
 * While a journal exists, gc keeps those files. After the commit the replaced files are archived
 * and deleted, then the journal. A run that finds a journal (its writer crashed) finishes it:
 * if the commit happened (no replaced file is live any more) the files still there are archived;
 * if not, the journal's new files are orphans and are deleted with the journal.
 */

import type { ArchiveEntry, ManifestFile, PartitionManifest, PartitionRef } from '../types.js'
import { archiveFiles } from './archive.js'
import { type LakeContext, manifestBase, partitionDir } from './context.js'
import type { ArchiveCodec } from './rotation-policy.js'

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
}

const enc = new TextEncoder()
const dec = new TextDecoder()

export const journalRoot = (ds: string): string => `${ds}/_maintenance/journal/`
export const journalKey = (ds: string, path: string): string => `${journalRoot(ds)}${path}.json`

export async function writeJournal(ctx: LakeContext, j: Journal): Promise<void> {
  await ctx.store.put(journalKey(j.dataset, j.partition.path), enc.encode(JSON.stringify(j)), {
    contentType: 'application/json',
  })
}

export async function deleteJournal(ctx: LakeContext, ds: string, path: string): Promise<void> {
  await ctx.store.delete([journalKey(ds, path)])
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
    return JSON.parse(dec.decode(got.body)) as Journal
  } catch {
    return null
  }
}

/** Keys of data files pending journals protect, given keys under `<dataset>/_` from a listing. */
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
  const { doc } = await ctx.log.load<PartitionManifest>(manifestBase(ds, j.partition.path))
  const live = new Set(doc?.files.map((f) => f.name) ?? [])
  if (j.remove.some((f) => live.has(f.name))) {
    // the commit never happened: its new files are orphans
    const orphans = j.add.filter((n) => !live.has(n)).map((n) => `${dir}/${n}`)
    if (orphans.length) await ctx.store.delete(orphans)
    await deleteJournal(ctx, ds, j.partition.path)
    return { committed: false, archived: [] }
  }
  const archived = await archiveFiles(ctx, ds, j.partition.path, j.remove, { codec: j.codec, reason: j.reason, nowMs })
  const gone = j.remove.map((f) => `${dir}/${f.name}`)
  if (gone.length) await ctx.store.delete(gone)
  await deleteJournal(ctx, ds, j.partition.path)
  return { committed: true, archived }
}
