/** What each write mode and delete changes in one partition, planned against its current manifest. */

import { allOwned } from '../concurrency.js'
import { DuplicateKeyError, FileVanishedError } from '../core/errors.js'

import { columnOr, concat, dedupeLastWins, sortTable, tablesEqual, take, timeRange } from '../core/table.js'
import { formatUs } from '../core/time.js'
import type { ManifestFile, PartitionManifest, PartitionRef, Schema, Table } from '../core/types.js'
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
  const tables = await allOwned(files.map((f) => readDataFile(ctx, ds, ref.path, f, columns)))
  if (tables.some((t) => t === null)) throw new FileVanishedError(`${ds}/${ref.path}`)
  return sortTable(concat(tables as Table[], schema))
}

/** upsert: rows of the batch replace stored rows with the same key; nothing changes if all equal. */
export function upsertPlanner(ctx: LakeContext, ds: string, ref: PartitionRef, batch: Table): Planner {
  const span = spanOf(batch)
  return async (m, schema) => {
    const overlapping = (m?.files ?? []).filter((f) => touches(f, span))
    if (overlapping.length === 0) return { remove: [], add: [batch] }
    const existing = await readFiles(ctx, ds, ref, overlapping, schema)
    const merged = dedupeLastWins(concat([existing, batch], schema))
    if (tablesEqual(merged, existing, schema)) return null
    return { remove: overlapping, add: [merged] }
  }
}

/**
 * append: the batch may not contain a stored key, checked against the manifest being committed.
 * A stored key that already holds exactly the batch's row is no conflict (the retry of an append
 * that landed): that row is left as it is.
 */
export function appendPlanner(ctx: LakeContext, ds: string, ref: PartitionRef, batch: Table): Planner {
  return async (m, schema) => {
    const same = await assertNoExistingKeys(ctx, ds, ref, batch, m, schema)
    if (same.length === batch.length) return null
    return { remove: [], add: [same.length ? without(batch, same) : batch] }
  }
}

/**
 * Throws `DuplicateKeyError` when the batch holds a key that a live file of `m` stores with other
 * values; returns the batch rows (ascending) whose key is stored with exactly the same values.
 */
export async function assertNoExistingKeys(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  batch: Table,
  m: PartitionManifest | null,
  schema: Schema,
): Promise<number[]> {
  const span = spanOf(batch)
  const overlapping = (m?.files ?? []).filter((f) => touches(f, span))
  if (overlapping.length === 0) return []
  const keysOnly = await readFiles(ctx, ds, ref, overlapping, schema.slice(0, 2), ['symbol', 'timestamp'])
  const stored = keyIndex(keysOnly)
  const bs = batch.columns.symbol.values as string[]
  const bt = batch.columns.timestamp.values as Float64Array
  const hits: number[] = []
  for (let i = 0; i < batch.length; i++) if (stored.has(`${bs[i]}\u0000${bt[i]}`)) hits.push(i)
  if (hits.length === 0) return []
  // some keys exist: compare their stored rows with the batch's
  const existing = await readFiles(ctx, ds, ref, overlapping, schema)
  const at = keyIndex(existing)
  const dups: { symbol: string; timestamp: string }[] = []
  let total = 0
  const same: number[] = []
  for (const i of hits) {
    const j = at.get(`${bs[i]}\u0000${bt[i]}`)
    if (j !== undefined && rowsEqual(batch, i, existing, j, schema)) same.push(i)
    else {
      total++
      if (dups.length < 100) dups.push({ symbol: bs[i], timestamp: formatUs(bt[i]) })
    }
  }
  if (total) throw new DuplicateKeyError(dups, total)
  return same
}

function keyIndex(t: Table): Map<string, number> {
  const out = new Map<string, number>()
  const s = t.columns.symbol.values as string[]
  const ts = t.columns.timestamp.values as Float64Array
  for (let i = 0; i < t.length; i++) out.set(`${s[i]}\u0000${ts[i]}`, i)
  return out
}

/** Row `i` of `a` equals row `j` of `b` over `schema`, exactly (a column a table lacks is null; NaN equals NaN). */
function rowsEqual(a: Table, i: number, b: Table, j: number, schema: Schema): boolean {
  for (const { name, type } of schema) {
    const x = columnOr(a, name, type)
    const y = columnOr(b, name, type)
    if (x.type === 'int64' && y.type === 'int64') {
      const nx = x.nulls?.[i] === 1
      if (nx !== (y.nulls?.[j] === 1) || (!nx && x.values[i] !== y.values[j])) return false
      continue
    }
    const u = x.values[i]
    const v = y.values[j]
    if (u !== v && !(u !== u && v !== v)) return false
  }
  return true
}

/** `t` without the rows at `drop` (ascending). */
function without(t: Table, drop: number[]): Table {
  const keep: number[] = []
  let d = 0
  for (let i = 0; i < t.length; i++) {
    if (d < drop.length && drop[d] === i) d++
    else keep.push(i)
  }
  return take(t, keep)
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
  onDeleted?: (rows: number) => void,
): Planner {
  return async (m, schema): Promise<Plan | null> => {
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
