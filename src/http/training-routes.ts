/**
 * `POST /v1/datasets/:dataset/training-set` and its download links: a feature matrix (or
 * sequence windows) described as JSON, with each segment's parts as `.npy` files (or one Parquet
 * file per segment) behind links, or inline as base64. Links are stateless, so they work across
 * Worker isolates and restarts: a link carries the request (`spec`, base64url of its canonical
 * JSON) and a fingerprint of the partition versions read (`fp`). `GET` of a link re-derives the
 * same matrix and streams the part, or answers 409 `conflict` once the data has changed.
 */

import type { Context, Hono, MiddlewareHandler } from 'hono'
import * as v from 'valibot'
import { ConflictError, StorageError, UnsupportedMediaTypeError, ValidationError } from '../errors.js'
import { encodeParquet } from '../parquet/index.js'
import {
  buildMatrix,
  type FeatureMatrix,
  MatrixOptionsSchema,
  NPY_CONTENT_TYPE,
  type NpyDtype,
  type NpyTypedArray,
  npyByteLength,
  npyStream,
  prepareTrainingData,
  SCALER_TYPES,
  Scaler,
  SEGMENTS,
  type SegmentName,
  type SequenceWindows,
  sequenceWindows,
} from '../training/index.js'
import type { DataStorage, Table } from '../types.js'
import type { Env } from './app.js'
import type { Scope } from './auth.js'
import { OUTPUT_CONTENT_TYPES } from './formats/index.js'
import { decodeUtf8, readAllBytes } from './formats/read-body.js'
import { DatasetParam, NoQuery, parseParam, queryObject } from './params.js'
import type { HttpStats } from './stats.js'

/** Default cap on the decoded bytes of all inline bodies of one response (16 MiB): above it, 413. */
export const DEFAULT_MAX_INLINE_BYTES = 16 * 1024 * 1024
/** The request body holds options, not data: at most 1 MiB (or the app's body limit if lower). */
export const MAX_TRAINING_SET_BODY_BYTES = 1024 * 1024
/** A windowed `X.npy` is streamed in chunks of at most this many windows, and about this many bytes. */
const WINDOWS_PER_CHUNK = 4096
const CHUNK_BYTES = 8 * 1024 * 1024

// ---- the request -------------------------------------------------------------------------

const Int = (min: number) => v.pipe(v.number(), v.integer('expected an integer'), v.minValue(min, `expected an integer ≥ ${min}`))

/** `Scaler.toJSON()` output, so a client can apply the scaler of an earlier training set. */
const ScalerJSONSchema = v.strictObject({
  format: v.literal('friday.scaler', "expected 'friday.scaler'"),
  formatVersion: v.literal(1, 'expected 1'),
  type: v.picklist(SCALER_TYPES, `expected one of ${SCALER_TYPES.join(', ')}`),
  featureNames: v.pipe(v.array(v.string()), v.minLength(1, 'expected at least one feature name')),
  center: v.array(v.nullable(v.number())),
  scale: v.array(v.nullable(v.number())),
  counts: v.array(Int(0)),
})

const WindowsSchema = v.strictObject({
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

/** `features[2]`, `target.horizon`, `windows.lookback`: the issue's path, `prefix`ed; `whole` when it has none. */
function fieldOf(issue: v.BaseIssue<unknown>, prefix: string, whole: string): string {
  let out = ''
  for (const p of issue.path ?? []) out += p.type === 'array' ? `[${String(p.key)}]` : `${out ? '.' : ''}${String(p.key)}`
  return out ? prefix + out : whole
}

function messageOf(issue: v.BaseIssue<unknown>): string {
  if (issue.type === 'strict_object' && issue.expected === 'never') return 'unknown field'
  if ((issue.type === 'strict_object' || issue.type === 'object') && issue.received === 'undefined') return 'required'
  return issue.message
}

function parseRequest(input: unknown, prefix: string, whole: string): TrainingSetRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError([{ field: whole, message: 'expected a JSON object of training-set options' }])
  }
  const r = v.safeParse(TrainingSetSchema, input)
  if (r.success) return r.output
  throw new ValidationError(r.issues.map((issue) => ({ field: fieldOf(issue, prefix, whole), message: messageOf(issue) })))
}

/** The scaler to apply (null: fit one on the training rows, or no normalization). */
function scalerOf(req: TrainingSetRequest, prefix: string): Scaler | null {
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

function toBase64(bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(s)
}

function fromBase64Url(text: string): Uint8Array {
  const b = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4))
  return Uint8Array.from(b, (ch) => ch.charCodeAt(0))
}

