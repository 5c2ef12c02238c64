/**
 * Sequence windows for LSTM/RNN models over a `FeatureMatrix`: `lookback` consecutive rows of one
 * symbol, inside one segment, with no time step larger than `maxGap`, and the target of the last
 * row. A window is a start row into the matrix, so each input is a zero-copy view
 * (`lookback × features`) of `X`; `copyTo`/`materialize` fill one preallocated
 * `[n, lookback, features]` buffer for a framework tensor.
 */

import { ValidationError } from '../errors.js'
import type { FeatureMatrix, MatrixArray } from './matrix.js'
import { SEGMENTS, type SegmentName } from './prepare.js'

export interface WindowOptions {
  /** Rows per window (≥ 1). */
  lookback: number
  /** Rows between consecutive window starts of one symbol (default 1). */
  stride?: number
  /**
   * Largest time step allowed inside a window, in ms (default: no limit). A larger step (a
   * missing bar, a weekend) ends the run; windows never straddle it, and a window's target may
   * lie at most `horizon × maxGap` after its last row.
   */
  maxGap?: number
}

export class SequenceWindows {
  readonly count: number

  constructor(
    /** The matrix's `X`: windows are views of it. */
    readonly source: MatrixArray,
    readonly features: number,
    readonly lookback: number,
    /** First matrix row of each window. */
    readonly starts: Uint32Array,
    /** Target per window: `y` of its last row. */
    readonly targets: MatrixArray,
    /** Epoch µs of each window's last row. */
    readonly endTimestamps: Float64Array,
    /** Symbol index (into `FeatureMatrix.symbols`) per window. */
    readonly symbolIndex: Uint32Array,
  ) {
    this.count = starts.length
  }

  /** The shape of `materialize()`: `[count, lookback, features]`. */
  get shape(): [number, number, number] {
    return [this.count, this.lookback, this.features]
  }

  /** Window `i`'s inputs, `lookback × features` row-major: a view of the matrix, no copy. */
  window(i: number): MatrixArray {
    const at = this.starts[i] * this.features
    return this.source.subarray(at, at + this.lookback * this.features)
  }

  /**
   * Copies windows `order[0..k)` (indices, e.g. a shuffled batch) or `[from, to)` into `out`
   * (`k × lookback × features`) and their targets into `targetsOut`; returns k.
   */
  copyTo(out: MatrixArray, indices: ArrayLike<number>, targetsOut?: MatrixArray): number {
    const size = this.lookback * this.features
    const k = indices.length
    if (out.length < k * size) {
      throw new ValidationError([{ field: 'out', message: `holds ${out.length} values, ${k} windows need ${k * size}` }])
    }
    for (let w = 0; w < k; w++) {
      const at = this.starts[indices[w]] * this.features
      out.set(this.source.subarray(at, at + size), w * size)
      if (targetsOut) targetsOut[w] = this.targets[indices[w]]
    }
    return k
  }

  /** Windows `[from, to)` in one new `[n, lookback, features]` buffer (mind the size: n × lookback × features values). */
  materialize(from = 0, to = this.count): MatrixArray {
    const n = Math.max(0, to - from)
    const out = new (this.source.constructor as new (n: number) => MatrixArray)(n * this.lookback * this.features)
    const idx = new Uint32Array(n)
    for (let i = 0; i < n; i++) idx[i] = from + i
    this.copyTo(out, idx)
    return out
  }
}

/** Windows per segment: segments never share a window, nor do symbols or runs split by a gap. */
export function sequenceWindows(m: FeatureMatrix, options: WindowOptions): Record<SegmentName, SequenceWindows> {
  const lookback = options.lookback
  const stride = options.stride ?? 1
  const maxGap = options.maxGap ?? Number.POSITIVE_INFINITY
  const issues = []
  if (!Number.isInteger(lookback) || lookback < 1)
    issues.push({ field: 'lookback', message: `expected an integer ≥ 1, got ${lookback}` })
  if (!Number.isInteger(stride) || stride < 1) issues.push({ field: 'stride', message: `expected an integer ≥ 1, got ${stride}` })
  if (!(maxGap > 0)) issues.push({ field: 'maxGap', message: `expected milliseconds > 0, got ${maxGap}` })
  if (issues.length) throw new ValidationError(issues)
  const maxGapUs = maxGap * 1000
  const labelSlackUs = m.horizon * maxGapUs
  const F = m.shape[1]
  const out = {} as Record<SegmentName, SequenceWindows>
  for (const name of SEGMENTS) {
    const { offset, rows } = m.segments[name]
    const end = offset + rows
    // Two passes over runs (same symbol, steps ≤ maxGap): count, then fill preallocated arrays.
    let count = 0
    for (let pass = 0; pass < 2; pass++) {
      const starts = pass === 1 ? new Uint32Array(count) : null
      const targets = pass === 1 ? new (m.y.constructor as new (n: number) => MatrixArray)(count) : null
      const endTs = pass === 1 ? new Float64Array(count) : null
      const syms = pass === 1 ? new Uint32Array(count) : null
      let k = 0
      let runStart = offset
      for (let i = offset; i <= end; i++) {
        const breaks =
          i === end ||
          (i > runStart && (m.symbolIndex[i] !== m.symbolIndex[i - 1] || m.timestamps[i] - m.timestamps[i - 1] > maxGapUs))
        if (!breaks) continue
        // Run [runStart, i): windows start at runStart, runStart + stride, ...
        for (let s = runStart; s + lookback <= i; s += stride) {
          const last = s + lookback - 1
          if (m.labelTs[last] - m.timestamps[last] > labelSlackUs) continue
          if (starts) {
            starts[k] = s
            targets![k] = m.y[last]
            endTs![k] = m.timestamps[last]
            syms![k] = m.symbolIndex[last]
          }
          k++
        }
        runStart = i
      }
      if (pass === 0) count = k
      else out[name] = new SequenceWindows(m.X, F, lookback, starts!, targets!, endTs!, syms!)
    }
  }
  return out
}
