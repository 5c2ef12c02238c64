/** Time values: everything is normalized to UTC epoch microseconds held exactly in a float64. */

export const US_PER_MS = 1000
export const US_PER_DAY = 86_400_000_000

/**
 * The one accepted time range of every input form (ISO strings, epoch-ms numbers, Dates, CSV,
 * JSON, NDJSON, Parquet timestamps), exact to the microsecond: [1700-01-01T00:00:00Z,
 * 2200-01-01T00:00:00Z). Every µs in it is an exact integer in a float64 (|µs| < 2^53), and it
 * lies inside PostgreSQL's, MongoDB's and pandas' datetime64[ns] ranges, so every reader gets it
 * exactly. `MIN_TIME_US` is the first accepted µs, `MAX_TIME_US` the first refused one.
 */
export const MIN_TIME_US = -8_520_336_000_000_000
export const MAX_TIME_US = 7_258_118_400_000_000
export const TIME_RANGE_TEXT = '[1700-01-01T00:00:00Z, 2200-01-01T00:00:00Z)'

/** True when `us` is a whole microsecond inside the accepted range. */
export function isTimeUsInRange(us: number): boolean {
  return us >= MIN_TIME_US && us < MAX_TIME_US && Number.isInteger(us)
}

/**
 * Why an epoch-µs time is refused (null when it is accepted): a message naming the accepted
 * range, for a `FieldIssue`. Every input path (including Parquet timestamps) checks with this.
 */
