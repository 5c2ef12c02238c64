/**
 * Training batches streamed from storage with bounded memory. `openTrainingStream` makes one
 * pass over the timestamps to place the split (the same distinct-timestamp split as
 * `getFeatureMatrix`), fits the scaler on the training rows in another, then `batches(segment)`
 * scans one symbol at a time (`DataStorage.scan`: one partition plus one batch in memory) and
 * yields `{ X, y }` batches. Shuffling happens only inside the training segment: symbols in a
 * seeded order and rows through a seeded shuffle buffer, reproducible for a given seed.
 *
 * Memory: the sorted distinct timestamps (8 bytes each), one scan batch, the shuffle buffer.
 * Fills that need the future or the whole segment (`bfill`, `median`) and the `robust` scaler
 * (a median) need the segment in memory: use `getFeatureMatrix`, or pass a fitted `scaler`.
 */

import * as v from 'valibot'
import { ValidationError } from '../core/errors.js'
import { formatUs } from '../core/time.js'
import type { DataStorage } from '../core/types.js'
import { givenScaler, MatrixOptionsSchema, parseOptions, type TargetSpec } from './options.js'
import { checkColumns, inspectDataset, SEGMENTS, type SegmentName } from './prepare.js'
import { mulberry32, shuffleInPlace } from './random.js'
import type { Scaler } from './scaler.js'
import { mergeDistinct, splitTimeBounds } from './split.js'
import { SegmentReader, type StreamFill, type StreamSegment } from './stream-segment.js'

export const StreamOptionsSchema = v.strictObject({
  ...MatrixOptionsSchema.entries,
  /**
   * Rows per storage scan batch (default 16,384: each batch becomes garbage once processed, and
   * smaller ones keep peak RSS lower at the same speed; measured on 10M rows, see `npm run bench`).
   */
  scanBatchSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 16_384),
})
export type StreamOptionsInput = v.InferInput<typeof StreamOptionsSchema>

export interface StreamBatchOptions {
  batchSize: number
  /** Only for `train`: shuffle symbols and rows (through a buffer of `shuffleBuffer` rows). */
  shuffle?: boolean
  seed?: number
  /** Drop a last batch smaller than `batchSize`. */
  dropLast?: boolean
  /** Rows held for shuffling (default max(16 × batchSize, 65,536)). */
  shuffleBuffer?: number
}

export interface StreamBatch {
  /** `rows × features`, row-major, normalized. */
  X: Float32Array | Float64Array
  y: Float32Array | Float64Array
  /** Epoch µs per row. */
  timestamps: Float64Array
  /** Per row, an index into `TrainingStream.symbols`. */
  symbolIndex: Uint32Array
  rows: number
}

export class TrainingStream {
  constructor(
    readonly storage: DataStorage,
    readonly dataset: string,
    readonly symbols: string[],
    readonly features: string[],
    readonly target: TargetSpec,
    readonly segments: Record<SegmentName, StreamSegment>,
    readonly distinctTimestamps: number,
    readonly fill: StreamFill,
    readonly scaler: Scaler | null,
    readonly dtype: 'float32' | 'float64',
    readonly scanBatchSize: number,
  ) {}

  /** Split metadata as ISO times. */
  describe(): Record<SegmentName, { start: string | null; end: string | null }> {
    const iso = (us: number | null) => (us === null ? null : formatUs(us))
    return Object.fromEntries(
      SEGMENTS.map((s) => [s, { start: iso(this.segments[s].scanStart), end: iso(this.segments[s].end) }]),
    ) as Record<SegmentName, { start: string | null; end: string | null }>
  }

