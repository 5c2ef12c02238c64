/**
 * CSV number cells read without a regex or a cut string: the value `csvCell` gives a cell that
 * matches its number pattern (`Number(cell)`, the double nearest the decimal), computed from the
 * digits.
 * - Up to 15 significant digits (Clinger's fast path): the mantissa M and 10^k (k <= 22) are exact
 *   doubles, and one multiplication or division of exact doubles is correctly rounded.
 * - 16 to 19 significant digits, at most 22 after the point (what `String(double)` prints): a
 *   candidate x within an ulp or so, then the exact residual (M − x·10^k, with Dekker's exact
 *   products) proves x (or its neighbour) nearest, or the cell goes to `Number`. Exact ties and
 *   powers of two (whose gap below is half the one above) always go to `Number`.
 */

const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/** Significant digits that always fit a double exactly, and the most the residual check takes. */
const EXACT_DIGITS = 15
const CHECKED_DIGITS = 19

/** 2^27 + 1: Veltkamp's splitter, halves of 26 bits whose products are exact. */
const SPLITTER = 134217729

/** 2^e for e in [−1100, 1100], by exact doublings and halvings. */
const POW2 = new Float64Array(2201)
for (let k = 0, up = 1, down = 1; k <= 1100; k++, up *= 2, down /= 2) {
  POW2[1100 + k] = up
  POW2[1100 - k] = down
}

/** The bits of a double: the high word holds the sign, the exponent and 20 mantissa bits. */
const bits = new Float64Array(1)
const words = new Uint32Array(bits.buffer)
const HIGH = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 1 : 0 // little-endian: word 1

/** `a · b` as `hi + lo` exactly (Dekker's product; no FMA in JS); returns lo, given hi = a · b. */
function productError(a: number, b: number, hi: number): number {
  let t = SPLITTER * a
  const ah = t - (t - a)
  const al = a - ah
  t = SPLITTER * b
  const bh = t - (t - b)
  const bl = b - bh
  return ah * bh - hi + ah * bl + al * bh + al * bl
}

/** The exponent e with ulp(x) = 2^e for a normal x > 0, or NaN when x is a power of two. */
function ulpExponent(x: number): number {
  bits[0] = x
  const high = words[HIGH]
  if ((high & 0xfffff) === 0 && words[1 - HIGH] === 0) return Number.NaN
  return ((high >>> 20) & 0x7ff) - 1075
}

/**
 * The double nearest M / 10^k, where M = h·10^s + l (h < 10^15 with 15 digits, 1 <= s <= 4,
 * l < 10^s) and 0 <= k <= 22; NaN when the residual cannot prove it (then use `Number`).
 */
function checkedQuotient(h: number, s: number, l: number, k: number): number {
  const p = POW10[k]
  const x = k >= s ? h / POW10[k - s] + l / p : h * POW10[s - k] + l / p
  const e = ulpExponent(x)
  if (e !== e) return Number.NaN
  // r = M − x·p, exactly enough: h·10^s = mh + ml and x·p = ph + pl exactly, mh − ph exact (Sterbenz)
  const ten = POW10[s]
  const mh = h * ten
  const ml = productError(h, ten, mh)
  const ph = x * p
  const pl = productError(x, p, ph)
  const r = mh - ph + (ml - pl) + l
  // x is nearest when |M/p − x| < ulp(x)/2, i.e. |r| < half; |r| is within 2^−36 of the truth,
  // and half >= M·2^−54 > 0.05: the margin keeps near-ties (and ties) out
  const half = p * POW2[1100 + e - 1]
  const safe = half * 0.999999
  if (Math.abs(r) < safe) return x
  // off by one: the neighbour towards M/p, unless it is a power of two
  const ulp = POW2[1100 + e]
  const next = r > 0 ? x + ulp : x - ulp
  if (ulpExponent(next) !== e) return Number.NaN
  return Math.abs(r > 0 ? r - 2 * half : r + 2 * half) < safe ? next : Number.NaN
}

/**
 * The cell `text[a, b)` (not empty) when it matches `^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`:
 * its finite value, `Number(cell)`; NaN when the value is not finite or the cell is an integer
 * of more than 15 digits (maybe beyond ±(2^53 − 1): `csvCell` decides). A cell not matching the
 * pattern: undefined.
 */
export function readCsvNumber(text: string, a: number, b: number): number | undefined {
  let i = a
  let c = text.charCodeAt(a)
  const negative = c === 45 /* - */
  if (negative || c === 43 /* + */) i++
  let h = 0 // the first 15 significant digits
  let l = 0 // the next 4
  let significant = 0
  let digits = 0
  let fraction = -1 // digits after the point; −1: no point
  for (; i < b; i++) {
    c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      digits++
      if (fraction >= 0) fraction++
      if (significant === 0 && c === 48) continue
      if (significant < EXACT_DIGITS) h = h * 10 + (c - 48)
      else if (significant < CHECKED_DIGITS) l = l * 10 + (c - 48)
      significant++
    } else if (c === 46 /* . */ && fraction < 0) fraction = 0
    else break
  }
  if (digits === 0) return undefined
  let integer = fraction < 0
  let scale = integer ? 0 : -fraction
  if (i < b && (c === 101 || c === 69) /* e E */) {
    integer = false
    c = text.charCodeAt(++i)
    const expNegative = c === 45
    if (i < b && (c === 43 || c === 45)) i++
    const from = i
    let e = 0
    for (; i < b; i++) {
      c = text.charCodeAt(i)
      if (c < 48 || c > 57) break
      if (e < 10_000) e = e * 10 + (c - 48)
    }
    if (i === from) return undefined
    scale += expNegative ? -e : e
  }
  if (i !== b) return undefined
  if (significant <= EXACT_DIGITS && scale >= -22 && scale <= 22) {
    const v = scale < 0 ? h / POW10[-scale] : h * POW10[scale]
    return negative ? -v : v
  }
  if (integer) return Number.NaN
  if (significant <= CHECKED_DIGITS && scale >= -22 && scale <= 0) {
    const v = checkedQuotient(h, significant - EXACT_DIGITS, l, -scale)
    if (v === v) return negative ? -v : v
  }
  const v = Number(text.slice(a, b))
  return Number.isFinite(v) ? v : Number.NaN
}
