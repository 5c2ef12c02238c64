/**
 * `POST /v1/datasets/:dataset/training-set` and its download links: a feature matrix (or
 * sequence windows) described as JSON, with each segment's parts as `.npy` files (or one Parquet
 * file per segment) behind links, or inline as base64. Links are stateless, so they work across
 * Worker isolates and restarts: a link carries the request (`spec`, base64url of its canonical
 * JSON) and a fingerprint of the partition versions read (`fp`). `GET` of a link streams the part
 * of the set built for the description (kept in a cache bounded in bytes, for a TTL), or
 * re-derives it once that has expired; it answers 409 `conflict` once the data has changed.
 * Bounds (`TrainingLimits`): `windows.lookback` and the symbols read (422 `limit_exceeded`), the
 * bytes of all parts (413 `payload_too_large`), each naming the field to change.
 */

import type { Context, Hono } from 'hono'
import * as v from 'valibot'
import { UnsupportedMediaTypeError, ValidationError } from '../../core/errors.js'
import { OUTPUT_CONTENT_TYPES } from '../../formats/index.js'
import { decodeUtf8, readAllBytes } from '../../formats/read-body.js'
import { encodeParquet, type ParquetCodecs } from '../../parquet/index.js'
import { dataChanged, derive, fingerprint, TrainingSetCache } from '../../training/export.js'
import {
  checkBytes,
  describeSegments,
  type NpyPart,
  nanCells,
  npyBody,
  PARTS,
  segmentTable,
} from '../../training/export-parts.js'
import { NPY_CONTENT_TYPE, npyByteLength, npyStream, SEGMENTS, type SegmentName } from '../../training/index.js'
import type { Env } from '../app-types.js'
import { DEFAULT_TRAINING_LIMITS, type TrainingLimits } from '../config.js'
import { NoQuery, parseParam, queryObject } from '../params.js'
import {
  checkRequestLimits,
  DEFAULT_MAX_INLINE_BYTES,
  decodeSpec,
  MAX_TRAINING_SET_BODY_BYTES,
  nanHeaders,
  parseRequest,
  scalerOf,
  specParam,
} from '../training-set.js'
import { datasetOf, type RouteContext } from './context.js'

// ---- routes ------------------------------------------------------------------------------

export interface TrainingRouteOptions extends RouteContext {
  maxBodyBytes: number
  /** Default `DEFAULT_MAX_INLINE_BYTES`. */
  maxInlineBytes?: number
  /** Default `DEFAULT_TRAINING_LIMITS`. */
  limits?: TrainingLimits
  /** Seconds the body may take to arrive (408 past it; `limits.max_body_read_seconds`). */
  maxBodyReadSeconds?: number
  /** Built sets for the links (default: one per app, sized by `limits`). */
  cache?: TrainingSetCache
  /** Page codecs of the Parquet parts (default `jsCodecs()`). */
  codecs?: ParquetCodecs
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
  const bytes = raw
    ? await readAllBytes(raw.pipeThrough(o.stats.counter('in')), {
        maxBytes,
        declaredLength,
        maxReadSeconds: o.maxBodyReadSeconds,
      })
    : new Uint8Array()
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
  const limits = o.limits ?? DEFAULT_TRAINING_LIMITS
  const cache = o.cache ?? new TrainingSetCache(limits)

  app.post('/v1/datasets/:dataset/training-set', op('training_set.describe'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    parseParam(NoQuery, queryObject(c.req.queries()), 'query')
    const input = await readJsonBody(c, o)
    const req = parseRequest(input, '', 'body')
    if (req.windows && req.format === 'parquet') {
      throw new ValidationError([{ field: 'format', message: 'windows need format npy: Parquet holds rows, not windows' }])
    }
    checkRequestLimits(req, limits, '')
    const scaler = scalerOf(req, '')
    const dtype = req.format === 'parquet' ? 'float64' : req.dtype
    const d = await derive(storage, name, req, dtype, scaler, undefined, limits)
    checkBytes(d, req, req.format, limits, '')
    const spec = specParam(input as Record<string, unknown>)
    cache.set(TrainingSetCache.key(name, spec, d.fp, dtype), d)
    const query = `?spec=${spec}&fp=${d.fp}`
    const link = (s: SegmentName, part: string) => `/v1/datasets/${name}/training-set/${s}/${part}${query}`
    const { report } = d.matrix
    const cells = nanCells(d.matrix)
    return c.json(
      {
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
        // a feature with nulls and no fill is NaN in X: how many cells, per feature (all segments)
        nanCells: cells,
        segments: await describeSegments(d, req, link, maxInline, o.codecs),
      },
      200,
      nanHeaders(cells),
    )
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
    checkRequestLimits(req, limits, 'spec.')
    const scaler = scalerOf(req, 'spec.')
    const dtype = part === 'data.parquet' ? 'float64' : req.dtype
    const key = TrainingSetCache.key(name, q.spec!, q.fp!, dtype)
    let d = cache.get(key)
    if (d) {
      // built for this fingerprint: still the data's? (one listing, no rebuild)
      const current = await fingerprint(storage, name, req)
      if (current !== q.fp) throw dataChanged(name, q.fp!, current)
    } else {
      d = await cache.getOrBuild(key, () => derive(storage, name, req, dtype, scaler, q.fp, limits))
    }
    checkBytes(d, req, part === 'data.parquet' ? 'parquet' : 'npy', limits, 'spec.')
    const headers: Record<string, string> = { 'content-disposition': `attachment; filename="${name}-${segment}-${part}"` }
    if (part === 'X.npy' || part === 'data.parquet') Object.assign(headers, nanHeaders(nanCells(d.matrix, segment)))
    if (part === 'data.parquet') {
      const bytes = encodeParquet(segmentTable(d.matrix, segment).table, { codecs: o.codecs })
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