/** JSON with every object's keys sorted: the same request always gives the same text. */
function canonicalJson(value: unknown): string {
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
function specParam(input: Record<string, unknown>): string {
  const { inline: _inline, format: _format, ...rest } = input
  return toBase64(new TextEncoder().encode(canonicalJson(rest)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')
}

function decodeSpec(spec: string): TrainingSetRequest {
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
async function fingerprint(storage: DataStorage, dataset: string, req: TrainingSetRequest): Promise<string> {
  const parts = await storage.listPartitions(dataset, { symbols: req.symbols, start: req.start, end: req.end })
  const text = `${dataset}\n${parts.map((p) => `${p.path}:${p.version}`).join('\n')}`
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('')
}

// ---- derivation --------------------------------------------------------------------------

interface Derived {
  matrix: FeatureMatrix
  windows: Record<SegmentName, SequenceWindows> | null
  fp: string
}

function dataChanged(dataset: string, expected: string, current: string): ConflictError {
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
async function derive(
  storage: DataStorage,
  dataset: string,
  req: TrainingSetRequest,
  dtype: 'float32' | 'float64',
  scaler: Scaler | null,
  expected?: string,
): Promise<Derived> {
  for (let attempt = 1; ; attempt++) {
    const before = await fingerprint(storage, dataset, req)
    if (expected !== undefined && before !== expected) throw dataChanged(dataset, expected, before)
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

const NPY_PARTS = ['X', 'y', 'timestamps', 'symbols'] as const
type NpyPart = (typeof NPY_PARTS)[number]
const PARTS = ['X.npy', 'y.npy', 'timestamps.npy', 'symbols.npy', 'data.parquet'] as const

interface NpyBody {
  dtype: NpyDtype
  shape: number[]
  chunks: () => Iterable<NpyTypedArray>
}

/** Row-major rows of `X` as views of at most ~CHUNK_BYTES. */
function* rowSlices(X: FeatureMatrix['X'], features: number): Generator<NpyTypedArray> {
  const step = Math.max(1, Math.floor(CHUNK_BYTES / (features * X.BYTES_PER_ELEMENT))) * features
  for (let at = 0; at < X.length; at += step) yield X.subarray(at, at + step)
}

/** `[k, lookback, features]` blocks of windows, each copied into a fresh buffer (npyStream keeps views). */
function* windowChunks(w: SequenceWindows): Generator<NpyTypedArray> {
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
function* int64Chunks(us: Float64Array): Generator<NpyTypedArray> {
  const step = CHUNK_BYTES / 8
  for (let at = 0; at < us.length; at += step) {
    const part = us.subarray(at, at + step)
    const out = new BigInt64Array(part.length)
    for (let i = 0; i < part.length; i++) out[i] = BigInt(part[i])
    yield out
  }
}

/** One `.npy` part of a segment: rows of the matrix, or windows when the request has them. */
function npyBody(d: Derived, segment: SegmentName, part: NpyPart): NpyBody {
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
function segmentTable(m: FeatureMatrix, segment: SegmentName): { table: Table; columns: string[] } {
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

/** Inline bodies would make the response too large. */
export class InlineTooLargeError extends StorageError {
  constructor(bytes: number, limitBytes: number, atLeast: boolean) {
    super(
      413,
      'payload_too_large',
      `inline bodies would total ${atLeast ? 'over ' : ''}${bytes} bytes, above the limit of ${limitBytes}: ` +
        'leave out inline (or set it to false) to get download links instead',
      { bytes, limitBytes },
    )
  }
}

type Ref = { href: string } | { base64: string }

/** `segments` of the description: links, or the bodies inline (their decoded bytes capped at `maxInline`). */
async function describeSegments(
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
      out[s] = { rows: d.matrix.segments[s].rows, columns, data }
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
      X: await ref('X'),
      y: await ref('y'),
      timestamps: await ref('timestamps'),
      symbols: await ref('symbols'),
    }
  }
  return out
}

// ---- routes ------------------------------------------------------------------------------

export interface TrainingRouteOptions {
  storage: DataStorage
  requireScope: (scope: Scope) => MiddlewareHandler
  /** Names the operation for the stats. */
  op: (name: string) => MiddlewareHandler<Env>
  /** Counts request body bytes. */
  stats: HttpStats
  maxBodyBytes: number
  /** Default `DEFAULT_MAX_INLINE_BYTES`. */
  maxInlineBytes?: number
}

const SegmentParam = v.picklist(SEGMENTS, (i) => `expected one of ${SEGMENTS.join(', ')}, got ${JSON.stringify(i.input)}`)
const PartParam = v.picklist(PARTS, (i) => `expected one of ${PARTS.join(', ')}, got ${JSON.stringify(i.input)}`)
const LinkQuery = v.strictObject({
  spec: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]+$/, 'expected base64url: take links from POST .../training-set'))),
  fp: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{16}$/, 'expected 16 lower-case hex digits'))),
})

async function readJsonBody(c: Context<Env>, o: TrainingRouteOptions): Promise<unknown> {
  const type = c.req.header('content-type')
  if (type?.split(';')[0].trim().toLowerCase() !== 'application/json') {
    await c.req.raw.body?.cancel().catch(() => {})
    throw new UnsupportedMediaTypeError(type ?? null, ['application/json'])
  }
  const length = c.req.header('content-length')
  const declaredLength = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined
  const maxBytes = Math.min(o.maxBodyBytes, MAX_TRAINING_SET_BODY_BYTES)
  const raw = c.req.raw.body
  const bytes = raw ? await readAllBytes(raw.pipeThrough(o.stats.counter('in')), { maxBytes, declaredLength }) : new Uint8Array()
  if (bytes.length === 0) {
    throw new ValidationError([
      { field: 'body', message: 'the request body is empty: expected a JSON object of training-set options' },
    ])
  }
  const text = decodeUtf8(bytes)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ValidationError([{ field: 'body', message: `not valid JSON: ${(err as Error).message}` }])
  }
}

