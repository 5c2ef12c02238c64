/**
 * A body's time column of ISO-8601 strings (and epoch numbers already turned into microseconds)
 * → epoch microseconds, read once by the body parser
 * so the storage does not parse them (twice) again. The canonical form most feeds send,
 * `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, is read here, the calendar day remembered from one row to
 * the next (bars come in runs of one day); any other form goes to the storage's own parser,
 * `parseIsoUs`, so the values are exactly those the storage would compute.
 */

import { DAYS_IN_MONTH, digits, formatUs, parseIsoUs } from '../core/time.js'
import { EpochMicros } from '../table/normalize.js'

const FRACTION_SCALE = [1, 100_000, 10_000, 1000, 100, 10, 1]

/** Reads canonical ISO strings; remembers the last calendar day's epoch milliseconds. */
class CanonicalIso {
  private dayKey = -1
  private dayMs = 0

  /** Epoch µs of `t` in the canonical form with a valid date and time, else NaN. */
  us(t: string): number {
    const n = t.length
    if (n < 20 || n > 30 || t.charCodeAt(n - 1) !== 90 /* Z */ || t.charCodeAt(4) !== 45 || t.charCodeAt(7) !== 45) {
      return Number.NaN
    }
    if (t.charCodeAt(10) !== 84 /* T */ || t.charCodeAt(13) !== 58 || t.charCodeAt(16) !== 58) return Number.NaN
    const year = digits(t, 0, 4)
    const month = digits(t, 5, 2)
    const day = digits(t, 8, 2)
    const hour = digits(t, 11, 2)
    const minute = digits(t, 14, 2)
    const second = digits(t, 17, 2)
    if (year < 100 || month < 1 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
      return Number.NaN
    }
    let fraction = 0
    if (n > 20) {
      const count = n - 21
      if (t.charCodeAt(19) !== 46 /* . */ || count === 0 || digits(t, 20, count) < 0) return Number.NaN
      if (count > 6 && digits(t, 26, count - 6) !== 0) return Number.NaN // below the µs: parseIsoUs refuses it
      fraction = digits(t, 20, Math.min(6, count)) * FRACTION_SCALE[Math.min(6, count)]
    }
    const key = year * 10_000 + month * 100 + day
    if (key !== this.dayKey) {
      if (month > 12) return Number.NaN
      const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      if (day > DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0)) return Number.NaN
      this.dayMs = Date.UTC(year, month - 1, day)
      this.dayKey = key
    }
    // the same double as Date.UTC(year, month - 1, day, hour, minute, second) * 1000 + fraction
    return (this.dayMs + hour * 3_600_000 + minute * 60_000 + second * 1000) * 1000 + fraction
  }
}

/**
 * A time column as the storage takes it. Its numbers are already epoch microseconds (read in the
 * body's `time_unit` as they arrived); its strings are ISO times read here. When every value is
 * one of those, an `EpochMicros` column; otherwise (a null, a string that is not a time, a
 * boolean...) a plain array where each number is written back as its exact ISO time, so the
 * storage sees one form and names the row of the value it refuses.
 */
export function timeColumn(values: ArrayLike<unknown>): EpochMicros | unknown[] {
  const n = values.length
  if (values instanceof Float64Array) return new EpochMicros(values.buffer as ArrayBuffer, values.byteOffset, n)
  const out = new EpochMicros(n)
  const iso = new CanonicalIso()
  for (let i = 0; i < n; i++) {
    const v = values[i]
    let us: number
    if (typeof v === 'number') us = v
    else if (typeof v === 'string') {
      us = iso.us(v)
      if (us !== us) us = parseIsoUs(v) ?? Number.NaN
    } else us = Number.NaN
    if (us !== us) return Array.from(values, (x) => (typeof x === 'number' ? formatUs(x) : x))
    out[i] = us
  }
  return out
}

/**
 * The values as epoch microseconds when every one is a string the storage parses as a time;
 * null otherwise (and for no values).
 */
export function epochMicros(values: readonly unknown[]): EpochMicros | null {
  if (values.length === 0 || values.some((v) => typeof v !== 'string')) return null
  const out = timeColumn(values)
  return out instanceof EpochMicros ? out : null
}
