/**
 * Sequence windows for LSTM/RNN models over a `FeatureMatrix`: `lookback` consecutive rows of one
 * symbol, inside one segment, with no time step larger than `maxGap`, and the target of the last
 * row. A window is a start row into the matrix, so each input is a zero-copy view
 * (`lookback × features`) of `X`; `copyTo`/`materialize` fill one preallocated
 * `[n, lookback, features]` buffer for a framework tensor.
 */

import { ValidationError } from '../core/errors.js'
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
    const runs = { symbolIndex: m.symbolIndex, timestamps: m.timestamps, labelTs: m.labelTs }
    const shape = { from: offset, to: offset + rows, lookback, stride, maxGapUs, labelSlackUs }
    // Two passes over the runs (same symbol, steps ≤ maxGap): count, then fill preallocated arrays.
    const count = eachWindow(runs, shape, null)
    const w = {
      starts: new Uint32Array(count),
      targets: new (m.y.constructor as new (n: number) => MatrixArray)(count),
      endTimestamps: new Float64Array(count),
      symbolIndex: new Uint32Array(count),
    }
    eachWindow(runs, shape, w, m.y)
    out[name] = new SequenceWindows(m.X, F, lookback, w.starts, w.targets, w.endTimestamps, w.symbolIndex)
  }
  return out
}

interface WindowShape {
  from: number
  to: number
  lookback: number
  stride: number
  maxGapUs: number
  labelSlackUs: number
}

/**
 * Walks the windows of matrix rows [from, to): inside runs of one symbol with no step larger
 * than `maxGapUs`, starting at each run's first row and every `stride` after, skipping a window
 * whose target lies more than `labelSlackUs` after its last row. Fills `out` when given; returns
 * the count.
 */
function eachWindow(
  m: { symbolIndex: Uint32Array; timestamps: Float64Array; labelTs: Float64Array },
  w: WindowShape,
  out: { starts: Uint32Array; targets: MatrixArray; endTimestamps: Float64Array; symbolIndex: Uint32Array } | null,
  y?: MatrixArray,
): number {
  const { symbolIndex, timestamps, labelTs } = m
  const { from, to, lookback, stride, maxGapUs, labelSlackUs } = w
  let k = 0
  let runStart = from
  for (let i = from + 1; i <= to; i++) {
    if (i < to && symbolIndex[i] === symbolIndex[i - 1] && timestamps[i] - timestamps[i - 1] <= maxGapUs) continue
    // Run [runStart, i): windows start at runStart, runStart + stride, ...
    for (let s = runStart; s + lookback <= i; s += stride) {
      const last = s + lookback - 1
      if (labelTs[last] - timestamps[last] > labelSlackUs) continue
      if (out) {
        out.starts[k] = s
        out.targets[k] = (y as MatrixArray)[last]
        out.endTimestamps[k] = timestamps[last]
        out.symbolIndex[k] = symbolIndex[last]
      }
      k++
    }
    runStart = i
  }
  return k
}
