/**
 * The leakage-safe core every training output is built from: load the symbols (in parallel),
 * split by time on distinct timestamps, drop the `gap` and `embargo`, fill missing values with
 * training statistics only and never across a symbol or segment, compute the target per symbol,
 * and purge every row whose label looks past the end of its own segment. What remains are three
 * lists of row indices into one table, each in (symbol, timestamp) order.
 */

import { NotFoundError, ValidationError } from '../core/errors.js'
import { formatUs } from '../core/time.js'
import type { DataStorage, Schema, Table } from '../core/types.js'
import { type ColumnFillReport, fillMissing } from './fill.js'
import { loadSymbols } from './load.js'
import { resolveTarget, type TargetSpec, type TrainingOptions } from './options.js'
import { distinctTimestamps, splitTimeBounds, type TimeBounds } from './split.js'
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
    /** In the `gap` between segments (and rows with a null timestamp). */
    gap: number
    /** Before the first or after the last segment: outside a walk-forward fold (0 for a split). */
    outside: number
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

/** The rows a training request reads: `load` in parallel per symbol, or one read of everything. */
export interface LoadedTable {
  table: Table
  target: TargetSpec
  /** The symbols asked for (sorted), or null for all. */
  symbols: string[] | null
}

/** Checks the request against the dataset's schema and reads its rows (the I/O of `prepareTrainingData`). */
export async function loadTrainingTable(
  storage: DataStorage,
  dataset: string,
  o: Pick<TrainingOptions, 'symbols' | 'features' | 'target' | 'fill' | 'start' | 'end' | 'concurrency'>,
): Promise<LoadedTable> {
  const { schema, symbols } = await inspectDataset(storage, dataset, o.symbols)
  const { target, columns } = checkColumns(dataset, schema, o)
  // Symbols given: one read per symbol, `concurrency` at once. All symbols: one read.
  const range = { start: o.start, end: o.end, columns }
  const table = symbols
    ? await loadSymbols(storage, dataset, { symbols, ...range, concurrency: o.concurrency })
    : await storage.read(dataset, range)
  return { table, target, symbols }
}

export async function prepareTrainingData(storage: DataStorage, dataset: string, o: TrainingOptions): Promise<PreparedData> {
  return prepareTable(dataset, await loadTrainingTable(storage, dataset, o), o)
}

/** Segment id of a row in no segment (a gap, the embargo, a purged label, no target). */
const NONE = 255

/** Time bounds of the three segments: the chronological split's, or one walk-forward fold's. */
export type SegmentBounds = { train: TimeBounds; validation: TimeBounds; test: TimeBounds }

/**
 * The CPU part of `prepareTrainingData`: split, embargo, fills, target and purge over loaded rows.
 * `cut` gives the segments' time bounds over the table's sorted distinct timestamps (a
 * walk-forward fold); by default they come from `testSize`, `validationSize` and `gap`.
 */
export function prepareTable(
  dataset: string,
  loaded: LoadedTable,
  o: Pick<TrainingOptions, 'features' | 'embargo' | 'fill'> &
    Partial<Pick<TrainingOptions, 'testSize' | 'validationSize' | 'gap'>>,
  cut?: { distinct: Float64Array; bounds: SegmentBounds },
): PreparedData {
  const { target, symbols } = loaded
  let table = loaded.table
  const rowsLoaded = table.length
  if (rowsLoaded === 0) {
    const which = symbols ? symbols.join(', ') : `dataset '${dataset}'`
    throw new ValidationError([{ field: 'symbols', message: `no rows for ${which} in the requested range` }])
  }
  const distinct = cut?.distinct ?? distinctTimestamps(table)
  const bounds =
    cut?.bounds ?? splitTimeBounds(distinct, { testSize: o.testSize as number, validationSize: o.validationSize, gap: o.gap })
  const ts0 = (table.columns.timestamp as { values: Float64Array }).values
  const assigned = assignSegments(ts0, bounds, o.embargo * 1000)
  let seg = assigned.seg
  let segEnd = assigned.segEnd
  const { gapRows, outsideRows, embargoRows } = assigned

  let fillReport: Record<string, ColumnFillReport> = {}
  let fillDropped = 0
  if (o.fill && Object.keys(o.fill).length > 0) {
    const filled = fillMissing(table, { columns: o.fill, trainRows: indicesOf(seg, 0), within: seg })
    fillReport = filled.columns
    fillDropped = filled.rowsDropped
    if (filled.rowsDropped > 0) {
      const tsf = (filled.table.columns.timestamp as { values: Float64Array }).values
      ;({ seg, segEnd } = keptSegments(seg, filled.rowIndex, tsf))
    }
    table = filled.table
  }

  const { values: y, labelTs } = computeTarget(table, target)
  const ts = (table.columns.timestamp as { values: Float64Array }).values
  const { counts, lo, hi, purged, missingTarget } = purgeLabels(seg, ts, y, labelTs, segEnd, target.horizon)
  const segments = segmentRows(seg, counts)
  if (segments.train.length === 0) {
    throw new ValidationError([
      { field: 'testSize', message: 'no training rows remain after the split, gap, embargo and label purge' },
    ])
  }
  const info = (s: number): SegmentInfo => ({
    rows: counts[s],
    start: counts[s] ? formatUs(lo[s]) : null,
    end: counts[s] ? formatUs(hi[s]) : null,
  })
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
      segments: { train: info(0), validation: info(1), test: info(2) },
      dropped: { gap: gapRows, outside: outsideRows, embargo: embargoRows, purged, missingTarget, fill: fillDropped },
      fill: fillReport,
    },
  }
}

