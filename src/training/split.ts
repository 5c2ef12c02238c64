/**
 * Leakage-safe time splits over a `Table`: a chronological train/validation/test split across all
 * symbols and walk-forward folds. Both cut on *distinct timestamps*, so a timestamp's rows are all
 * in one segment: every validation timestamp is after every training one, every test timestamp
 * after every validation one, and `gap` distinct timestamps between segments belong to none.
 */

import { ValidationError } from '../core/errors.js'
import type { Table } from '../core/types.js'

/** One segment of a split: the rows whose timestamp lies in [start, end]. */
export interface TimeSegment {
  /** Row indices into the input table, ascending (so (symbol, timestamp) order if the table is sorted). */
  rows: Uint32Array
  /** First and last distinct timestamp of the segment (epoch µs, inclusive); `null` when empty. */
  start: number | null
  end: number | null
  /** Distinct timestamps in the segment. */
  timestamps: number
}

export interface SplitOptions {
  /** Fraction of distinct timestamps for the test segment (the latest), in [0, 1). */
  testSize: number
  /** Fraction of distinct timestamps for the validation segment (just before test), in [0, 1). Default 0. */
  validationSize?: number
  /** Distinct timestamps dropped between consecutive non-empty segments. Default 0. */
  gap?: number
}

export interface ChronologicalSplit {
  train: TimeSegment
  validation: TimeSegment
  test: TimeSegment
  /** Distinct (non-null) timestamps in the table. */
  distinctTimestamps: number
  /** Rows in no segment: in a gap, or with a null timestamp. */
  rowsDropped: number
}

export interface WalkForwardOptions {
  /** Number of folds (≥ 1). */
  folds: number
  /** `expanding`: each fold trains on everything before its test block; `rolling`: on the last `trainSize`. Default `expanding`. */
  window?: 'expanding' | 'rolling'
  /** Distinct timestamps per test block. Default `floor(distinct / (folds + 1))`. */
  testSize?: number
  /** Rolling window length in distinct timestamps. Default: the first fold's training length. */
  trainSize?: number
  /** Distinct timestamps dropped between each fold's train and test blocks. Default 0. */
  gap?: number
}

export interface WalkForwardFold {
  train: TimeSegment
  test: TimeSegment
}

/**
 * Sorted distinct non-null values of the `timestamp` column. A table sorted by (symbol, timestamp)
 * is a few ascending runs: those are deduplicated and merged pairwise (linear time); anything
 * else is sorted.
 */
export function distinctTimestamps(table: Table): Float64Array {
  const ts = timestamps(table)
  const n = ts.length
  // Ascending runs of non-null values, each deduplicated into `buf` at [runs[k], runs[k+1]).
  const buf = new Float64Array(n)
  const runs: number[] = [0]
  let u = 0
  for (let i = 0; i < n; i++) {
    const t = ts[i]
    if (t !== t) continue
    if (u > runs[runs.length - 1]) {
      const prev = buf[u - 1]
      if (t === prev) continue
      if (t < prev) {
        runs.push(u)
        if (runs.length > 64 && runs.length > n >>> 6) return sortedDistinct(ts)
      }
    }
    buf[u++] = t
  }
  runs.push(u)
  let parts: Float64Array[] = runs.slice(0, -1).map((lo, k) => buf.subarray(lo, runs[k + 1]))
  if (parts.length === 0) return new Float64Array(0)
  while (parts.length > 1) {
    const next: Float64Array[] = []
    for (let k = 0; k < parts.length; k += 2) next.push(k + 1 < parts.length ? mergeDistinct(parts[k], parts[k + 1]) : parts[k])
    parts = next
  }
  return parts[0].slice()
}

/** The union of two sorted distinct arrays, sorted and distinct. */
export function mergeDistinct(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length)
  let i = 0
  let j = 0
  let k = 0
  while (i < a.length && j < b.length) {
    const x = a[i]
    const y = b[j]
    if (x < y) {
      out[k++] = x
      i++
    } else if (y < x) {
      out[k++] = y
      j++
    } else {
      out[k++] = x
      i++
      j++
    }
  }
  while (i < a.length) out[k++] = a[i++]
  while (j < b.length) out[k++] = b[j++]
  return out.subarray(0, k)
}

