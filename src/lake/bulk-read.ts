/**
 * `read` without a limit: every matching partition's manifest first, then each file that lies
 * wholly inside the filter decoded straight into one preallocated result (no per-partition
 * tables to concatenate). Partitions that need more (several files to merge, rows to filter, a
 * file replaced meanwhile) go through `readPartition` and are copied into their slot.
 *
 * A snapshot's read passes the manifests it listed (`pinned`): they are not loaded again, and a
 * file one of them names that is gone makes the whole read null (never another version's rows).
 */

import { runAll } from '../concurrency.js'
import { fillNull, moveRows, placeRows, truncateColumns, uninitializedColumn } from '../core/table.js'
import type { Column, ManifestFile, PartitionManifest, PartitionRef, Schema, Table } from '../core/types.js'
import { decodeParquet, decodeParquetInto } from '../parquet/index.js'
import { type LakeContext, manifestBase, partitionDir, WHOLE_FILE_MAX } from './context.js'
import { fileMatches, type RowFilter, readManifestRows, readPartition } from './read-path.js'

interface Slot {
  ref: PartitionRef
  /** The partition's manifest (used when pinned). */
  manifest: PartitionManifest
  /** The one file to decode in place, or null: read the partition the general way. */
  file: ManifestFile | null
  offset: number
  /** Rows reserved: the matching files' rows, an upper bound of what the partition yields. */
  reserved: number
  used: number
}

/** The file holds only rows the filter keeps, so it can be decoded whole. */
function inside(file: ManifestFile, f: RowFilter): boolean {
  if (file.minTs < f.start || file.maxTs >= f.end) return false
  return f.symbols === null || file.symbols.every((s) => f.symbols!.has(s))
}

/**
 * The rows of `refs` (in that order, each partition sorted) as one table, or null when a
 * partition changed so much meanwhile that it no longer fits its slot (the caller then reads
 * the usual way). With `pinned` (the manifests of `refs`, in that order, as a snapshot listed
 * them): exactly those versions' rows, or null when a file they name is gone.
 */
export async function readIntoOne(
  ctx: LakeContext,
  ds: string,
  refs: PartitionRef[],
  f: RowFilter,
  schema: Schema,
  columns: string[] | undefined,
  pinned?: (PartitionManifest | null)[],
): Promise<Table | null> {
  const manifests =
    pinned ??
    (await runAll(refs, ctx.concurrency, async (ref) => (await ctx.log.load<PartitionManifest>(manifestBase(ds, ref.path))).doc))
  const slots: Slot[] = []
  let total = 0
  refs.forEach((ref, i) => {
    const manifest = manifests[i]
    const files = manifest?.files.filter((file) => fileMatches(file, f)) ?? []
    if (!manifest || !files.length) return
    const reserved = files.reduce((n, file) => n + file.rows, 0)
    const direct = files.length === 1 && inside(files[0], f) && files[0].bytes <= WHOLE_FILE_MAX
    slots.push({ ref, manifest, file: direct ? files[0] : null, offset: total, reserved, used: 0 })
    total += reserved
  })

  const out: Record<string, Column> = {}
  for (const { name, type } of schema) out[name] = uninitializedColumn(type, total)
  const cols = columns?.filter((c) => schema.some((s) => s.name === c))
  let overflow = false
  let gone = false

  const general = async (slot: Slot) => {
    const table = pinned
      ? await readManifestRows(ctx, ds, slot.ref, slot.manifest, f, schema, columns)
      : (await readPartition(ctx, ds, slot.ref, f, schema, columns)).table
    if (!table) gone = true
    else if (table.length > slot.reserved) overflow = true
    else {
      placeRows(out, schema, table, slot.offset)
      slot.used = table.length
    }
  }

  await runAll(slots, ctx.concurrency, async (slot) => {
    if (overflow || gone) return
    const file = slot.file
    if (!file) return general(slot)
    const got = await ctx.store.get(`${partitionDir(ds, slot.ref.path)}/${file.name}`)
    if (!got) {
      // replaced meanwhile: the partition's new manifest decides, unless the version is pinned
      if (pinned) gone = true
      else await general(slot)
      return
    }
    const fileCols = cols?.filter((c) => c in file.columns) ?? Object.keys(file.columns)
    const n = await decodeParquetInto(got.body, out, slot.offset, fileCols, ctx.codecs)
    if (n === file.rows && n === slot.reserved) {
      // columns the file lacks (added to the dataset later) are null in its rows
      for (const { name } of schema) if (!(name in file.columns)) fillNull(out[name], slot.offset, slot.offset + n)
      slot.used = n
      return
    }
    const table = await decodeParquet(got.body, { columns: fileCols, codecs: ctx.codecs })
    if (table.length !== slot.reserved) return general(slot)
    placeRows(out, schema, table, slot.offset)
    slot.used = table.length
  })
  if (overflow || gone) return null

  let rows = 0
  for (const slot of slots) {
    moveRows(out, schema, slot.offset, rows, slot.used)
    rows += slot.used
  }
  const t = truncateColumns(out, schema, rows)
  // an int64 column without nulls carries no mask, as decoded files do
  for (const { name } of schema) {
    const col = t.columns[name]
    if (col.type === 'int64' && col.nulls && !col.nulls.includes(1)) t.columns[name] = { type: 'int64', values: col.values }
  }
  return t
}