export function checkTimeUs(us: number): string | null {
  if (isTimeUsInRange(us)) return null
  if (!Number.isFinite(us)) return 'missing or invalid time'
  if (!Number.isInteger(us)) return 'time is not a whole microsecond'
  return `time is outside the accepted range ${TIME_RANGE_TEXT}`
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

/**
 * Parses a time value to epoch microseconds, or returns null if it cannot be parsed. The result
 * may lie outside the accepted range (`checkTimeUs` says so): a write refuses it.
 * - number: epoch milliseconds (fractions keep microseconds);
 * - Date: its milliseconds;
 * - string: ISO-8601 date or date-time, with `Z`, an offset, or none (= UTC); up to 9 fraction
 *   digits, those below the microsecond zeros (a time that is not a whole µs cannot be stored
 *   exactly: null). The calendar date must exist.
 */
export function parseTimeUs(value: unknown): number | null {
  if (typeof value === 'number') {
    // out of range (and beyond 2^53) is not "unparseable": callers refuse it with checkTimeUs
    if (!Number.isFinite(value)) return null
    const us = exactUs(String(value), 'ms')
    if (us === 'fraction' || us === null) return null // not a whole µs: never rounded
    return us === 'huge' ? value * US_PER_MS : Number(us)
  }
  if (value instanceof Date) {
    const ms = value.getTime()
    return Number.isNaN(ms) ? null : ms * US_PER_MS
  }
  if (typeof value === 'string') return parseIsoUs(value)
  return null
}

export const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** The decimal number in `t[at, at + count)`, or -1 if a character there is not a digit. */
export function digits(t: string, at: number, count: number): number {
  let v = 0
  for (let i = at; i < at + count; i++) {
    const c = t.charCodeAt(i) - 48
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
  }
  return v
}

/**
 * The canonical form `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what most feeds and our own output send)
 * without a regex or a Date object. `undefined` means "not this form": use the general parser.
 */
function canonicalIsoUs(t: string): number | null | undefined {
  const n = t.length
  if (n < 20 || n > 30 || t.charCodeAt(n - 1) !== 90 || t.charCodeAt(4) !== 45 || t.charCodeAt(7) !== 45) return undefined
  if (t.charCodeAt(10) !== 84 || t.charCodeAt(13) !== 58 || t.charCodeAt(16) !== 58) return undefined
  const year = digits(t, 0, 4)
  const month = digits(t, 5, 2)
  const day = digits(t, 8, 2)
  const hour = digits(t, 11, 2)
  const minute = digits(t, 14, 2)
  const second = digits(t, 17, 2)
  if (year < 100 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined
  let fraction = 0
  if (n > 20) {
    if (t.charCodeAt(19) !== 46 || n === 21) return undefined
    const f = digits(t, 20, Math.min(6, n - 21))
    if (f < 0 || digits(t, 20, n - 21) < 0) return undefined
    if (n - 21 > 6 && digits(t, 26, n - 27) !== 0) return null // below the µs: not exact
    fraction = f * 10 ** (6 - Math.min(6, n - 21))
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  if (day > DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0)) return null
  return Date.UTC(year, month - 1, day, hour, minute, second) * US_PER_MS + fraction
}

export function parseIsoUs(text: string): number | null {
  const fast = canonicalIsoUs(text)
  if (fast !== undefined) return fast
  const m = ISO_RE.exec(text.trim())
  if (!m) return null
  const year = +m[1]
  const month = +m[2]
  const day = +m[3]
  const hour = m[4] ? +m[4] : 0
  const minute = m[5] ? +m[5] : 0
  const second = m[6] ? +m[6] : 0
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day)
  d.setUTCHours(hour, minute, second, 0)
  if (d.getUTCDate() !== day || d.getUTCMonth() !== month - 1) return null
  let us = d.getTime() * US_PER_MS
  if (m[7] && m[7].length > 6 && /[1-9]/.test(m[7].slice(6))) return null // below the µs: not exact
  if (m[7]) us += +m[7].slice(0, 6).padEnd(6, '0')
  const tz = m[8]
  if (tz && tz !== 'Z' && tz !== 'z') {
    const sign = tz[0] === '-' ? -1 : 1
    const digits = tz.slice(1).replace(':', '')
    const oh = +digits.slice(0, 2)
    const om = digits.length > 2 ? +digits.slice(2, 4) : 0
    if (oh > 23 || om > 59) return null
    us -= sign * (oh * 60 + om) * 60_000_000
  }
  return us
}

/** ISO-8601 UTC with microseconds when they are not zero: `2024-01-02T09:30:00.123456Z`. */
export function formatUs(us: number): string {
  const ms = Math.floor(us / US_PER_MS)
  const rest = us - ms * US_PER_MS
  const iso = new Date(ms).toISOString()
  if (rest === 0) return iso
  return `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`
}

/** UTC day `YYYY-MM-DD` of an epoch-microsecond time. */
export function dayOf(us: number): string {
  return new Date(Math.floor(us / US_PER_DAY) * 86_400_000).toISOString().slice(0, 10)
}

/** UTC month `YYYY-MM`. */
export function monthOf(us: number): string {
  return dayOf(us).slice(0, 7)
}

/** Epoch microseconds of the start of a `YYYY-MM-DD` day or `YYYY-MM` month (UTC). */
export function startOfPeriodUs(period: string): number {
  const [y, m, d] = period.split('-').map(Number)
  const date = new Date(0)
  date.setUTCFullYear(y, m - 1, d ?? 1)
  return date.getTime() * US_PER_MS
}

/** Epoch microseconds of the start of the next day/month after the given period. */
export function endOfPeriodUs(period: string): number {
  const [y, m, d] = period.split('-').map(Number)
  const date = new Date(0)
  if (d === undefined) date.setUTCFullYear(y, m, 1)
  else date.setUTCFullYear(y, m - 1, d + 1)
  return date.getTime() * US_PER_MS
}

// ---- epoch numbers in a unit -----------------------------------------------------------------

/** The units an epoch number may be given in (`time_unit`). */
export const TIME_UNITS = ['s', 'ms', 'us', 'ns'] as const
export type TimeUnit = (typeof TIME_UNITS)[number]

export const TIME_UNIT_NAMES: Record<TimeUnit, string> = {
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
}

/** µs = value × 10^k. */
const US_EXPONENT: Record<TimeUnit, number> = { s: 6, ms: 3, us: 0, ns: -3 }

/**
 * With the default unit (milliseconds, no unit given), an epoch number whose magnitude is below
 * this many milliseconds (1e11 ms: 1966-10-31T14:13:20Z to 1973-03-03T09:46:40Z) is refused as
 * probably seconds: a seconds value of any date from 1700 to 5138 is below it.
 */
export const PLAUSIBLE_MS = 100_000_000_000

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const MIN_US = BigInt(MIN_TIME_US)
const MAX_US = BigInt(MAX_TIME_US)

/**
 * The decimal number `text` (`-12`, `1709251200.5`, `1.7e9`) in `unit` as exact epoch
 * microseconds: 'fraction' when it is not a whole microsecond, 'huge' when its magnitude is far
 * beyond any accepted time (no giant BigInt is built), null when `text` is not a decimal number.
 * Computed on the digits (BigInt), so a 19-digit nanosecond value is exact.
 */
export function exactUs(text: string, unit: TimeUnit): bigint | 'fraction' | 'huge' | null {
  const m = DECIMAL_RE.exec(text)
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null
  const fraction = m[3] ?? ''
  let digits = (m[2] + fraction).replace(/^0+/, '')
  let scale = US_EXPONENT[unit] - fraction.length + (m[4] ? Number(m[4]) : 0)
  if (digits === '') return 0n
  // trailing zeros move into the scale: 1.50 s and 15e-1 s are the same whole µs
  const trimmed = digits.replace(/0+$/, '')
  scale += digits.length - trimmed.length
  digits = trimmed
  if (scale < 0) return 'fraction'
  if (digits.length + scale > 25) return 'huge'
  const us = BigInt(digits) * 10n ** BigInt(scale)
  return m[1] === '-' ? -us : us
}

function inRange(us: bigint): boolean {
  return us >= MIN_US && us < MAX_US
}

/** `text` read in `unit`, when it is an accepted time: its ISO form; else undefined. */
function readingIn(text: string, unit: TimeUnit): string | undefined {
  const us = exactUs(text, unit)
  return typeof us === 'bigint' && inRange(us) ? formatUs(Number(us)) : undefined
}

/** `; as seconds it is 2024-03-01T00:00:00Z: pass time_unit=s` for the units (in `units`) the value fits. */
function suggest(text: string, units: readonly TimeUnit[]): string {
  for (const u of units) {
    const iso = readingIn(text, u)
    if (iso) return `; as ${TIME_UNIT_NAMES[u]} it is ${iso}: pass time_unit=${u}`
  }
  return ''
}

/**
 * An epoch number (its decimal text: a CSV cell, a JSON literal, `String(bigint)`) in `unit` →
 * epoch microseconds, exactly; or the message that refuses it:
 * - not a whole microsecond (a fraction of a µs, or a nanosecond count not a multiple of 1000);
 * - outside the accepted range [1700-01-01, 2200-01-01), naming a unit it would fit;
 * - `unitGiven` false (the default, milliseconds, applies): |value| < `PLAUSIBLE_MS`, refused as
 *   probably seconds (`1709251200 read as milliseconds is 1970-01-20T18:47:31.200Z; if this is
 *   seconds, pass time_unit=s ...`). With a unit given, every in-range value is accepted.
 */
export function epochToUs(text: string, unit: TimeUnit, unitGiven: boolean): number | string {
  // fast path: an integer of at most 15 digits in s, ms or us is exact as a double
  if (unit !== 'ns' && text.length <= 16 && INTEGER_TEXT.test(text)) {
    const fast = fastUs(Number(text), unit, unitGiven)
    if (fast !== undefined) return fast
  }
  return exactEpochToUs(text, unit, unitGiven)
}

/**
 * `epochToUs` of a number or BigInt as a JavaScript value gives it: its decimal form `String(v)`
 * (an integer number below 1e15 directly, without the text).
 */
export function epochNumberToUs(v: number | bigint, unit: TimeUnit, unitGiven: boolean): number | string {
  if (typeof v === 'number' && unit !== 'ns' && Number.isInteger(v) && v < 1e15 && v > -1e15) {
    const fast = fastUs(v, unit, unitGiven)
    if (fast !== undefined) return fast
  }
  return epochToUs(String(v), unit, unitGiven)
}

/**
 * The µs of an integer `v` (|v| < 1e15) in s, ms or us when the product is safe, in range and
 * (default unit) plausible; undefined for anything else, which takes the exact way (and its message).
 */
function fastUs(v: number, unit: TimeUnit, unitGiven: boolean): number | undefined {
  const us = v * US_SCALE[unit]
  if (!Number.isSafeInteger(us) || us < MIN_TIME_US || us >= MAX_TIME_US) return undefined
  if (!unitGiven && unit === 'ms' && us < PLAUSIBLE_MS * 1000 && us > -PLAUSIBLE_MS * 1000) return undefined
  return us === 0 ? 0 : us // no -0
}

function exactEpochToUs(text: string, unit: TimeUnit, unitGiven: boolean): number | string {
  const us = exactUs(text, unit)
  const name = TIME_UNIT_NAMES[unit]
  if (us === null) return `${JSON.stringify(text)} is not a number`
  if (us === 'fraction') {
    return unit === 'ns'
      ? `${text} ns is not a multiple of 1000: sub-microsecond precision cannot be stored`
      : `${text} read as ${name} is not a whole microsecond (at most ${US_EXPONENT[unit] || 'no'} digits after the point): it cannot be stored exactly`
  }
  if (us === 'huge' || !inRange(us)) {
    // 0 is in range: out of range is always too large a magnitude, so only finer units may fit
    const finer = TIME_UNITS.slice(TIME_UNITS.indexOf(unit) + 1)
    return `${text} read as ${name} is outside the accepted range ${TIME_RANGE_TEXT}${suggest(text, finer)}`
  }
  if (!unitGiven && unit === 'ms' && us < PLAUSIBLE_US && us > -PLAUSIBLE_US) {
    const seconds = readingIn(text, 's')
    const hint = seconds ? `if this is seconds, pass time_unit=s (${seconds}); ` : ''
    return `${text} read as milliseconds is ${formatUs(Number(us))}, implausibly close to 1970; ${hint}if it really is milliseconds, pass time_unit=ms`
  }
  return Number(us)
}

const PLAUSIBLE_US = BigInt(PLAUSIBLE_MS) * 1000n
const INTEGER_TEXT = /^-?\d{1,15}$/
const US_SCALE: Record<TimeUnit, number> = { s: 1_000_000, ms: 1000, us: 1, ns: 0.001 }