function sortedDistinct(ts: Float64Array): Float64Array {
  const sorted = new Float64Array(ts.length)
  let n = 0
  for (let i = 0; i < ts.length; i++) if (ts[i] === ts[i]) sorted[n++] = ts[i]
  const view = sorted.subarray(0, n).sort()
  let u = 0
  for (let i = 0; i < n; i++) if (i === 0 || view[i] !== view[i - 1]) view[u++] = view[i]
  return sorted.slice(0, u)
}

/** Index ranges into `d` sorted distinct timestamps, `[lo, hi)`, of each segment: the arithmetic of `chronologicalSplit`. */
export function splitIndexRanges(
  d: number,
  options: SplitOptions,
): { trainHi: number; valLo: number; valHi: number; testLo: number } {
  const testSize = fraction('testSize', options.testSize)
  const validationSize = fraction('validationSize', options.validationSize ?? 0)
  const gap = count('gap', options.gap ?? 0)
  if (testSize + validationSize >= 1) {
    throw new ValidationError([
      { field: 'testSize', message: `testSize + validationSize must be < 1, got ${testSize} + ${validationSize}` },
    ])
  }
  const nTest = ceilFraction(d, testSize)
  const nVal = ceilFraction(d, validationSize)
  const gaps = gap * ((nTest > 0 ? 1 : 0) + (nVal > 0 ? 1 : 0))
  const nTrain = d - nTest - nVal - gaps
  if (nTrain < 1) {
    throw new ValidationError([
      {
        field: 'testSize',
        message:
          `train segment would be empty: ${d} distinct timestamps, test takes ${nTest}, validation ${nVal}, ` + `gaps ${gaps}`,
      },
    ])
  }
  const trainHi = nTrain
  const valLo = nVal > 0 ? trainHi + gap : trainHi
  const valHi = valLo + nVal
  const testLo = nTest > 0 ? valHi + gap : d
  return { trainHi, valLo, valHi, testLo }
}

/** A segment's first and last distinct timestamp (epoch µs, inclusive), or null when empty. */
export type TimeBounds = { start: number; end: number } | null

/** The time bounds of each segment of `chronologicalSplit` over sorted distinct timestamps. */
export function splitTimeBounds(
  distinct: Float64Array,
  options: SplitOptions,
): { train: TimeBounds; validation: TimeBounds; test: TimeBounds } {
  const d = distinct.length
  const { trainHi, valLo, valHi, testLo } = splitIndexRanges(d, options)
  const bound = (lo: number, hi: number): TimeBounds => (hi > lo ? { start: distinct[lo], end: distinct[hi - 1] } : null)
  return { train: bound(0, trainHi), validation: bound(valLo, valHi), test: bound(testLo, d) }
}

/**
 * Splits by time across all symbols. Sizes are fractions of the distinct timestamps, rounded up
 * (a positive fraction always gets at least one timestamp); training gets what remains after the
 * test and validation blocks and the gaps. Throws `ValidationError` naming the segment that would
 * be empty, rather than returning a split with no training rows.
 */
export function chronologicalSplit(table: Table, options: SplitOptions): ChronologicalSplit {
  const distinct = distinctTimestamps(table)
  const d = distinct.length
  const { trainHi, valLo, valHi, testLo } = splitIndexRanges(d, options)
  const ts = timestamps(table)
  const train = segment(ts, distinct, 0, trainHi)
  const validation = segment(ts, distinct, valLo, valHi)
  const test = segment(ts, distinct, testLo, d)
  return {
    train,
    validation,
    test,
    distinctTimestamps: d,
    rowsDropped: table.length - train.rows.length - validation.rows.length - test.rows.length,
  }
}

/**
 * Walk-forward folds for backtesting: the last `folds × testSize` distinct timestamps form
 * consecutive test blocks; each fold trains on the timestamps before its block (minus `gap`),
 * all of them (`expanding`) or the last `trainSize` (`rolling`). Folds are in time order.
 */
