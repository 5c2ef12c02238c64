/**
 * Mini-batches over data already in memory: the rows of one matrix segment, or sequence windows.
 * A shuffle permutes only the items of the source it is given (pass the training segment), with a
 * seeded generator so an epoch's order can be replayed. Each batch is a fresh buffer unless
 * `reuse` asks for one buffer overwritten batch after batch.
 */

import { ValidationError } from '../core/errors.js'
import type { MatrixArray, MatrixSegment } from './matrix.js'
import { mulberry32, shuffleInPlace } from './random.js'
import type { SequenceWindows } from './windows.js'

export interface BatchOptions {
  batchSize: number
  shuffle?: boolean
  seed?: number
  dropLast?: boolean
  /** Overwrite one preallocated buffer per batch (faster; copy what you keep). */
  reuse?: boolean
}

export interface Batch {
  /** Row batches `[rows, features]`; window batches `[rows, lookback, features]`, row-major. */
  X: MatrixArray
  y: MatrixArray
  shape: number[]
  /** Item indices (rows of the segment, or windows) in this batch. */
  indices: Uint32Array
}

/** Batches of a matrix segment's rows (`features` = the matrix's `shape[1]`). */
export function* rowBatches(segment: MatrixSegment, features: number, options: BatchOptions): Generator<Batch> {
  const F = features
  for (const idx of batchIndices(segment.rows, options)) {
    const k = idx.length
    const X = buffer(segment.X, k * F, options.reuse, 0)
    const y = buffer(segment.y, k, options.reuse, 1)
    for (let i = 0; i < k; i++) {
      const r = idx[i]
      X.set(segment.X.subarray(r * F, r * F + F), i * F)
      y[i] = segment.y[r]
    }
    yield { X: X.subarray(0, k * F), y: y.subarray(0, k), shape: [k, F], indices: idx }
  }
}

/** Batches of windows as `[batch, lookback, features]` inputs and their targets. */
export function* windowBatches(windows: SequenceWindows, options: BatchOptions): Generator<Batch> {
  const size = windows.lookback * windows.features
  for (const idx of batchIndices(windows.count, options)) {
    const k = idx.length
    const X = buffer(windows.source, k * size, options.reuse, 0)
    const y = buffer(windows.targets, k, options.reuse, 1)
    windows.copyTo(X, idx, y)
    yield { X: X.subarray(0, k * size), y: y.subarray(0, k), shape: [k, windows.lookback, windows.features], indices: idx }
  }
}

/** The item order of one epoch, cut into batches. */
export function* batchIndices(n: number, options: BatchOptions): Generator<Uint32Array> {
  const { batchSize } = options
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ValidationError([{ field: 'batchSize', message: `expected an integer ≥ 1, got ${batchSize}` }])
  }
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  if (options.shuffle) shuffleInPlace(order, mulberry32(options.seed ?? 0))
  for (let at = 0; at < n; at += batchSize) {
    const end = Math.min(n, at + batchSize)
    if (end - at < batchSize && options.dropLast) return
    yield order.slice(at, end)
  }
}

const reused = new WeakMap<MatrixArray, MatrixArray[]>()

/** A buffer of at least `n` values of `like`'s type: new, or (with `reuse`) one kept per source and slot. */
function buffer(like: MatrixArray, n: number, reuse: boolean | undefined, slot: number): MatrixArray {
  const Ctor = like.constructor as new (n: number) => MatrixArray
  if (!reuse) return new Ctor(n)
  const slots = reused.get(like) ?? []
  reused.set(like, slots)
  if (!slots[slot] || slots[slot].length < n) slots[slot] = new Ctor(n)
  return slots[slot]
}