  /** Batches of one segment; see the module comment. */
  async *batches(segment: SegmentName, options: StreamBatchOptions): AsyncIterable<StreamBatch> {
    const { batchSize } = options
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ValidationError([{ field: 'batchSize', message: `expected an integer ≥ 1, got ${batchSize}` }])
    }
    if (!SEGMENTS.includes(segment)) {
      throw new ValidationError([{ field: 'segment', message: `expected train, validation or test, got '${segment}'` }])
    }
    const shuffle = options.shuffle ?? false
    if (shuffle && segment !== 'train') {
      throw new ValidationError([
        { field: 'shuffle', message: `only the training segment is shuffled; ${segment} batches come in time order` },
      ])
    }
    const F = this.features.length
    const rand = mulberry32(options.seed ?? 0)
    const order = Uint32Array.from(this.symbols, (_, i) => i)
    if (shuffle) shuffleInPlace(order, rand)
    const cap = shuffle ? Math.max(options.shuffleBuffer ?? Math.max(16 * batchSize, 65_536), batchSize) : batchSize
    const Arr = this.dtype === 'float64' ? Float64Array : Float32Array
    // The pool: rows waiting to be batched (in order, or to be drawn at random).
    const poolX = new Float64Array(cap * F)
    const poolY = new Float64Array(cap)
    const poolTs = new Float64Array(cap)
    const poolSym = new Uint32Array(cap)
    let size = 0
    const take = (count: number): StreamBatch => {
      const X = new Arr(count * F)
      const y = new Arr(count)
      const timestamps = new Float64Array(count)
      const symbolIndex = new Uint32Array(count)
      if (!shuffle) {
        // In order: FIFO.
        X.set(poolX.subarray(0, count * F))
        y.set(poolY.subarray(0, count))
        timestamps.set(poolTs.subarray(0, count))
        symbolIndex.set(poolSym.subarray(0, count))
        poolX.copyWithin(0, count * F, size * F)
        poolY.copyWithin(0, count, size)
        poolTs.copyWithin(0, count, size)
        poolSym.copyWithin(0, count, size)
        size -= count
        return { X, y, timestamps, symbolIndex, rows: count }
      }
      for (let k = 0; k < count; k++) {
        // Shuffled: draw a random pooled row and move the last one into its place.
        const j = Math.floor(rand() * size)
        for (let f = 0; f < F; f++) X[k * F + f] = poolX[j * F + f]
        y[k] = poolY[j]
        timestamps[k] = poolTs[j]
        symbolIndex[k] = poolSym[j]
        size--
        poolX.copyWithin(j * F, size * F, size * F + F)
        poolY[j] = poolY[size]
        poolTs[j] = poolTs[size]
        poolSym[j] = poolSym[size]
      }
      return { X, y, timestamps, symbolIndex, rows: count }
    }
    for (const si of order) {
      for await (const chunk of this.reader(segment).rows(this.symbols[si])) {
        // Rows go into the pool in blocks; a full pool gives out a batch first.
        for (let r = 0; r < chunk.rows; ) {
          if (size === cap) yield take(batchSize)
          const n = Math.min(cap - size, chunk.rows - r)
          poolX.set(chunk.X.subarray(r * F, (r + n) * F), size * F)
          poolY.set(chunk.y.subarray(r, r + n), size)
          poolTs.set(chunk.ts.subarray(r, r + n), size)
          poolSym.fill(si, size, size + n)
          size += n
          r += n
        }
      }
    }
    while (size >= batchSize) yield take(batchSize)
    if (size > 0 && !options.dropLast) yield take(size)
  }

  /** Reads one segment of one symbol as normalized rows. */
  reader(segment: SegmentName): SegmentReader {
    return new SegmentReader(this, segment)
  }
}

