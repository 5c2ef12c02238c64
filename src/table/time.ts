/** Time values: everything is normalized to UTC epoch microseconds held exactly in a float64. */

export const US_PER_MS = 1000
export const US_PER_DAY = 86_400_000_000

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/

/**
 * Parses a time value to epoch microseconds, or returns null if it cannot be parsed.
 * - number: epoch milliseconds (fractions keep microseconds);
 * - Date: its milliseconds;
 * - string: ISO-8601 date or date-time, with `Z`, an offset, or none (= UTC); up to 9 fraction
 *   digits, truncated to microseconds. The calendar date must exist.
 */
export function parseTimeUs(value: unknown): number | null {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null
    const us = Math.round(value * US_PER_MS)
    return Number.isSafeInteger(us) ? us : null
  }
  if (value instanceof Date) {
    const ms = value.getTime()
    return Number.isNaN(ms) ? null : ms * US_PER_MS
  }
  if (typeof value === 'string') return parseIsoUs(value)
  return null
}

export function parseIsoUs(text: string): number | null {
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