export function walkForwardFolds(table: Table, options: WalkForwardOptions): WalkForwardFold[] {
  const distinct = distinctTimestamps(table)
  const ts = timestamps(table)
  return walkForwardRanges(distinct.length, options).map((f) => ({
    train: segment(ts, distinct, f.trainLo, f.trainHi),
    test: segment(ts, distinct, f.testLo, f.testHi),
  }))
}

/** Index ranges `[lo, hi)` into `d` sorted distinct timestamps of each walk-forward fold: the arithmetic of `walkForwardFolds`. */
export function walkForwardRanges(
  d: number,
  options: WalkForwardOptions,
): { trainLo: number; trainHi: number; testLo: number; testHi: number }[] {
  const folds = count('folds', options.folds)
  if (folds < 1) throw new ValidationError([{ field: 'folds', message: `must be ≥ 1, got ${folds}` }])
  const gap = count('gap', options.gap ?? 0)
  const testSize = count('testSize', options.testSize ?? Math.floor(d / (folds + 1)))
  if (testSize < 1) {
    throw new ValidationError([
      { field: 'testSize', message: `test blocks would be empty: ${d} distinct timestamps for ${folds} folds` },
    ])
  }
  const firstTestLo = d - folds * testSize
  const firstTrainHi = firstTestLo - gap
  if (firstTrainHi < 1) {
    throw new ValidationError([
      {
        field: 'folds',
        message: `first fold's train segment would be empty: ${d} distinct timestamps, ${folds} test blocks of ${testSize}, gap ${gap}`,
      },
    ])
  }
  if (options.window !== undefined && options.window !== 'expanding' && options.window !== 'rolling') {
    throw new ValidationError([{ field: 'window', message: `expected 'expanding' or 'rolling', got '${options.window}'` }])
  }
  const rolling = options.window === 'rolling'
  const trainSize = count('trainSize', options.trainSize ?? firstTrainHi)
  if (rolling && trainSize < 1) throw new ValidationError([{ field: 'trainSize', message: 'must be ≥ 1' }])
  const out = []
  for (let k = 0; k < folds; k++) {
    const testLo = firstTestLo + k * testSize
    const trainHi = testLo - gap
    const trainLo = rolling ? Math.max(0, trainHi - trainSize) : 0
    out.push({ trainLo, trainHi, testLo, testHi: testLo + testSize })
  }
  return out
}

/**
 * Segment id of every row (0 train, 1 validation, 2 test, 255 none): pass it as `within` to
 * `fillMissing` so forward/backward fills never carry values across a segment boundary.
 */
export function segmentIds(length: number, split: Pick<ChronologicalSplit, 'train' | 'validation' | 'test'>): Uint8Array {
  const ids = new Uint8Array(length).fill(255)
  const parts = [split.train.rows, split.validation.rows, split.test.rows]
  for (let s = 0; s < 3; s++) {
    const rows = parts[s]
    for (let i = 0; i < rows.length; i++) ids[rows[i]] = s
  }
  return ids
}

function segment(ts: Float64Array, distinct: Float64Array, lo: number, hi: number): TimeSegment {
  if (hi <= lo) return { rows: new Uint32Array(0), start: null, end: null, timestamps: 0 }
  const start = distinct[lo]
  const end = distinct[hi - 1]
  let n = 0
  for (let i = 0; i < ts.length; i++) if (ts[i] >= start && ts[i] <= end) n++
  const rows = new Uint32Array(n)
  let j = 0
  for (let i = 0; i < ts.length; i++) if (ts[i] >= start && ts[i] <= end) rows[j++] = i
  return { rows, start, end, timestamps: hi - lo }
}

/** `ceil(d * f)`, forgiving floating-point noise (20 × 0.15 is 3, not 4). */
function ceilFraction(d: number, f: number): number {
  return Math.ceil(d * f - 1e-9)
}

function timestamps(table: Table): Float64Array {
  const col = table.columns.timestamp
  if (col?.type !== 'timestamp') {
    throw new ValidationError([{ field: 'timestamp', message: 'the table has no timestamp column' }])
  }
  return col.values
}

function fraction(field: string, v: number): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
    throw new ValidationError([{ field, message: `expected a fraction in [0, 1), got ${v}` }])
  }
  return v
}

function count(field: string, v: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new ValidationError([{ field, message: `expected a non-negative integer, got ${v}` }])
  }
  return v
}
