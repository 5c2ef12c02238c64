/**
 * `JSON.parse` that keeps big integers exact. An integer literal outside ±(2^53 − 1) cannot be
 * held by a JS number, so before parsing it is rewritten into a string tagged with a per-parse
 * random marker; the caller turns tagged strings back into BigInts (`JsonText.revive`).
 */

/**
 * Pre-check for a possible big integer: 16+ digits after a non-digit that is not a decimal
 * point. (A bare `\d{16}` restarts at every digit of a long fraction: quadratic per number.)
 */
export const BIG_RUN = /(?:^|[^\d.])\d{16}/
const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y

/**
 * A number literal kept as written (`exactNumbers`): a reader converts it exactly (a time in a
 * `time_unit`, a declared int64) or to the double `JSON.parse` would give (`Number(text)`).
 */
export class NumberText {
  constructor(readonly text: string) {}
}

export interface ParsedJson {
  value: unknown
  /** Tagged big-integer strings → BigInt, tagged decimals → `NumberText`; any other value unchanged. */
  revive: (v: unknown) => unknown
}

const identity = (v: unknown): unknown => v

function randomMarker(): string {
  const bytes = new Uint8Array(8)
  crypto.getRandomValues(bytes)
  let hex = ''
  for (const b of bytes) hex += b.toString(16).padStart(2, '0')
  return `\u0000bigint-${hex}:`
}

/**
 * Parses JSON text; throws the `SyntaxError` of `JSON.parse` on the original text. Integer
 * literals beyond ±(2^53 − 1) come back as tagged strings that `revive` converts to BigInt.
 * `mayHoldBigInts: false` skips the pre-check (the caller ran BIG_RUN over a larger text).
 * `exactNumbers`: every literal with a fraction or an exponent also comes back tagged, and
 * `revive` turns it into a `NumberText` (slower: only for text whose time or int64 values have
 * such literals, see `TypedColumns.needsExactNumbers`).
 */
export function parseJson(text: string, mayHoldBigInts = true, exactNumbers = false): ParsedJson {
  if (!exactNumbers && (!mayHoldBigInts || !BIG_RUN.test(text))) return { value: JSON.parse(text), revive: identity }
  const parts: string[] = []
  let marker: string | undefined
  let last = 0
  const n = text.length
  let i = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) {
      // skip the string: find the closing quote not escaped by an odd run of backslashes
      let k = i + 1
      for (;;) {
        k = text.indexOf('"', k)
        if (k < 0) {
          k = n
          break
        }
        let slashes = 0
        while (text.charCodeAt(k - 1 - slashes) === 92 /* \ */) slashes++
        if (slashes % 2 === 0) break
        k++
      }
      i = k + 1
    } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      NUMBER.lastIndex = i
      const m = NUMBER.exec(text)
      if (!m) {
        i++
        continue
      }
      const end = i + m[0].length
      const decimal = m[1] !== undefined || m[2] !== undefined
      if (decimal ? exactNumbers : m[0].length > 15 && !Number.isSafeInteger(Number(m[0]))) {
        marker ??= randomMarker()
        parts.push(text.slice(last, i), `"\\u0000${marker.slice(1)}${m[0]}"`)
        last = end
      }
      i = end
    } else i++
  }
  if (!marker) return { value: JSON.parse(text), revive: identity }
  parts.push(text.slice(last))
  let value: unknown
  try {
    value = JSON.parse(parts.join(''))
  } catch {
    JSON.parse(text) // the original text's own error (positions of the rewritten text would be off)
    throw new SyntaxError('invalid JSON')
  }
  const tag = marker
  const revive = (v: unknown): unknown => {
    if (typeof v !== 'string' || v.charCodeAt(0) !== 0 || !v.startsWith(tag)) return v
    const literal = v.slice(tag.length)
    return /[.eE]/.test(literal) ? new NumberText(literal) : BigInt(literal)
  }
  return { value: revive(value), revive }
}

/**
 * After `JSON.parse` failed on a top-level array: the first element that does not parse on its
 * own, with its 0-based index, the 1-based line it starts on and its error. Elements are found
 * by a tolerant scan (strings skipped, brackets counted). Undefined when the text is not an
 * array or every element parses (the fault is then in the array itself, e.g. a missing `]`).
 */
export function findBadElement(text: string): { row: number; line: number; error: unknown } | undefined {
  const n = text.length
  let i = 0
  let line = 1
  const skipSpace = (): void => {
    for (; i < n; i++) {
      const c = text.charCodeAt(i)
      if (c === 10) line++
      else if (c !== 32 && c !== 9 && c !== 13) break
    }
  }
  skipSpace()
  if (text.charCodeAt(i) !== 91 /* [ */) return undefined
  i++
  let row = 0
  let depth = 1
  let start = i
  let startLine = line
  const check = (end: number): { row: number; line: number; error: unknown } | undefined => {
    const element = text.slice(start, end)
    if (row === 0 && depth === 0 && element.trim() === '') return undefined // []
    try {
      JSON.parse(element)
      return undefined
    } catch (error) {
      let at = startLine
      for (let k = start; k < end && /\s/.test(text[k]); k++) if (text[k] === '\n') at++
      return { row, line: at, error }
    }
  }
  for (; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 10) line++
    else if (c === 34 /* " */) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i)
        if (d === 92 /* \ */) i++
        else if (d === 34 || d === 10) break
      }
      if (text.charCodeAt(i) === 10) line++
    } else if (c === 91 || c === 123) depth++
    else if (c === 93 || c === 125) {
      depth--
      if (depth === 0) return check(i)
    } else if (c === 44 /* , */ && depth === 1) {
      const bad = check(i)
      if (bad) return bad
      row++
      start = i + 1
      startLine = line
    }
  }
  return check(n)
}