/**
 * The dataset's schema (a `limit: 0` read: the schema only) and the symbols to load, sorted and
 * deduplicated: those given, else null (all). `NotFoundError` for an unknown dataset.
 */
export async function inspectDataset(
  storage: DataStorage,
  dataset: string,
  symbols: string[] | undefined,
): Promise<{ schema: Schema; symbols: string[] | null }> {
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

/**
 * One pass: the segment of each row by time (`NONE` in a gap, before or after every segment,
 * or for a null timestamp), then the embargo (rows of a later segment within `embargoUs` of the
 * previous segment's last timestamp), and each segment's last timestamp. Hot loops live in
 * small functions like this one so the JIT optimizes them whole.
 */
function assignSegments(
  ts: Float64Array,
  bounds: SegmentBounds,
  embargoUs: number,
): { seg: Uint8Array; segEnd: Float64Array; gapRows: number; outsideRows: number; embargoRows: number } {
  const n = ts.length
  const trainStart = (bounds.train as { start: number }).start
  const trainEnd = (bounds.train as { end: number }).end
  const valStart = bounds.validation?.start ?? Number.POSITIVE_INFINITY
  const valEnd = bounds.validation?.end ?? Number.NEGATIVE_INFINITY
  const testStart = bounds.test?.start ?? Number.POSITIVE_INFINITY
  const testEnd = bounds.test?.end ?? Number.NEGATIVE_INFINITY
  const lastEnd = bounds.test?.end ?? bounds.validation?.end ?? trainEnd
  const valFrom = embargoUs > 0 ? trainEnd + embargoUs : Number.NEGATIVE_INFINITY
  const testFrom = embargoUs > 0 ? (bounds.validation?.end ?? trainEnd) + embargoUs : Number.NEGATIVE_INFINITY
  const seg = new Uint8Array(n)
  const segEnd = new Float64Array(3).fill(Number.NEGATIVE_INFINITY)
  let gapRows = 0
  let outsideRows = 0
  let embargoRows = 0
  for (let i = 0; i < n; i++) {
    const t = ts[i]
    let s = t >= trainStart && t <= trainEnd ? 0 : t >= valStart && t <= valEnd ? 1 : t >= testStart && t <= testEnd ? 2 : NONE
    if (s === NONE) {
      if (t < trainStart || t > lastEnd) outsideRows++
      else gapRows++
    } else if ((s === 1 && t <= valFrom) || (s === 2 && t <= testFrom)) {
      s = NONE
      embargoRows++
    } else if (t > segEnd[s]) segEnd[s] = t
    seg[i] = s
  }
  return { seg, segEnd, gapRows, outsideRows, embargoRows }
}

/** The segments of the rows a `drop` fill kept (`rowIndex`: their input rows) and each segment's last timestamp. */
function keptSegments(seg: Uint8Array, rowIndex: Uint32Array, ts: Float64Array): { seg: Uint8Array; segEnd: Float64Array } {
  const next = new Uint8Array(rowIndex.length)
  const segEnd = new Float64Array(3).fill(Number.NEGATIVE_INFINITY)
  for (let i = 0; i < next.length; i++) {
    const s = seg[rowIndex[i]]
    next[i] = s
    if (s !== NONE && ts[i] > segEnd[s]) segEnd[s] = ts[i]
  }
  return { seg: next, segEnd }
}

/**
 * Takes out of their segment the rows without a target and those whose label lies past their
 * segment's last timestamp (purged: whether or not the label exists); counts what stays and its
 * first and last timestamp per segment.
 */
function purgeLabels(
  seg: Uint8Array,
  ts: Float64Array,
  y: Float64Array,
  labelTs: Float64Array,
  segEnd: Float64Array,
  horizon: number,
): { counts: number[]; lo: Float64Array; hi: Float64Array; purged: number; missingTarget: number } {
  let purged = 0
  let missingTarget = 0
  const counts = [0, 0, 0]
  const lo = new Float64Array(3).fill(Number.POSITIVE_INFINITY)
  const hi = new Float64Array(3).fill(Number.NEGATIVE_INFINITY)
  const n = seg.length
  for (let i = 0; i < n; i++) {
    const s = seg[i]
    if (s === NONE) continue
    const label = labelTs[i]
    if (y[i] !== y[i]) {
      if (horizon > 0 && label === label && !(label <= segEnd[s])) purged++
      else missingTarget++
      seg[i] = NONE
    } else if (label > segEnd[s]) {
      purged++
      seg[i] = NONE
    } else {
      counts[s]++
      const t = ts[i]
      if (t < lo[s]) lo[s] = t
      if (t > hi[s]) hi[s] = t
    }
  }
  return { counts, lo, hi, purged, missingTarget }
}

/** Row indices per segment, ascending, in one pass. */
function segmentRows(seg: Uint8Array, counts: number[]): Record<SegmentName, Uint32Array> {
  const train = new Uint32Array(counts[0])
  const validation = new Uint32Array(counts[1])
  const test = new Uint32Array(counts[2])
  let a = 0
  let b = 0
  let c = 0
  for (let i = 0; i < seg.length; i++) {
    const s = seg[i]
    if (s === 0) train[a++] = i
    else if (s === 1) validation[b++] = i
    else if (s === 2) test[c++] = i
  }
  return { train, validation, test }
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
