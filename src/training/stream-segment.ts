/**
 * One segment of one symbol, streamed: scan batches → fills (forward fill carried across batches,
 * constant, training mean, drop) → target `horizon` rows ahead (the last `horizon` rows wait for
 * the next batch; those left at the segment's end are purged) → normalized feature rows. The
 * same row-by-row rules as `prepareTrainingData`, so streamed rows equal the matrix's rows.
 */

import { ValidationError } from '../core/errors.js'
import { formatUs } from '../core/time.js'
import type { DataStorage } from '../core/types.js'
import type { TargetSpec } from './options.js'
import type { SegmentName } from './prepare.js'
import { Scaler, type ScalerType } from './scaler.js'
import { numericValues, targetValue } from './target.js'

type StreamFillMethod = 'ffill' | 'drop' | 'constant' | 'mean'

export interface StreamFill {
  /** Per read column (features, then the target column): its fill, if any. */
  methods: Map<string, { method: StreamFillMethod; value: number }>
}

/** Rows of one scan batch after processing: `X` is `rows × features`. */
export interface StreamRows {
  X: Float64Array
  y: Float64Array
  ts: Float64Array
  rows: number
}

/** A segment's time bounds, epoch µs inclusive (null when empty). */
export interface StreamSegment {
  start: number | null
  end: number | null
  /** Scan from here: `start`, moved past the embargo. */
  scanStart: number | null
}

/** What a segment reader reads from its `TrainingStream` (declared here so this module does not import `stream.ts`). */
export interface SegmentSource {
  readonly storage: DataStorage
  readonly dataset: string
  readonly symbols: string[]
  readonly features: string[]
  readonly target: TargetSpec
  readonly segments: Record<SegmentName, StreamSegment>
  readonly fill: StreamFill
  readonly scaler: Scaler | null
  readonly scanBatchSize: number
}

export class SegmentReader {
  private readonly columns: string[]

  constructor(
    private readonly s: SegmentSource,
    private readonly segment: SegmentName,
  ) {
    this.columns = [...new Set([...s.features, s.target.column])]
  }