/** Plans the split and fits the scaler; see the module comment. */
export async function openTrainingStream(
  storage: DataStorage,
  options: StreamOptionsInput & { dataset: string },
): Promise<TrainingStream> {
  const { dataset, ...rest } = options
  const o = parseOptions(StreamOptionsSchema, rest)
  const inspected = await inspectDataset(storage, dataset, o.symbols)
  const { target } = checkColumns(dataset, inspected.schema, o)
  const fill = SegmentReader.checkFill(o.fill ?? {}, o.features, target)
  if (o.normalize && !o.scaler && o.scalerType === 'robust') {
    throw new ValidationError([
      {
        field: 'scalerType',
        message: 'a robust scaler needs the training medians: fit it with getFeatureMatrix and pass `scaler`',
      },
    ])
  }
  const given = givenScaler(o)
  given?.checkFeatures(o.features)

  // Pass 1: one scan of the keys (rows come by symbol, then time) gives the sorted distinct
  // timestamps and the symbols that have rows, without reading any catalog of the dataset.
  const distinct = new DistinctTimes()
  const symbols: string[] = []
  const keys = storage.scan(dataset, {
    symbols: inspected.symbols ?? undefined,
    start: o.start,
    end: o.end,
    columns: [],
    batchSize: o.scanBatchSize,
  })
  for await (const t of keys) {
    const sym = (t.columns.symbol as { values: (string | null)[] }).values
    for (let i = 0; i < sym.length; i++) {
      if (sym[i] !== symbols[symbols.length - 1]) symbols.push(sym[i] as string)
    }
    distinct.add((t.columns.timestamp as { values: Float64Array }).values)
  }
  const times = distinct.sorted()
  if (times.length === 0) {
    const which = inspected.symbols ? inspected.symbols.join(', ') : `dataset '${dataset}'`
    throw new ValidationError([{ field: 'symbols', message: `no rows for ${which} in the requested range` }])
  }
  const b = splitTimeBounds(times, { testSize: o.testSize, validationSize: o.validationSize, gap: o.gap })
  const none = { start: null, end: null }
  const raw = { train: b.train ?? none, validation: b.validation ?? none, test: b.test ?? none }
  const embargoUs = o.embargo * 1000
  const prevEnd = { train: null, validation: raw.train.end, test: raw.validation.end ?? raw.train.end }
  const segments = {} as Record<SegmentName, StreamSegment>
  for (const s of SEGMENTS) {
    const { start, end } = raw[s]
    const p = prevEnd[s]
    // Embargo drops rows with ts <= previous end + embargo: scan from the next microsecond.
    const scanStart = start === null ? null : p !== null && embargoUs > 0 ? Math.max(start, p + embargoUs + 1) : start
    segments[s] = { start, end, scanStart }
  }

  const stream = new TrainingStream(
    storage,
    dataset,
    symbols,
    [...o.features],
    target,
    segments,
    times.length,
    fill,
    null,
    o.dtype,
    o.scanBatchSize,
  )
  // Pass 2 (only for mean fills): training means of the raw columns. Pass 3: the scaler.
  await SegmentReader.fitFillMeans(stream)
  let scaler: Scaler | null = null
  if (o.normalize) scaler = given ?? (await SegmentReader.fitScaler(stream, o.scalerType))
  return Object.assign(stream, { scaler }) as TrainingStream
}

/**
 * Sorted distinct values of many batches. Values arrive as ascending runs (one symbol's rows are
 * in time order); each run is gathered, then merged into the sorted distinct result in linear
 * time, so memory follows the distinct count plus one run.
 */
class DistinctTimes {
  private all: Float64Array = new Float64Array(0)
  private run = new Float64Array(1 << 16)
  private n = 0

  add(values: Float64Array): void {
    let run = this.run
    let n = this.n
    for (let i = 0; i < values.length; i++) {
      const t = values[i]
      if (t !== t) continue
      if (n > 0 && t <= run[n - 1]) {
        if (t === run[n - 1]) continue
        this.n = n
        this.flush()
        n = 0
      }
      if (n === run.length) {
        const next = new Float64Array(run.length * 2)
        next.set(run)
        this.run = run = next
      }
      run[n++] = t
    }
    this.n = n
  }

  /** Merges the gathered run into the result. */
  flush(): void {
    if (this.n === 0) return
    this.all = mergeDistinct(this.all, this.run.subarray(0, this.n))
    this.n = 0
  }

  sorted(): Float64Array {
    this.flush()
    return this.all.slice()
  }
}
