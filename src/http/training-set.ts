/**
 * The training set behind `POST /v1/datasets/:dataset/training-set`: its request schema, the
 * stateless links (`spec` = base64url of the canonical request, `fp` = a fingerprint of the
 * partition versions read), the derivation of the matrix (or windows) and each part's bytes:
 * `.npy` streams, a Parquet file per segment, inline base64.
 */

import { LRUCache } from 'lru-cache'
import * as v from 'valibot'
import { ConflictError, InlineTooLargeError, TrainingLimitError, ValidationError } from '../core/errors.js'
import type { DataStorage, Table } from '../core/types.js'
import { decodeUtf8 } from '../formats/read-body.js'
import { encodeParquet } from '../parquet/index.js'
import {
  buildMatrix,
  type FeatureMatrix,
  MatrixOptionsSchema,
  type NpyDtype,
  type NpyTypedArray,
  nanCellsPerColumn,
  npyByteLength,
  npyStream,
  parseOptions,
  prepareTrainingData,
  SCALER_TYPES,
  Scaler,
  SEGMENTS,
  type SegmentName,
  type SequenceWindows,
  sequenceWindows,
} from '../training/index.js'
import type { TrainingLimits } from './config.js'

/** Default cap on the decoded bytes of all inline bodies of one response (16 MiB): above it, 413. */
export const DEFAULT_MAX_INLINE_BYTES = 16 * 1024 * 1024
/** The request body holds options, not data: at most 1 MiB (or the app's body limit if lower). */
export const MAX_TRAINING_SET_BODY_BYTES = 1024 * 1024
/** A windowed `X.npy` is streamed in chunks of at most this many windows, and about this many bytes. */
const WINDOWS_PER_CHUNK = 4096
const CHUNK_BYTES = 8 * 1024 * 1024

// ---- the request -------------------------------------------------------------------------

export const Int = (min: number) =>
  v.pipe(v.number(), v.integer('expected an integer'), v.minValue(min, `expected an integer ≥ ${min}`))

/** `Scaler.toJSON()` output, so a client can apply the scaler of an earlier training set. */
export const ScalerJSONSchema = v.strictObject({
  format: v.literal('friday.scaler', "expected 'friday.scaler'"),
  formatVersion: v.literal(1, 'expected 1'),
  type: v.picklist(SCALER_TYPES, `expected one of ${SCALER_TYPES.join(', ')}`),
  featureNames: v.pipe(v.array(v.string()), v.minLength(1, 'expected at least one feature name')),
  center: v.array(v.nullable(v.number())),
  scale: v.array(v.nullable(v.number())),
  counts: v.array(Int(0)),
})

export const WindowsSchema = v.strictObject({
  lookback: Int(1),
  stride: v.optional(Int(1)),
  /** Milliseconds: see `WindowOptions.maxGap`. */
  maxGap: v.optional(
    v.pipe(
      v.number(),
      v.check((n) => n > 0, 'expected milliseconds > 0'),
    ),
  ),
})

const { scaler: _instance, ...matrixEntries } = MatrixOptionsSchema.entries

/** The body of `POST .../training-set`: the matrix options, plus `windows`, `format` and `inline`. */
export const TrainingSetSchema = v.strictObject({
  ...matrixEntries,
  scaler: v.optional(ScalerJSONSchema),
  windows: v.optional(WindowsSchema),
  format: v.optional(v.picklist(['npy', 'parquet'], "expected 'npy' or 'parquet'"), 'npy'),
  inline: v.optional(v.boolean(), false),
})

export type TrainingSetRequest = v.InferOutput<typeof TrainingSetSchema>

export function parseRequest(input: unknown, prefix: string, whole: string): TrainingSetRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError([{ field: whole, message: 'expected a JSON object of training-set options' }])
  }
  return parseOptions(TrainingSetSchema, input, prefix, whole)
}

/** The scaler to apply (null: fit one on the training rows, or no normalization). */
export function scalerOf(req: TrainingSetRequest, prefix: string): Scaler | null {
  if (!req.scaler) return null
  if (!req.normalize)
    throw new ValidationError([{ field: `${prefix}scaler`, message: 'a scaler applies only with normalize: true' }])
  try {
    return Scaler.fromJSON(req.scaler)
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err
    throw new ValidationError(err.issues.map((i) => ({ ...i, field: `${prefix}scaler.${i.field}` })))
  }
}