  /** Checks that each fill can be streamed and names the ones that cannot. */
  static checkFill(fill: Record<string, unknown>, features: string[], target: TargetSpec): StreamFill {
    const methods = new Map<string, { method: StreamFillMethod; value: number }>()
    const read = new Set([...features, target.column])
    for (const [name, raw] of Object.entries(fill)) {
      const spec = (typeof raw === 'string' ? { method: raw } : raw) as { method: string; value?: unknown }
      if (!read.has(name)) throw new ValidationError([{ field: `fill.${name}`, message: 'not a feature or the target column' }])
      if (spec.method === 'bfill' || spec.method === 'median') {
        throw new ValidationError([
          {
            field: `fill.${name}`,
            message: `${spec.method} needs the whole segment in memory: use getFeatureMatrix, or ffill/drop/constant/mean`,
          },
        ])
      }
      let value = Number.NaN
      if (spec.method === 'constant') {
        value = typeof spec.value === 'boolean' ? Number(spec.value) : (spec.value as number)
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          throw new ValidationError([{ field: `fill.${name}.value`, message: 'expected a finite number' }])
        }
      }
      methods.set(name, { method: spec.method as StreamFillMethod, value })
    }
    return { methods }
  }

  /** Training means of the raw values of `mean`-filled columns (int64 columns round, as `fillMissing` does). */
  static async fitFillMeans(s: SegmentSource): Promise<void> {
    const means = [...s.fill.methods].filter(([, f]) => f.method === 'mean').map(([name]) => name)
    if (means.length === 0) return
    const seg = s.segments.train
    const sum = new Float64Array(means.length)
    const count = new Float64Array(means.length)
    let int64: Set<string> | null = null
    for (const symbol of s.symbols) {
      const scan = s.storage.scan(s.dataset, {
        symbols: [symbol],
        start: formatUs(seg.start as number),
        end: formatUs((seg.end as number) + 1),
        columns: means,
        batchSize: s.scanBatchSize,
      })
      for await (const t of scan) {
        int64 ??= new Set(t.schema.filter((c) => c.type === 'int64').map((c) => c.name))
        means.forEach((name, j) => {
          const v = numericValues(t.columns[name], name)
          for (let i = 0; i < v.length; i++) {
            if (v[i] === v[i]) {
              sum[j] += v[i]
              count[j]++
            }
          }
        })
      }
    }
    means.forEach((name, j) => {
      const f = s.fill.methods.get(name)!
      const mean = count[j] > 0 ? sum[j] / count[j] : Number.NaN
      f.value = int64?.has(name) ? Math.round(mean) : mean
    })
  }

  /** Streams the training rows once and fits a standard or minmax scaler on them. */
  static async fitScaler(s: SegmentSource, type: ScalerType): Promise<Scaler> {
    const F = s.features.length
    const n = new Float64Array(F)
    const shift = new Float64Array(F).fill(Number.NaN)
    const s1 = new Float64Array(F)
    const s2 = new Float64Array(F)
    const sum = new Float64Array(F)
    const lo = new Float64Array(F).fill(Number.POSITIVE_INFINITY)
    const hi = new Float64Array(F).fill(Number.NEGATIVE_INFINITY)
    const reader = new SegmentReader(s, 'train')
    for (const symbol of s.symbols) {
      for await (const chunk of reader.rows(symbol)) {
        const X = chunk.X
        for (let r = 0; r < chunk.rows; r++) {
          for (let j = 0; j < F; j++) {
            const v = X[r * F + j]
            if (v !== v) continue
            if (shift[j] !== shift[j]) shift[j] = v
            const d = v - shift[j]
            n[j]++
            sum[j] += v
            s1[j] += d
            s2[j] += d * d
            if (v < lo[j]) lo[j] = v
            if (v > hi[j]) hi[j] = v
          }
        }
      }
    }
    const center: (number | null)[] = []
    const scale: (number | null)[] = []
    for (let j = 0; j < F; j++) {
      if (n[j] === 0) {
        center.push(null)
        scale.push(null)
        continue
      }
      const c = type === 'standard' ? sum[j] / n[j] : lo[j]
      const sc = type === 'standard' ? Math.sqrt(Math.max(0, (s2[j] - (s1[j] * s1[j]) / n[j]) / n[j])) : hi[j] - lo[j]
      center.push(c)
      scale.push(sc === 0 ? 1 : sc)
    }
    return Scaler.fromJSON({
      format: 'friday.scaler',
      formatVersion: 1,
      type,
      featureNames: s.features,
      center,
      scale,
      counts: Array.from(n),
    })
  }

  /**
   * The segment's rows of `symbol`, a scan batch at a time. The yielded arrays are views of
   * buffers reused for the next batch: valid until the iteration goes on (copy what you keep).
   */
  async *rows(symbol: string): AsyncIterable<StreamRows> {
    const s = this.s
    const seg = s.segments[this.segment]
    if (seg.scanStart === null || seg.end === null || seg.scanStart > seg.end) return
    const F = s.features.length
    const h = s.target.horizon
    const names = this.columns
    const C = names.length
    const featureAt = s.features.map((f) => names.indexOf(f))
    const priceAt = names.indexOf(s.target.column)
    const fills = names.map((name) => s.fill.methods.get(name))
    const carry = new Float64Array(C).fill(Number.NaN) // last non-null value, for ffill
    // Working set, reused: rows [0, P) wait for the row `h` ahead (carried over from the last
    // batch), then the kept rows of this batch. One buffer per column, the timestamps, the output.
    let cap = 0
    let work: Float64Array[] = []
    let ts = new Float64Array(0) as Float64Array
    let X = new Float64Array(0) as Float64Array
    let y = new Float64Array(0) as Float64Array
    let outTs = new Float64Array(0) as Float64Array
    let P = 0
    const center = s.scaler?.center
    const scale = s.scaler?.scale
    const scan = s.storage.scan(s.dataset, {
      symbols: [symbol],
      start: formatUs(seg.scanStart),
      end: formatUs(seg.end + 1),
      columns: names.filter((c) => c !== 'symbol' && c !== 'timestamp'),
      batchSize: s.scanBatchSize,
    })
    for await (const t of scan) {
      const m = t.length
      if (P + m > cap) {
        cap = Math.max(P + m, cap * 2)
        work = work.length ? work.map((w) => grow(w, cap, P)) : names.map(() => new Float64Array(cap))
        ts = grow(ts, cap, P)
        X = new Float64Array(cap * F)
        y = new Float64Array(cap)
        outTs = new Float64Array(cap)
      }
      const ts0 = (t.columns.timestamp as { values: Float64Array }).values
      // Fills (in place in the working set), marking the rows a `drop` fill removes.
      let keep: Uint8Array | null = null
      for (let c = 0; c < C; c++) {
        const w = work[c]
        w.set(numericValues(t.columns[names[c]], names[c]), P)
        const f = fills[c]
        if (!f) continue
        for (let i = P; i < P + m; i++) {
          const v = w[i]
          if (v === v) {
            carry[c] = v
            continue
          }
          if (f.method === 'ffill') {
            if (carry[c] === carry[c]) w[i] = carry[c]
          } else if (f.method === 'drop') {
            keep ??= new Uint8Array(m).fill(1)
            keep[i - P] = 0
          } else if (f.value === f.value) w[i] = f.value
        }
      }
      ts.set(ts0, P)
      let L = P + m
      if (keep) {
        // Compact the kept rows in place.
        let k = P
        for (let i = 0; i < m; i++) {
          if (!keep[i]) continue
          if (k !== P + i) {
            for (let c = 0; c < C; c++) work[c][k] = work[c][P + i]
            ts[k] = ts[P + i]
          }
          k++
        }
        L = k
      }
      // Rows with their label row inside the working set are done.
      const done = Math.max(0, L - h)
      let k = 0
      const price = work[priceAt]
      for (let r = 0; r < done; r++) {
        const label = targetValue(s.target, price[r], price[r + h])
        if (label !== label) continue
        for (let j = 0; j < F; j++) {
          const v = work[featureAt[j]][r]
          X[k * F + j] = center ? (v - center[j]) / (scale as Float64Array)[j] : v
        }
        y[k] = label
        outTs[k] = ts[r]
        k++
      }
      // The last `h` rows wait for the next batch.
      for (let c = 0; c < C; c++) work[c].copyWithin(0, done, L)
      ts.copyWithin(0, done, L)
      P = L - done
      if (k > 0) yield { X: X.subarray(0, k * F), y: y.subarray(0, k), ts: outTs.subarray(0, k), rows: k }
    }
  }
}

/** A buffer of `size` holding the first `keep` values of `a`. */
function grow(a: Float64Array, size: number, keep: number): Float64Array {
  const out = new Float64Array(size)
  out.set(a.subarray(0, keep))
  return out
}
