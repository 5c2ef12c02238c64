/** What each write mode and delete changes in one partition, planned against its current manifest. */

import { DuplicateKeyError, StoreError } from '../errors.js'

/** A file listed by the manifest was replaced meanwhile: re-plan from the fresh manifest. */
export class FileVanishedError extends StoreError {
  constructor(partition: string) {
    super(`a data file of ${partition} was replaced while planning`, { partition })
  }
}

import { concat, dedupeLastWins, sortTable, tablesEqual, take, timeRange } from '../table/table.js'
import { formatUs } from '../table/time.js'
import type { ManifestFile, PartitionManifest, PartitionRef, Schema, Table } from '../types.js'
import { type LakeContext, readDataFile } from './context.js'
import type { Plan, Planner } from './mutate.js'

/** Time range (µs, inclusive) and symbols a change touches. `symbols` null = all. */
export interface Span {
  min: number
  max: number
  symbols: Set<string> | null
}

export function spanOf(table: Table): Span {
  return { ...timeRange(table), symbols: new Set(table.columns.symbol.values as string[]) }
}

export function touches(f: ManifestFile, span: Span): boolean {
  if (f.maxTs < span.min || f.minTs > span.max) return false
  return span.symbols === null || f.symbols.some((s) => span.symbols!.has(s))
}

/** Reads files whole; throws if one vanished mid-plan (the commit loop retries on a fresh manifest). */
export async function readFiles(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  files: ManifestFile[],
  schema: Schema,
  columns?: string[],
): Promise<Table> {
  const tables = await Promise.all(files.map((f) => readDataFile(ctx, ds, ref.path, f, columns)))
  if (tables.some((t) => t === null)) throw new FileVanishedError(`${ds}/${ref.path}`)
  return sortTable(concat(tables as Table[], schema))
}

/** upsert: rows of the batch replace stored rows with the same key; nothing changes if all equal. */
export function upsertPlanner(ctx: LakeContext, ds: string, ref: PartitionRef, batch: Table, schema: Schema): Planner {
  const span = spanOf(batch)
  return async (m) => {
    const overlapping = (m?.files ?? []).filter((f) => touches(f, span))
    if (overlapping.length === 0) return { remove: [], add: [batch] }
    const existing = await readFiles(ctx, ds, ref, overlapping, schema)
    const merged = dedupeLastWins(concat([existing, batch], schema))
    if (tablesEqual(merged, existing, schema)) return null
    return { remove: overlapping, add: [merged] }
  }
}

/** append: the batch may not contain a stored key; checked against the manifest being committed. */
export function appendPlanner(ctx: LakeContext, ds: string, ref: PartitionRef, batch: Table, schema: Schema): Planner {
  return async (m) => {
    await assertNoExistingKeys(ctx, ds, ref, batch, m, schema)
    return { remove: [], add: [batch] }
  }
}

export async function assertNoExistingKeys(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  batch: Table,
  m: PartitionManifest | null,
  schema: Schema,
): Promise<void> {
  const span = spanOf(batch)
  const overlapping = (m?.files ?? []).filter((f) => touches(f, span))
  if (overlapping.length === 0) return
  const existing = await readFiles(ctx, ds, ref, overlapping, schema.slice(0, 2), ['symbol', 'timestamp'])
  const keys = new Set<string>()
  const es = existing.columns.symbol.values as string[]
  const et = existing.columns.timestamp.values as Float64Array
  for (let i = 0; i < existing.length; i++) keys.add(`${es[i]}\u0000${et[i]}`)
  const bs = batch.columns.symbol.values as string[]
  const bt = batch.columns.timestamp.values as Float64Array
  const dups: { symbol: string; timestamp: string }[] = []
  let total = 0
  for (let i = 0; i < batch.length; i++) {
    if (keys.has(`${bs[i]}\u0000${bt[i]}`)) {
      total++
      if (dups.length < 100) dups.push({ symbol: bs[i], timestamp: formatUs(bt[i]) })
    }
  }
  if (total) throw new DuplicateKeyError(dups, total)
}

/**
 * Removes stored rows inside `span` (and, for replace, adds `batch`). Files entirely inside the
 * span are dropped without being read.
 */
export function rewritePlanner(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  span: Span,
  batch: Table | null,
  schema: Schema,
  onDeleted?: (rows: number) => void,
): Planner {
  return async (m): Promise<Plan | null> => {
    const affected = (m?.files ?? []).filter((f) => touches(f, span))
    const whole = affected.filter(
      (f) =>
        f.minTs >= span.min && f.maxTs <= span.max && (span.symbols === null || f.symbols.every((s) => span.symbols!.has(s))),
    )
    const partial = affected.filter((f) => !whole.includes(f))
    let deleted = whole.reduce((s, f) => s + f.rows, 0)
    const kept: Table[] = []
    if (partial.length) {
      const existing = await readFiles(ctx, ds, ref, partial, schema)
      const sym = existing.columns.symbol.values as string[]
      const ts = existing.columns.timestamp.values as Float64Array
      const keep: number[] = []
      for (let i = 0; i < existing.length; i++) {
        const inside = ts[i] >= span.min && ts[i] <= span.max && (span.symbols === null || span.symbols.has(sym[i]))
        if (!inside) keep.push(i)
      }
      deleted += existing.length - keep.length
      kept.push(keep.length === existing.length ? existing : take(existing, keep))
    }
    onDeleted?.(deleted)
    if (batch === null && deleted === 0) return null
    if (batch !== null && affected.length === 0) return { remove: [], add: [batch] }
    const next = sortTable(concat(batch ? [...kept, batch] : kept, schema))
    return { remove: affected, add: next.length ? [next] : [] }
  }
}