// ---- links -------------------------------------------------------------------------------

export function toBase64(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}

export function fromBase64Url(text: string): Uint8Array {
  const b = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4))
  return Uint8Array.from(b, (ch) => ch.charCodeAt(0))
}

/** JSON with every object's keys sorted: the same request always gives the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.keys(x)
            .sort()
            .map((k) => [k, x[k]]),
        )
      : x,
  )
}

/** A link's `spec`: the request without `inline` and `format` (the part names its encoding). */
export function specParam(input: Record<string, unknown>): string {
  const { inline: _inline, format: _format, ...rest } = input
  return toBase64(new TextEncoder().encode(canonicalJson(rest)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')
}

export function decodeSpec(spec: string): TrainingSetRequest {
  let input: unknown
  try {
    input = JSON.parse(decodeUtf8(fromBase64Url(spec)))
  } catch {
    throw new ValidationError([
      { field: 'spec', message: 'not base64url of a JSON object: take links from POST .../training-set' },
    ])
  }
  return parseRequest(input, 'spec.', 'spec')
}

/** The first 16 hex digits of SHA-256 over the `path:version` of every partition the request reads. */
export async function fingerprint(storage: DataStorage, dataset: string, req: TrainingSetRequest): Promise<string> {
  return (await readPlan(storage, dataset, req)).fp
}

/** The fingerprint of what `req` reads and how many symbols that is. */
async function readPlan(
  storage: DataStorage,
  dataset: string,
  req: TrainingSetRequest,
): Promise<{ fp: string; symbols: number }> {
  const parts = await storage.listPartitions(dataset, { symbols: req.symbols, start: req.start, end: req.end })
  const text = `${dataset}\n${parts.map((p) => `${p.path}:${p.version}`).join('\n')}`
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  const fp = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('')
  return { fp, symbols: new Set(parts.map((p) => p.values.symbol)).size }
}

// ---- limits ------------------------------------------------------------------------------

/** 422 for a `windows.lookback` or a `symbols` list above the limits (`prefix`: `spec.` for a link). */
export function checkRequestLimits(req: TrainingSetRequest, limits: TrainingLimits, prefix: string): void {
  const lookback = req.windows?.lookback
  if (lookback !== undefined && lookback > limits.maxLookback) {
    throw new TrainingLimitError(
      422,
      `${prefix}windows.lookback`,
      `${lookback} is above the limit of ${limits.maxLookback} (TRAINING_MAX_LOOKBACK)`,
      {
        limit: limits.maxLookback,
        got: lookback,
      },
    )
  }
  if (req.symbols && req.symbols.length > limits.maxSymbols) {
    throw new TrainingLimitError(
      422,
      `${prefix}symbols`,
      `${req.symbols.length} symbols, above the limit of ${limits.maxSymbols} (TRAINING_MAX_SYMBOLS)`,
      {
        limit: limits.maxSymbols,
        got: req.symbols.length,
      },
    )
  }
}

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

/** Memory a built training set holds (its arrays; windows share the matrix's `X`). */
function derivedBytes(d: Derived): number {
  const m = d.matrix
  let n = m.X.byteLength + m.y.byteLength + m.timestamps.byteLength + m.symbolIndex.byteLength + m.labelTs.byteLength
  for (const w of Object.values(d.windows ?? {})) {
    n += w.starts.byteLength + w.targets.byteLength + w.endTimestamps.byteLength + w.symbolIndex.byteLength
  }
  return n + 1024
}

/**
 * Built training sets by id (dataset, spec, fingerprint, dtype), so the links of one description
 * do not each rebuild the matrix: bounded in bytes (`cacheBytes`), each kept `cacheTtlMs`; a build
 * in progress is shared by the requests that need it, and a failed build is not kept.
 */
export class TrainingSetCache {
  private readonly done: LRUCache<string, Derived> | null
  private readonly building = new Map<string, Promise<Derived>>()
  builds = 0

  constructor(private readonly limits: TrainingLimits) {
    this.done =
      limits.cacheBytes > 0
        ? new LRUCache<string, Derived>({ maxSize: limits.cacheBytes, ttl: limits.cacheTtlMs, sizeCalculation: derivedBytes })
        : null
  }

  static key(dataset: string, spec: string, fp: string, dtype: string): string {
    return `${dataset}\n${dtype}\n${fp}\n${spec}`
  }

  get(key: string): Derived | undefined {
    return this.done?.get(key)
  }

  set(key: string, d: Derived): void {
    if (this.done && derivedBytes(d) <= this.limits.cacheBytes) this.done.set(key, d)
  }

  /** The cached set, the build already running, or a new build of `build()` (kept once it succeeds). */
  async getOrBuild(key: string, build: () => Promise<Derived>): Promise<Derived> {
    const hit = this.get(key)
    if (hit) return hit
    let running = this.building.get(key)
    if (!running) {
      this.builds++
      running = build()
      this.building.set(key, running)
      running.then(
        (d) => {
          this.building.delete(key)
          this.set(key, d)
        },
        () => this.building.delete(key),
      )
    }
    return running
  }
}

// ---- derivation --------------------------------------------------------------------------

export interface Derived {
  matrix: FeatureMatrix
  windows: Record<SegmentName, SequenceWindows> | null
  fp: string
}

export function dataChanged(dataset: string, expected: string, current: string): ConflictError {
  return new ConflictError(
    `the data of dataset '${dataset}' changed since the training set was described: POST .../training-set again for new links`,
    { fingerprint: expected, current },
  )
}

/**
 * The matrix (and windows) of `req`, with the fingerprint taken before and after reading: equal
 * means no partition changed in between. With `expected` (a link), any other fingerprint is a 409;
 * without (a description), a change while reading is retried.
 */
export async function derive(
  storage: DataStorage,
  dataset: string,
  req: TrainingSetRequest,
  dtype: 'float32' | 'float64',
  scaler: Scaler | null,
  expected?: string,
  limits?: Pick<TrainingLimits, 'maxSymbols'>,
): Promise<Derived> {
  for (let attempt = 1; ; attempt++) {
    const plan = await readPlan(storage, dataset, req)
    const before = plan.fp
    if (expected !== undefined && before !== expected) throw dataChanged(dataset, expected, before)
    if (limits && plan.symbols > limits.maxSymbols) {
      throw new TrainingLimitError(
        422,
        expected === undefined ? 'symbols' : 'spec.symbols',
        `the request reads ${plan.symbols} symbols, above the limit of ${limits.maxSymbols} (TRAINING_MAX_SYMBOLS): list at most ${limits.maxSymbols} in symbols`,
        { limit: limits.maxSymbols, got: plan.symbols },
      )
    }
    const prepared = await prepareTrainingData(storage, dataset, req)
    const matrix = buildMatrix(prepared, { dtype, normalize: req.normalize, scalerType: req.scalerType, scaler })
    const windows = req.windows ? sequenceWindows(matrix, req.windows) : null
    const after = await fingerprint(storage, dataset, req)
    if (after === before) return { matrix, windows, fp: after }
    if (expected !== undefined) throw dataChanged(dataset, expected, after)
    if (attempt === 3) throw new ConflictError(`the data of dataset '${dataset}' kept changing while it was read: retry`)
  }
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

/** Response headers saying how many NaN cells X holds: `x-nan-cells` (total) and per feature with any. */
export function nanHeaders(cells: Record<string, number>): Record<string, string> {
  const total = Object.values(cells).reduce((a, b) => a + b, 0)
  const some = Object.entries(cells).filter(([, n]) => n > 0)
  return {
    'x-nan-cells': String(total),
    ...(some.length ? { 'x-nan-cells-by-feature': some.map(([f, n]) => `${f}=${n}`).join(',') } : {}),
  }
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

/** `segments` of the description: links, or the bodies inline (their decoded bytes capped at `maxInline`). */
export async function describeSegments(
  d: Derived,
  req: TrainingSetRequest,
  link: (segment: SegmentName, part: (typeof PARTS)[number]) => string,
  maxInline: number,
): Promise<Record<SegmentName, unknown>> {
  const out = {} as Record<SegmentName, unknown>
  if (req.format === 'parquet') {
    let total = 0
    for (const s of SEGMENTS) {
      const { table, columns } = segmentTable(d.matrix, s)
      let data: Ref = { href: link(s, 'data.parquet') }
      if (req.inline) {
        const bytes = encodeParquet(table)
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
