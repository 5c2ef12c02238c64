/**
 * Training data over any `DataStorage`: `getTrainingData` gives the three segments as tables
 * (with the target column), `getFeatureMatrix` one row-major typed-array matrix whose rows are
 * the train, validation and test segments back to back (each a zero-copy view), normalized by a
 * scaler fitted on the training rows only and applied to all of them.
 */

import { take } from '../core/table.js'
import type { DataStorage, Table } from '../core/types.js'
import {
  givenScaler,
  type MatrixOptionsInput,
  MatrixOptionsSchema,
  parseOptions,
  type TrainingOptionsInput,
  TrainingOptionsSchema,
} from './options.js'
import { type PreparedData, prepareTrainingData, SEGMENTS, type SegmentName, type TrainingReport } from './prepare.js'
import { Scaler } from './scaler.js'
import { numericValues } from './target.js'

export interface TrainingData {
  train: Table
  validation: Table
  test: Table
  /** Name of the target column in the tables. */
  target: string
  report: TrainingReport
}

/** The three segments as tables sorted by (symbol, timestamp), each with the target as a float64 column. */
export async function getTrainingData(
  storage: DataStorage,
  options: TrainingOptionsInput & { dataset: string },
): Promise<TrainingData> {
  const { dataset, ...rest } = options
  const o = parseOptions(TrainingOptionsSchema, rest)
  const p = await prepareTrainingData(storage, dataset, o)
  const name = p.report.target.name
  const withTarget: Table = p.table.columns[name]
    ? p.table
    : {
        length: p.table.length,
        schema: [...p.table.schema, { name, type: 'float64' }],
        columns: { ...p.table.columns, [name]: { type: 'float64', values: p.y } },
      }
  return {
    train: take(withTarget, p.segments.train),
    validation: take(withTarget, p.segments.validation),
    test: take(withTarget, p.segments.test),
    target: name,
    report: p.report,
  }
}

export type MatrixArray = Float32Array | Float64Array

/** One segment of a `FeatureMatrix`: rows `[offset, offset + rows)` of the whole. */
export interface MatrixSegment {
  offset: number
  rows: number
  /** Views into the whole matrix's `X` (`rows × features`) and `y`. */
  X: MatrixArray
  y: MatrixArray
}

export interface FeatureMatrix {
  /** Row-major `shape[0] × shape[1]`: train rows, then validation, then test, each in (symbol, timestamp) order. */
  X: MatrixArray
  /** The target per row. */
  y: MatrixArray
  shape: [number, number]
  featureNames: string[]
  targetName: string
  /** Fitted on the training rows only (or the one passed in); `null` with `normalize: false`. */
  scaler: Scaler | null
  /** Epoch µs per row. */
  timestamps: Float64Array
  /** Per row, an index into `symbols`. */
  symbolIndex: Uint32Array
  symbols: string[]
  segments: Record<SegmentName, MatrixSegment>
  /** Horizon of the target in rows (0 for a stored column): used by sequence windows. */
  horizon: number
  /** Epoch µs of the row each target looks at. */
  labelTs: Float64Array
  report: TrainingReport
}

/** Loads, splits, fills and normalizes: see the module comment. */
export async function getFeatureMatrix(
  storage: DataStorage,
  options: MatrixOptionsInput & { dataset: string },
): Promise<FeatureMatrix> {
  const { dataset, ...rest } = options
  const o = parseOptions(MatrixOptionsSchema, rest)
  const p = await prepareTrainingData(storage, dataset, o)
  return buildMatrix(p, { dtype: o.dtype, normalize: o.normalize, scalerType: o.scalerType, scaler: givenScaler(o) })
}

export interface BuildOptions {
  dtype: 'float32' | 'float64'
  normalize: boolean
  scalerType: 'standard' | 'minmax' | 'robust'
  /** Apply this one instead of fitting. */
  scaler: Scaler | null
}

/** The matrix of prepared data (exported for the HTTP route and benchmarks). */
export function buildMatrix(p: PreparedData, b: BuildOptions): FeatureMatrix {
  const features = p.report.features
  const F = features.length
  const cols = features.map((f, j) => numericValues(p.table.columns[f], `features[${j}]`))
  let scaler: Scaler | null = null
  if (b.normalize) {
    scaler = b.scaler ?? Scaler.fitColumns(b.scalerType, cols, p.segments.train, features)
    scaler.checkFeatures(features)
  }
  const n = p.segments.train.length + p.segments.validation.length + p.segments.test.length
  const Arr = b.dtype === 'float64' ? Float64Array : Float32Array
  const X = new Arr(n * F)
  const y = new Arr(n)
  const timestamps = new Float64Array(n)
  const labelTs = new Float64Array(n)
  const symbolIndex = new Uint32Array(n)
  const tsCol = (p.table.columns.timestamp as { values: Float64Array }).values
  const symCol = (p.table.columns.symbol as { values: (string | null)[] }).values
  const symbols: string[] = []
  const symbolAt = new Map<string, number>()
  const center = scaler ? scaler.center : new Float64Array(F)
  const scale = scaler ? scaler.scale : new Float64Array(F).fill(1)
  const segments = {} as Record<SegmentName, MatrixSegment>
  let off = 0
  for (const name of SEGMENTS) {
    const rows = p.segments[name]
    const m = rows.length
    writeRows(X, off * F, rows, cols, center, scale)
    writeRowMeta(p, rows, off, { y, timestamps, labelTs, symbolIndex }, tsCol, symCol, symbols, symbolAt)
    segments[name] = { offset: off, rows: m, X: X.subarray(off * F, (off + m) * F), y: y.subarray(off, off + m) }
    off += m
  }
  return {
    X,
    y,
    shape: [n, F],
    featureNames: [...features],
    targetName: p.report.target.name,
    scaler,
    timestamps,
    symbolIndex,
    symbols,
    segments,
    horizon: p.report.target.horizon,
    labelTs,
    report: p.report,
  }
}

/** X rows from `cols` at `rows`, normalized, from `at` on: a feature at a time (a small function: the JIT optimizes it whole). */
function writeRows(
  X: MatrixArray,
  at: number,
  rows: Uint32Array,
  cols: Float64Array[],
  center: Float64Array,
  scale: Float64Array,
): void {
  const F = cols.length
  const m = rows.length
  for (let j = 0; j < F; j++) {
    const col = cols[j]
    const c = center[j]
    const s = scale[j]
    for (let k = 0, i = at + j; k < m; k++, i += F) X[i] = (col[rows[k]] - c) / s
  }
}

/** Per matrix row from `off`: target, timestamps and symbol index of table rows `rows`. */
function writeRowMeta(
  p: PreparedData,
  rows: Uint32Array,
  off: number,
  out: { y: MatrixArray; timestamps: Float64Array; labelTs: Float64Array; symbolIndex: Uint32Array },
  tsCol: Float64Array,
  symCol: (string | null)[],
  symbols: string[],
  symbolAt: Map<string, number>,
): void {
  const { y, timestamps, labelTs, symbolIndex } = out
  const py = p.y
  const pl = p.labelTs
  let last: string | null = null
  let current = 0
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]
    const i = off + k
    y[i] = py[r]
    timestamps[i] = tsCol[r]
    labelTs[i] = pl[r]
    const sym = symCol[r] as string
    if (sym !== last) {
      last = sym
      let at = symbolAt.get(sym)
      if (at === undefined) {
        at = symbols.push(sym) - 1
        symbolAt.set(sym, at)
      }
      current = at
    }
    symbolIndex[i] = current
  }
}
