/**
 * The leakage-safe core every training output is built from: load the symbols (in parallel),
 * split by time on distinct timestamps, drop the `gap` and `embargo`, fill missing values with
 * training statistics only and never across a symbol or segment, compute the target per symbol,
 * and purge every row whose label looks past the end of its own segment. What remains are three
 * lists of row indices into one table, each in (symbol, timestamp) order.
 */

import { NotFoundError, ValidationError } from '../errors.js'
import { formatUs } from '../table/time.js'
import type { DataStorage, Schema, Table } from '../types.js'
import { type ColumnFillReport, fillMissing } from './fill.js'
import { loadSymbols } from './load.js'
import { resolveTarget, type TargetSpec, type TrainingOptions } from './options.js'
import { distinctTimestamps, segmentIdsByTime, splitTimeBounds } from './split.js'
import { computeTarget } from './target.js'

export const SEGMENTS = ['train', 'validation', 'test'] as const
export type SegmentName = (typeof SEGMENTS)[number]

export interface SegmentInfo {
  rows: number
  /** First and last timestamp of the segment's rows (ISO-8601 UTC); null when empty. */
  start: string | null
  end: string | null
}

export interface TrainingReport {
  dataset: string
  symbols: string[]
  features: string[]
  target: TargetSpec
  rowsLoaded: number
  distinctTimestamps: number
  segments: Record<SegmentName, SegmentInfo>
  /** Rows in no segment, by why. */
  dropped: {
    /** In the `gap` between segments. */
    gap: number
    /** Within `embargo` ms after the previous segment. */
    embargo: number
    /** Their label looks past the end of their segment (the last `horizon` rows of a segment and symbol). */
    purged: number
    /** No target: the last `horizon` rows of a symbol, or a missing price. */
    missingTarget: number
    /** Dropped by a `drop` fill. */
    fill: number
  }
  fill: Record<string, ColumnFillReport>
}

export interface PreparedData {
  /** The loaded (and filled) rows, sorted by (symbol, timestamp). */
  table: Table
  /** Target per table row (NaN when none) and the timestamp it looks at. */
  y: Float64Array
  labelTs: Float64Array
  /** Row indices into `table` per segment, ascending. */
  segments: Record<SegmentName, Uint32Array>
  report: TrainingReport
}

const NUMERIC = new Set(['float64', 'int64', 'boolean'])

export async function prepareTrainingData(storage: DataStorage, dataset: string, o: TrainingOptions): Promise<PreparedData> {
  const { schema, symbols } = await inspectDataset(storage, dataset, o.symbols)
  const { target, columns } = checkColumns(dataset, schema, o)

  // Symbols given: one read per symbol, `concurrency` at once. All symbols: one read.
  const range = { start: o.start, end: o.end, columns }
  let table = symbols
    ? await loadSymbols(storage, dataset, { symbols, ...range, concurrency: o.concurrency })
    : await storage.read(dataset, range)
  const rowsLoaded = table.length
  if (rowsLoaded === 0) {
    const which = symbols ? symbols.join(', ') : `dataset '${dataset}'`
    throw new ValidationError([{ field: 'symbols', message: `no rows for ${which} in the requested range` }])
  }
  const distinct = distinctTimestamps(table)
  const bounds = splitTimeBounds(distinct, { testSize: o.testSize, validationSize: o.validationSize, gap: o.gap })
  const ts0 = (table.columns.timestamp as { values: Float64Array }).values
  let seg = segmentIdsByTime(ts0, bounds)
  let gapRows = 0
  for (let i = 0; i < seg.length; i++) if (seg[i] === 255) gapRows++

  // Embargo: rows of a later segment within `embargo` ms of the previous segment's last timestamp.
  let embargoRows = 0
  if (o.embargo > 0) {
    const trainEnd = (bounds.train as { end: number }).end
    const ends = [trainEnd, bounds.validation?.end ?? trainEnd]
    const embargoUs = o.embargo * 1000
    for (let i = 0; i < seg.length; i++) {
      const s = seg[i]
      if ((s === 1 || s === 2) && ts0[i] <= (ends[s - 1] as number) + embargoUs) {
        seg[i] = 255
        embargoRows++
      }
    }
  }

  let fillReport: Record<string, ColumnFillReport> = {}
  let fillDropped = 0
  if (o.fill && Object.keys(o.fill).length > 0) {
    const trainRows = indicesOf(seg, 0)
    const filled = fillMissing(table, { columns: o.fill, trainRows, within: seg })
    fillReport = filled.columns
    fillDropped = filled.rowsDropped
    if (filled.rowsDropped > 0) {
      const next = new Uint8Array(filled.rowIndex.length)
      for (let i = 0; i < next.length; i++) next[i] = seg[filled.rowIndex[i]]
      seg = next
    }
    table = filled.table
  }

  const { values: y, labelTs } = computeTarget(table, target)
  const ts = (table.columns.timestamp as { values: Float64Array }).values
  // A segment's rows must have their label inside the segment: the last timestamp it covers.
  const segEnd = new Float64Array(3).fill(Number.NEGATIVE_INFINITY)
  for (let i = 0; i < seg.length; i++) if (seg[i] !== 255 && ts[i] > segEnd[seg[i]]) segEnd[seg[i]] = ts[i]
  let purged = 0
  let missingTarget = 0
  const counts = [0, 0, 0]
  for (let i = 0; i < seg.length; i++) {
    const s = seg[i]
    if (s === 255) continue
    if (Number.isNaN(y[i])) {
      // Rows whose label would lie past the segment end are purged, whether or not the label exists.
      if (target.horizon > 0 && !(labelTs[i] <= segEnd[s]) && labelTs[i] === labelTs[i]) purged++
      else missingTarget++
      seg[i] = 255
    } else if (labelTs[i] > segEnd[s]) {
      purged++
      seg[i] = 255
    } else counts[s]++
  }
  const segments = { train: indicesOf(seg, 0), validation: indicesOf(seg, 1), test: indicesOf(seg, 2) }
  if (segments.train.length === 0) {
    throw new ValidationError([
      { field: 'testSize', message: 'no training rows remain after the split, gap, embargo and label purge' },
    ])
  }
  const info = (rows: Uint32Array): SegmentInfo => {
    let lo = Number.POSITIVE_INFINITY
    let hi = Number.NEGATIVE_INFINITY
    for (let k = 0; k < rows.length; k++) {
      const t = ts[rows[k]]
      if (t < lo) lo = t
      if (t > hi) hi = t
    }
    return { rows: rows.length, start: rows.length ? formatUs(lo) : null, end: rows.length ? formatUs(hi) : null }
  }
  return {
    table,
    y,
    labelTs,
    segments,
    report: {
      dataset,
      symbols: symbols ?? distinctSymbols(table),
      features: [...o.features],
      target,
      rowsLoaded,
      distinctTimestamps: distinct.length,
      segments: { train: info(segments.train), validation: info(segments.validation), test: info(segments.test) },
      dropped: { gap: gapRows, embargo: embargoRows, purged, missingTarget, fill: fillDropped },
      fill: fillReport,
    },
  }
}