/**
 * Registers, both with scope `read`:
 *
 * `POST /v1/datasets/:dataset/training-set`, body `TrainingSetSchema` (JSON) → 200
 * `{ dataset, features, target, split, dropped, fill, distinctTimestamps, scaler, symbols,
 * fingerprint, format, windows, segments: { train, validation, test } }`. A segment is, for npy,
 * `{ rows, shape: { X, y }, dtype: '<f4' | '<f8', X, y, timestamps, symbols }` (`timestamps`:
 * `<i8` epoch µs of each row, or of each window's last row; `symbols`: `<u4` indices into
 * `symbols`), for parquet `{ rows, columns, data }`; each part is `{ href }` or, with `inline`,
 * `{ base64 }` (413 once the decoded bytes would pass `maxInlineBytes`). Parquet columns are
 * float64 whatever `dtype` says (it applies to `.npy`).
 *
 * `GET /v1/datasets/:dataset/training-set/:segment/:part?spec=&fp=` → the part as an attachment
 * (`X.npy`, `y.npy`, `timestamps.npy`, `symbols.npy`, `data.parquet`) with its Content-Length;
 * 409 `conflict` when `fp` no longer matches the partitions read.
 */
export function registerTrainingRoutes(app: Hono<Env>, o: TrainingRouteOptions): void {
  const { storage, requireScope, op } = o
  const maxInline = o.maxInlineBytes ?? DEFAULT_MAX_INLINE_BYTES
  const datasetOf = (c: Context<Env>) => parseParam(DatasetParam, c.req.param('dataset'), 'dataset')

  app.post('/v1/datasets/:dataset/training-set', op('training_set.describe'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    parseParam(NoQuery, queryObject(c.req.queries()), 'query')
    const input = await readJsonBody(c, o)
    const req = parseRequest(input, '', 'body')
    if (req.windows && req.format === 'parquet') {
      throw new ValidationError([{ field: 'format', message: 'windows need format npy: Parquet holds rows, not windows' }])
    }
    const scaler = scalerOf(req, '')
    const d = await derive(storage, name, req, req.format === 'parquet' ? 'float64' : req.dtype, scaler)
    const query = `?spec=${specParam(input as Record<string, unknown>)}&fp=${d.fp}`
    const link = (s: SegmentName, part: string) => `/v1/datasets/${name}/training-set/${s}/${part}${query}`
    const { report } = d.matrix
    return c.json({
      dataset: name,
      features: report.features,
      target: report.target,
      split: report.segments,
      dropped: report.dropped,
      fill: report.fill,
      distinctTimestamps: report.distinctTimestamps,
      scaler: d.matrix.scaler?.toJSON() ?? null,
      symbols: d.matrix.symbols,
      fingerprint: d.fp,
      format: req.format,
      windows: req.windows ?? null,
      segments: await describeSegments(d, req, link, maxInline),
    })
  })

  app.get('/v1/datasets/:dataset/training-set/:segment/:part', op('training_set.download'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    const segment = parseParam(SegmentParam, c.req.param('segment'), 'segment')
    const part = parseParam(PartParam, c.req.param('part'), 'part')
    const q = parseParam(LinkQuery, queryObject(c.req.queries()), 'query')
    const missing = (['spec', 'fp'] as const).filter((k) => q[k] === undefined)
    if (missing.length) {
      throw new ValidationError(missing.map((field) => ({ field, message: 'required: take links from POST .../training-set' })))
    }
    const req = decodeSpec(q.spec!)
    if (part === 'data.parquet' && req.windows) {
      throw new ValidationError([
        { field: 'part', message: 'windows need format npy: a windowed training set has no data.parquet' },
      ])
    }
    const scaler = scalerOf(req, 'spec.')
    const d = await derive(storage, name, req, part === 'data.parquet' ? 'float64' : req.dtype, scaler, q.fp)
    const headers: Record<string, string> = { 'content-disposition': `attachment; filename="${name}-${segment}-${part}"` }
    if (part === 'data.parquet') {
      const bytes = encodeParquet(segmentTable(d.matrix, segment).table)
      headers['content-type'] = OUTPUT_CONTENT_TYPES.parquet
      headers['content-length'] = String(bytes.length)
      return new Response(bytes as Uint8Array<ArrayBuffer>, { headers })
    }
    const b = npyBody(d, segment, part.slice(0, -'.npy'.length) as NpyPart)
    headers['content-type'] = NPY_CONTENT_TYPE
    headers['content-length'] = String(npyByteLength(b.dtype, b.shape))
    return new Response(npyStream(b.dtype, b.shape, b.chunks()), { headers })
  })
}
