/** Content negotiation: request `Content-Type` → body format; `?format=` / `Accept` → response format. */

import { UnsupportedMediaTypeError, ValidationError } from '../core/errors.js'

/** `tsv`: CSV split at tabs (`text/tab-separated-values`), a body format only. */
export type BodyFormat = 'json' | 'ndjson' | 'csv' | 'tsv' | 'parquet'
export type OutputFormat = 'json' | 'ndjson' | 'csv' | 'parquet'

/** Request media types, canonical one first for each format. */
const BODY_TYPES: Record<string, BodyFormat> = {
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'text/csv': 'csv',
  'text/tab-separated-values': 'tsv',
  'application/vnd.apache.parquet': 'parquet',
  'application/parquet': 'parquet',
  'application/x-parquet': 'parquet',
}
const ACCEPTED_BODY_TYPES = Object.keys(BODY_TYPES)

export const OUTPUT_CONTENT_TYPES: Record<OutputFormat, string> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  parquet: 'application/vnd.apache.parquet',
}

/** `?format=` values (case-insensitive). */
const FORMAT_PARAMS: Record<string, OutputFormat> = {
  json: 'json',
  ndjson: 'ndjson',
  jsonl: 'ndjson',
  csv: 'csv',
  parquet: 'parquet',
}

/** `type/subtype` of a media type, lower-cased, parameters dropped; '' when absent. */
function essence(mediaType: string): string {
  const semi = mediaType.indexOf(';')
  return (semi < 0 ? mediaType : mediaType.slice(0, semi)).trim().toLowerCase()
}

/**
 * Media type → format: application/json, application/x-ndjson (also application/ndjson,
 * application/jsonl), text/csv, text/tab-separated-values, application/vnd.apache.parquet (also application/parquet,
 * application/x-parquet). Parameters like `; charset=utf-8` are ignored. Missing or other →
 * `UnsupportedMediaTypeError` (415) listing the accepted types.
 */
export function bodyFormat(contentType: string | null | undefined): BodyFormat {
  const type = contentType ? essence(contentType) : ''
  if (!Object.hasOwn(BODY_TYPES, type)) throw new UnsupportedMediaTypeError(contentType ?? null, ACCEPTED_BODY_TYPES)
  return BODY_TYPES[type]
}

/** Accept media ranges → format; `*\/*` and `application/*` mean JSON, `text/*` CSV. */
function acceptFormat(range: string): OutputFormat | undefined {
  if (range === '*/*' || range === 'application/*') return 'json'
  if (range === 'text/*') return 'csv'
  const format = Object.hasOwn(BODY_TYPES, range) ? BODY_TYPES[range] : undefined
  return format === 'tsv' ? undefined : format
}

/**
 * The response format: the `format` query parameter (json, ndjson or jsonl, csv, parquet; any
 * case) wins; else the `Accept` header's most preferred supported media type (q-values honoured,
 * ties in header order); `*\/*`, a missing header or one naming nothing supported → json. An
 * unknown `format` value → `ValidationError` on field `format`.
 */
export function outputFormat(formatParam: string | undefined, accept: string | null | undefined): OutputFormat {
  if (formatParam !== undefined && formatParam !== '') {
    const key = formatParam.trim().toLowerCase()
    if (!Object.hasOwn(FORMAT_PARAMS, key)) {
      throw new ValidationError([
        { field: 'format', message: `unknown format ${JSON.stringify(formatParam)}: expected json, ndjson, csv or parquet` },
      ])
    }
    return FORMAT_PARAMS[key]
  }
  if (!accept) return 'json'
  let best: OutputFormat | undefined
  let bestQ = 0
  for (const part of accept.split(',')) {
    const [range, ...params] = part.split(';')
    let q = 1
    for (const p of params) {
      const [k, v] = p.split('=')
      if (k.trim().toLowerCase() === 'q') q = Number(v)
    }
    if (!(q > 0)) continue // q=0 (or garbage) means "not acceptable"
    const format = acceptFormat(range.trim().toLowerCase())
    if (format && q > bestQ) {
      best = format
      bestQ = q
    }
  }
  return best ?? 'json'
}
