/**
 * The parts of a built training set (`Derived`): each segment's `.npy` bodies (rows of the
 * matrix, or windows) streamed in bounded chunks, a segment as a Parquet-ready table, NaN counts
 * per feature, the bytes all parts would take (and the 413 past `maxBytes`), and the `segments`
 * of a description: links or the bodies inline as base64.
 */

import { InlineTooLargeError, TrainingLimitError } from '../core/errors.js'
import type { Table } from '../core/types.js'
import { encodeParquet, type ParquetCodecs } from '../parquet/index.js'
import type { Derived, TrainingLimits, TrainingSetRequest } from './export.js'
import type { FeatureMatrix } from './matrix.js'
import { type NpyDtype, type NpyTypedArray, nanCellsPerColumn, npyByteLength, npyStream } from './npy.js'
import { SEGMENTS, type SegmentName } from './prepare.js'
import type { SequenceWindows } from './windows.js'

/** A windowed `X.npy` is streamed in chunks of at most this many windows, and about this many bytes. */
const WINDOWS_PER_CHUNK = 4096
const CHUNK_BYTES = 8 * 1024 * 1024

/** Base64 (standard alphabet, padded) of `bytes`, in chunks (no call-stack limit on large bodies). */
export function toBase64(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}

// ---- parts -------------------------------------------------------------------------------

export const NPY_PARTS = ['X', 'y', 'timestamps', 'symbols'] as const
export type NpyPart = (typeof NPY_PARTS)[number]
export const PARTS = ['X.npy', 'y.npy', 'timestamps.npy', 'symbols.npy', 'data.parquet'] as const

export interface NpyBody {
  dtype: NpyDtype
  shape: number[]
  chunks: () => Iterable<NpyTypedArray>
}

/** Row-major rows of `X` as views of at most ~CHUNK_BYTES. */
export function* rowSlices(X: FeatureMatrix['X'], features: number): Generator<NpyTypedArray> {
  const step = Math.max(1, Math.floor(CHUNK_BYTES / (features * X.BYTES_PER_ELEMENT))) * features
  for (let at = 0; at < X.length; at += step) yield X.subarray(at, at + step)
}

/** `[k, lookback, features]` blocks of windows, each copied into a fresh buffer (npyStream keeps views). */
export function* windowChunks(w: SequenceWindows): Generator<NpyTypedArray> {
  const size = w.lookback * w.features
  const per = Math.max(1, Math.min(WINDOWS_PER_CHUNK, Math.floor(CHUNK_BYTES / (size * w.source.BYTES_PER_ELEMENT))))
  const Arr = w.source.constructor as new (n: number) => FeatureMatrix['X']
  for (let from = 0; from < w.count; from += per) {
    const k = Math.min(per, w.count - from)
    const indices = new Uint32Array(k)
    for (let i = 0; i < k; i++) indices[i] = from + i
    const out = new Arr(k * size)
    w.copyTo(out, indices)
    yield out
  }
}

/** Epoch µs as `<i8`, in fresh chunks. */
export function* int64Chunks(us: Float64Array): Generator<NpyTypedArray> {
  const step = CHUNK_BYTES / 8
  for (let at = 0; at < us.length; at += step) {
    const part = us.subarray(at, at + step)
    const out = new BigInt64Array(part.length)
    for (let i = 0; i < part.length; i++) out[i] = BigInt(part[i])
    yield out
  }
}

/**
 * NaN cells per feature in a segment's rows of X (or, with no segment, in all rows): a feature
 * with nulls and no `fill` is NaN there. Windows repeat rows: these count the rows, once.
 */
export function nanCells(m: FeatureMatrix, segment?: SegmentName): Record<string, number> {
  const F = m.shape[1]
  const X = segment ? m.segments[segment].X : m.X
  const counts = nanCellsPerColumn(X, F)
  return Object.fromEntries(m.featureNames.map((name, j) => [name, counts[j]]))
}

/** One `.npy` part of a segment: rows of the matrix, or windows when the request has them. */
export function npyBody(d: Derived, segment: SegmentName, part: NpyPart): NpyBody {
  const m = d.matrix
  const seg = m.segments[segment]
  const w = d.windows?.[segment]
  const float: NpyDtype = m.X instanceof Float64Array ? '<f8' : '<f4'
  const n = w ? w.count : seg.rows
  const rows = { from: seg.offset, to: seg.offset + seg.rows }
  switch (part) {
    case 'X':
      return w
        ? { dtype: float, shape: w.shape, chunks: () => windowChunks(w) }
        : { dtype: float, shape: [seg.rows, m.shape[1]], chunks: () => rowSlices(seg.X, m.shape[1]) }
    case 'y':
      return { dtype: float, shape: [n], chunks: () => [w ? w.targets : seg.y] }
    case 'timestamps':
      return {
        dtype: '<i8',
        shape: [n],
        chunks: () => int64Chunks(w ? w.endTimestamps : m.timestamps.subarray(rows.from, rows.to)),
      }
    case 'symbols':
      return { dtype: '<u4', shape: [n], chunks: () => [w ? w.symbolIndex : m.symbolIndex.subarray(rows.from, rows.to)] }
  }
}

