/**
 * The request side of `POST /v1/datasets/:dataset/training-set` and its links: parsing the body
 * (or a link's `spec`) into `TrainingSetRequest`, the scaler it names, the request limits (422),
 * the stateless link (`spec` = base64url of the canonical request) and the NaN headers. Building
 * the set and its parts is `src/training/export.ts` and `export-parts.ts`.
 */

import { TrainingLimitError, ValidationError } from '../core/errors.js'
import { decodeUtf8 } from '../formats/read-body.js'
import { type TrainingLimits, type TrainingSetRequest, TrainingSetSchema } from '../training/export.js'
import { toBase64 } from '../training/export-parts.js'
import { parseOptions } from '../training/options.js'
import { Scaler } from '../training/scaler.js'

/** Default cap on the decoded bytes of all inline bodies of one response (16 MiB): above it, 413. */
export const DEFAULT_MAX_INLINE_BYTES = 16 * 1024 * 1024
/** The request body holds options, not data: at most 1 MiB (or the app's body limit if lower). */
export const MAX_TRAINING_SET_BODY_BYTES = 1024 * 1024

// ---- the request -------------------------------------------------------------------------

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

/** Response headers saying how many NaN cells X holds: `x-nan-cells` (total) and per feature with any. */
export function nanHeaders(cells: Record<string, number>): Record<string, string> {
  const total = Object.values(cells).reduce((a, b) => a + b, 0)
  const some = Object.entries(cells).filter(([, n]) => n > 0)
  return {
    'x-nan-cells': String(total),
    ...(some.length ? { 'x-nan-cells-by-feature': some.map(([f, n]) => `${f}=${n}`).join(',') } : {}),
  }
}
