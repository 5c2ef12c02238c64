/**
 * Names that become paths or object keys: dataset names, column names and partition values.
 * Nothing reaches a path or key without passing through here.
 */

import { ValidationError } from './errors.js'

const DATASET_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/
const COLUMN_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/
const MAX_SYMBOL_LENGTH = 128
/** Longest path segment (`symbol=<encoded>`) local disks and object stores all accept, in bytes. */
export const MAX_SEGMENT_BYTES = 255
/** A lone UTF-16 surrogate: a high one not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * True when the string has no lone UTF-16 surrogate (`String.prototype.isWellFormed`, which not
 * every runtime we target has). Such a string has no UTF-8 form: it would be stored as U+FFFD,
 * a different value from the one sent.
 */
export function isWellFormedString(s: string): boolean {
  return NATIVE_WELL_FORMED ? NATIVE_WELL_FORMED.call(s) : isWellFormedByScan(s)
}

/** The same check by a regex scan, for runtimes without `isWellFormed`. */
export function isWellFormedByScan(s: string): boolean {
  return !LONE_SURROGATE_RE.test(s)
}

/** The runtime's own check where it has one (Node 20+, Workers, Bun): no regex per value. */
const NATIVE_WELL_FORMED = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed

export const ILL_FORMED_MESSAGE = 'contains a lone UTF-16 surrogate (not valid Unicode text): it cannot be stored exactly'

/** Dataset names: 1-64 chars of letters, digits, `_`, `-`, starting with a letter or digit. */
export function checkDatasetName(name: unknown): string {
  if (typeof name !== 'string' || !DATASET_RE.test(name)) {
    throw new ValidationError([
      {
        field: 'dataset',
        message: `invalid dataset name ${JSON.stringify(name)}: expected 1-64 letters, digits, '_' or '-', starting with a letter or digit`,
      },
    ])
  }
  return name
}

export function isDatasetName(name: string): boolean {
  return DATASET_RE.test(name)
}

/** Why a column name is unacceptable, or null. Names become Parquet and SQL identifiers. */
export function columnNameProblem(name: string): string | null {
  if (!COLUMN_RE.test(name)) return `invalid column name: expected a letter or '_' then letters, digits or '_' (max 63)`
  return null
}

/** Why a symbol is unacceptable, or null. `/`, `=`, `^` and the like are fine: they are encoded. */
export function symbolProblem(symbol: unknown): string | null {
  if (typeof symbol !== 'string') return `expected a string, got ${describeValue(symbol)}`
  if (symbol.length === 0) return 'must not be empty'
  if (symbol.length > MAX_SYMBOL_LENGTH) return `longer than ${MAX_SYMBOL_LENGTH} characters`
  if (CONTROL_RE.test(symbol)) return 'contains a control character'
  if (!isWellFormedString(symbol)) return ILL_FORMED_MESSAGE
  if (symbol.includes('..')) return "contains '..'"
  if (symbol.trim() !== symbol) return 'has leading or trailing whitespace'
  // a UTF-16 unit encodes to at most 9 characters (3 UTF-8 bytes as %XX): short symbols always fit
  const bytes = symbol.length <= 27 ? 0 : encodedSegmentBytes(symbol)
  if (bytes > MAX_SEGMENT_BYTES) {
    return `its path segment 'symbol=<percent-encoded UTF-8>' would be ${bytes} bytes, more than ${MAX_SEGMENT_BYTES} (shorten the symbol or use fewer non-ASCII characters)`
  }
  return null
}

/** Bytes of the partition path segment `symbol=<encoded>` of a symbol (it is ASCII: length = bytes). */
export function encodedSegmentBytes(symbol: string): number {
  return 7 + encodePathValue(symbol).length
}

const SAFE_CHAR = /[A-Za-z0-9._-]/
const HEX = '0123456789ABCDEF'
const UTF8 = new TextEncoder()

/**
 * Percent-encodes a partition value for a path segment (Hive style: `%XX` of UTF-8 bytes).
 * Kept as is: letters, digits, `.`, `_`, `-`, except a leading `.` or `_` (hidden files for
 * Spark/Hive readers). So `BRK.B` stays, `EUR/USD` -> `EUR%2FUSD`, `^GSPC` -> `%5EGSPC`.
 */
export function encodePathValue(value: string): string {
  let out = ''
  let i = 0
  for (const ch of value) {
    if (SAFE_CHAR.test(ch) && !(i === 0 && (ch === '.' || ch === '_'))) out += ch
    else for (const b of UTF8.encode(ch)) out += `%${HEX[b >> 4]}${HEX[b & 15]}`
    i++
  }
  return out
}

export function decodePathValue(segment: string): string {
  return decodeURIComponent(segment)
}

function describeValue(v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'nothing'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v)
  return typeof v
}

export { describeValue }