/**
 * A segment as a table: `symbol`, `timestamp`, one float64 column per feature (normalized) and
 * the target (renamed `target_<name>` if a feature has its name). Needs a float64 matrix.
 */
export function segmentTable(m: FeatureMatrix, segment: SegmentName): { table: Table; columns: string[] } {
  const { offset, rows } = m.segments[segment]
  const F = m.shape[1]
  const X = m.X as Float64Array
  const taken = new Set(['symbol', 'timestamp', ...m.featureNames])
  let target = m.targetName
  while (taken.has(target)) target = `target_${target}`
  const table: Table = {
    length: rows,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      ...m.featureNames.map((name) => ({ name, type: 'float64' as const })),
      { name: target, type: 'float64' },
    ],
    columns: {
      symbol: { type: 'string', values: Array.from(m.symbolIndex.subarray(offset, offset + rows), (i) => m.symbols[i]) },
      timestamp: { type: 'timestamp', values: m.timestamps.subarray(offset, offset + rows) },
      [target]: { type: 'float64', values: m.y.subarray(offset, offset + rows) as Float64Array },
    },
  }
  m.featureNames.forEach((name, j) => {
    const col = new Float64Array(rows)
    for (let k = 0, at = offset * F + j; k < rows; k++, at += F) col[k] = X[at]
    table.columns[name] = { type: 'float64', values: col }
  })
  return { table, columns: table.schema.map((c) => c.name) }
}

export type Ref = { href: string } | { base64: string }

/**
 * `segments` of the description: links, or the bodies inline (their decoded bytes capped at
 * `maxInline`; inline Parquet pages compressed by `codecs`, default `jsCodecs()`).
 */
export async function describeSegments(
  d: Derived,
  req: TrainingSetRequest,
  link: (segment: SegmentName, part: (typeof PARTS)[number]) => string,
  maxInline: number,
  codecs?: ParquetCodecs,
): Promise<Record<SegmentName, unknown>> {
  const out = {} as Record<SegmentName, unknown>
  if (req.format === 'parquet') {
    let total = 0
    for (const s of SEGMENTS) {
      const { table, columns } = segmentTable(d.matrix, s)
      let data: Ref = { href: link(s, 'data.parquet') }
      if (req.inline) {
        const bytes = encodeParquet(table, { codecs })
        total += bytes.length
        if (total > maxInline) throw new InlineTooLargeError(total, maxInline, s !== 'test')
        data = { base64: toBase64(bytes) }
      }
      out[s] = { rows: d.matrix.segments[s].rows, columns, nanCells: nanCells(d.matrix, s), data }
    }
    return out
  }
  const bodies = SEGMENTS.map((s) => Object.fromEntries(NPY_PARTS.map((p) => [p, npyBody(d, s, p)])) as Record<NpyPart, NpyBody>)
  if (req.inline) {
    const total = bodies.reduce((n, b) => n + NPY_PARTS.reduce((k, p) => k + npyByteLength(b[p].dtype, b[p].shape), 0), 0)
    if (total > maxInline) throw new InlineTooLargeError(total, maxInline, false)
  }
  for (const [i, s] of SEGMENTS.entries()) {
    const b = bodies[i]
    const ref = async (p: NpyPart): Promise<Ref> => {
      if (!req.inline) return { href: link(s, `${p}.npy`) }
      const bytes = new Uint8Array(await new Response(npyStream(b[p].dtype, b[p].shape, b[p].chunks())).arrayBuffer())
      return { base64: toBase64(bytes) }
    }
    out[s] = {
      rows: d.matrix.segments[s].rows,
      shape: { X: b.X.shape, y: b.y.shape },
      dtype: b.X.dtype,
      nanCells: nanCells(d.matrix, s),
      X: await ref('X'),
      y: await ref('y'),
      timestamps: await ref('timestamps'),
      symbols: await ref('symbols'),
    }
  }
  return out
}

// ---- size --------------------------------------------------------------------------------

/** The bytes of every part of every segment (npy: exact sizes; parquet: its float64 columns). */
export function advertisedBytes(d: Derived, format: 'npy' | 'parquet'): number {
  let total = 0
  for (const s of SEGMENTS) {
    if (format === 'parquet') total += d.matrix.segments[s].rows * (d.matrix.shape[1] + 3) * 8
    else
      for (const p of NPY_PARTS) {
        const b = npyBody(d, s, p)
        total += npyByteLength(b.dtype, b.shape)
      }
  }
  return total
}

/** 413 when the parts of `d` would pass `limits.maxBytes`, naming what to lower. */
export function checkBytes(
  d: Derived,
  req: TrainingSetRequest,
  format: 'npy' | 'parquet',
  limits: TrainingLimits,
  prefix: string,
): void {
  const bytes = advertisedBytes(d, format)
  if (bytes <= limits.maxBytes) return
  const field = req.windows ? `${prefix}windows.lookback` : `${prefix}symbols`
  throw new TrainingLimitError(
    413,
    field,
    `the training set would be ${bytes} bytes, above the limit of ${limits.maxBytes} (TRAINING_MAX_BYTES): ` +
      `lower ${req.windows ? 'windows.lookback or raise windows.stride' : 'the symbols'} or narrow start/end`,
    { limitBytes: limits.maxBytes, bytes },
  )
}