/**
 * The dataset's schema (a `limit: 0` read: the schema only) and the symbols to load, sorted:
 * those given, or with `all` every symbol stored (`describe`), else null. `NotFoundError` for an
 * unknown dataset.
 */
export async function inspectDataset(
  storage: DataStorage,
  dataset: string,
  symbols: string[] | undefined,
  all = false,
): Promise<{ schema: Schema; symbols: string[] | null }> {
  if (!symbols && all) {
    const d = await storage.describe(dataset)
    if (!d) throw new NotFoundError(`dataset '${dataset}'`)
    return { schema: d.schema, symbols: d.symbols }
  }
  if (!(await storage.listDatasets()).includes(dataset)) throw new NotFoundError(`dataset '${dataset}'`)
  const empty = await storage.read(dataset, { limit: 0 })
  return { schema: empty.schema, symbols: symbols ? [...new Set(symbols)].sort() : null }
}

/**
 * Resolves the target and checks the columns against the dataset: every feature exists and is
 * numeric, the target column is numeric, every fill names a read column. Returns the columns to read.
 */
export function checkColumns(
  dataset: string,
  schema: Schema,
  o: Pick<TrainingOptions, 'features' | 'target' | 'fill'>,
): { target: TargetSpec; columns: string[] } {
  const types = new Map(schema.map((c) => [c.name, c.type]))
  const target = resolveTarget(o.target, new Set(types.keys()))
  const issues = o.features.flatMap((f, i) => {
    const type = types.get(f)
    if (type === undefined) return [{ field: `features[${i}]`, message: `no column '${f}' in dataset '${dataset}'` }]
    if (!NUMERIC.has(type)) return [{ field: `features[${i}]`, message: `'${f}' is ${type}: features must be numeric` }]
    return []
  })
  const tType = types.get(target.column)
  if (tType && !NUMERIC.has(tType)) issues.push({ field: 'target', message: `'${target.column}' is ${tType}, not numeric` })
  const columns = [...new Set([...o.features, target.column])].filter((c) => c !== 'symbol' && c !== 'timestamp')
  for (const name of Object.keys(o.fill ?? {})) {
    if (!columns.includes(name)) issues.push({ field: `fill.${name}`, message: 'not a feature or the target column' })
  }
  if (issues.length) throw new ValidationError(issues)
  return { target, columns }
}

/** The distinct symbols of a table sorted by symbol. */
function distinctSymbols(table: Table): string[] {
  const v = (table.columns.symbol as { values: (string | null)[] }).values
  const out: string[] = []
  for (let i = 0; i < v.length; i++) if (i === 0 || v[i] !== v[i - 1]) out.push(v[i] as string)
  return out
}

/** Ascending indices `i` with `ids[i] === id`. */
function indicesOf(ids: Uint8Array, id: number): Uint32Array {
  let n = 0
  for (let i = 0; i < ids.length; i++) if (ids[i] === id) n++
  const out = new Uint32Array(n)
  for (let i = 0, j = 0; i < ids.length; i++) if (ids[i] === id) out[j++] = i
  return out
}
