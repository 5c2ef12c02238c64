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
import { ValidationError } from '../errors.js'
import { formatUs } from '../table/time.js'
import type { DataStorage } from '../types.js'
import { MatrixOptionsSchema, parseOptions, type TargetSpec } from './options.js'
import { checkColumns, inspectDataset, SEGMENTS, type SegmentName } from './prepare.js'
import { mulberry32, shuffleInPlace } from './random.js'
import { Scaler } from './scaler.js'
import { splitTimeBounds } from './split.js'
import { SegmentReader, type StreamFill } from './stream-segment.js'

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

/** A segment's time bounds, epoch µs inclusive (null when empty). */
export interface StreamSegment {
  start: number | null
  end: number | null
  /** Scan from here: `start`, moved past the embargo. */
  scanStart: number | null
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
      for (let k = 0; k < count; k++) {
        // Shuffled: draw a random pooled row and move the last one into its place. In order: FIFO.
        const j = shuffle ? Math.floor(rand() * size) : k
        X.set(poolX.subarray(j * F, j * F + F), k * F)
        y[k] = poolY[j]
        timestamps[k] = poolTs[j]
        symbolIndex[k] = poolSym[j]
        if (shuffle) {
          size--
          poolX.copyWithin(j * F, size * F, size * F + F)
          poolY[j] = poolY[size]
          poolTs[j] = poolTs[size]
          poolSym[j] = poolSym[size]
        }
      }
      if (!shuffle) {
        poolX.copyWithin(0, count * F, size * F)
        poolY.copyWithin(0, count, size)
        poolTs.copyWithin(0, count, size)
        poolSym.copyWithin(0, count, size)
        size -= count
      }
      return { X, y, timestamps, symbolIndex, rows: count }
    }
    for (const si of order) {
      for await (const chunk of this.reader(segment).rows(this.symbols[si])) {
        for (let r = 0; r < chunk.rows; r++) {
          if (size === cap) yield take(batchSize)
          poolX.set(chunk.X.subarray(r * F, r * F + F), size * F)
          poolY[size] = chunk.y[r]
          poolTs[size] = chunk.ts[r]
          poolSym[size] = si
          size++
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
  const inspected = await inspectDataset(storage, dataset, o.symbols, true)
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
  const given = o.normalize && o.scaler ? (o.scaler instanceof Scaler ? o.scaler : Scaler.fromJSON(o.scaler)) : null
  if (given && (given.features !== o.features.length || given.featureNames.some((n, j) => n !== o.features[j]))) {
    throw new ValidationError([
      { field: 'scaler', message: `fitted on [${given.featureNames.join(', ')}], the features are [${o.features.join(', ')}]` },
    ])
  }
  const symbols = inspected.symbols as string[]

  // Pass 1: sorted distinct timestamps of the selected rows.
  const distinct = new DistinctTimes()
  // One scan per symbol: a lake loads the manifests of the partitions a scan covers up front.
  for (const symbol of symbols) {
    const scan = storage.scan(dataset, { symbols: [symbol], start: o.start, end: o.end, columns: [], batchSize: o.scanBatchSize })
    for await (const t of scan) distinct.add((t.columns.timestamp as { values: Float64Array }).values)
  }
  const times = distinct.sorted()
  if (times.length === 0) {
    throw new ValidationError([{ field: 'symbols', message: `no rows for ${symbols.join(', ')} in the requested range` }])
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

/** Sorted distinct values of many batches, deduplicated as it goes so memory follows the distinct count. */
class DistinctTimes {
  private buf = new Float64Array(1 << 16)
  private n = 0
  private uniq = 0

  add(values: Float64Array): void {
    if (this.n + values.length > this.buf.length) {
      this.compact()
      if (this.n + values.length > this.buf.length) {
        const next = new Float64Array(Math.max(this.buf.length * 2, this.n + values.length))
        next.set(this.buf.subarray(0, this.n))
        this.buf = next
      }
    }
    this.buf.set(values, this.n)
    this.n += values.length
    if (this.n > 4 * Math.max(this.uniq, 1 << 16)) this.compact()
  }

  private compact(): void {
    const v = this.buf.subarray(0, this.n).sort()
    let u = 0
    for (let i = 0; i < v.length; i++) if (v[i] === v[i] && (u === 0 || v[i] !== v[u - 1])) v[u++] = v[i]
    this.n = u
    this.uniq = u
  }

  sorted(): Float64Array {
    this.compact()
    return this.buf.slice(0, this.n)
  }
}
