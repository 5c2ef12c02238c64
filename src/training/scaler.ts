/**
 * Feature scalers fitted on training rows only: `standard` (mean, population std), `minmax`
 * (to [0, 1]) and `robust` (median, interquartile range). Every scaler is `(x - center) / scale`
 * per feature over row-major `Float64Array` matrices; NaN is ignored when fitting and stays NaN.
 */

import { ValidationError } from '../core/errors.js'

export type ScalerType = 'standard' | 'minmax' | 'robust'

/** A matrix or vector of floats: scalers compute in float64 and store into either. */
export type FloatArray = Float64Array | Float32Array

export const SCALER_TYPES: readonly ScalerType[] = ['standard', 'minmax', 'robust']

/** The JSON form of a fitted scaler. A feature with no training values has `null` center and scale. */
export interface ScalerJSON {
  format: 'friday.scaler'
  formatVersion: 1
  type: ScalerType
  featureNames: string[]
  center: (number | null)[]
  scale: (number | null)[]
  /** Non-NaN training values per feature. */
  counts: number[]
}

export interface FitOptions {
  /** Rows of `X` to fit on (the training segment). Default: every row of `X`. */
  rows?: ArrayLike<number>
  /** Names of the columns of `X`. Default `f0`, `f1`, ... */
  featureNames?: string[]
}

export class Scaler {
  /**
   * Per-feature parameters. A feature whose training values are all NaN has NaN center and
   * scale, so it transforms to NaN rather than passing through unscaled. A constant feature
   * gets scale 1 (as scikit-learn does).
   */
  private constructor(
    readonly type: ScalerType,
    readonly featureNames: readonly string[],
    readonly center: Float64Array,
    readonly scale: Float64Array,
    readonly counts: Uint32Array,
  ) {}

  get features(): number {
    return this.center.length
  }

  /** Fits on the rows `options.rows` (default all) of the row-major matrix `X` of `features` columns. */
  static fit(type: ScalerType, X: Float64Array, features: number, options: FitOptions = {}): Scaler {
    if (!SCALER_TYPES.includes(type)) {
      throw new ValidationError([{ field: 'scalerType', message: `expected one of ${SCALER_TYPES.join(', ')}, got '${type}'` }])
    }
    if (!Number.isInteger(features) || features < 1 || X.length % features !== 0) {
      throw new ValidationError([
        { field: 'features', message: `expected a positive integer dividing X.length ${X.length}, got ${features}` },
      ])
    }
    const names = featureNames(features, options.featureNames)
    const nRows = X.length / features
    const rows = options.rows
    const n = rows ? rows.length : nRows
    if (rows) {
      for (let i = 0; i < n; i++) {
        const r = rows[i]
        if (!Number.isInteger(r) || r < 0 || r >= nRows) {
          throw new ValidationError([{ field: 'rows', message: `row ${r} is outside X's ${nRows} rows` }])
        }
      }
    }
    // Each feature's values at `rows`, in row order: then the same fit as on columns.
    const columns = Array.from({ length: features }, (_, j) => {
      const col = new Float64Array(n)
      for (let i = 0; i < n; i++) col[i] = X[(rows ? rows[i] : i) * features + j]
      return col
    })
    return Scaler.fitColumns(
      type,
      columns,
      Uint32Array.from({ length: n }, (_, i) => i),
      names,
    )
  }

  /**
   * Fits on columns (one `Float64Array` per feature, NaN = missing) at the row indices `rows`:
   * the same result as `fit` on the row-major matrix, without building it.
   */
  static fitColumns(type: ScalerType, columns: Float64Array[], rows: ArrayLike<number>, names?: string[]): Scaler {
    if (!SCALER_TYPES.includes(type)) {
      throw new ValidationError([{ field: 'scalerType', message: `expected one of ${SCALER_TYPES.join(', ')}, got '${type}'` }])
    }
    const F = columns.length
    const labels = featureNames(F, names)
    const stats = new Float64Array(3 * F)
    // robust: each feature's non-NaN values gathered and sorted; standard and minmax read them where they are
    const gathered = type === 'robust' ? new Float64Array(rows.length) : null
    for (let j = 0; j < F; j++) {
      if (gathered) medianIqrOf(columns[j], rows, gathered, stats, 3 * j)
      else if (type === 'standard') meanStdOf(columns[j], rows, stats, 3 * j)
      else minMaxOf(columns[j], rows, stats, 3 * j)
    }
    return Scaler.fromStats(type, labels, stats)
  }

  /** From `[count, center, scale]` per feature: no values gives NaN parameters, a zero scale 1 (as scikit-learn does). */
  private static fromStats(type: ScalerType, names: string[], stats: Float64Array): Scaler {
    const F = names.length
    const center = new Float64Array(F)
    const scale = new Float64Array(F)
    const counts = new Uint32Array(F)
    for (let j = 0; j < F; j++) {
      const [m, c, s] = stats.subarray(3 * j, 3 * j + 3)
      counts[j] = m
      center[j] = m === 0 ? Number.NaN : c
      scale[j] = m === 0 ? Number.NaN : s === 0 ? 1 : s
    }
    return new Scaler(type, names, center, scale, counts)
  }

  /** `ValidationError` (field `scaler`) unless fitted on exactly `features`, in this order. */
  checkFeatures(features: readonly string[]): void {
    if (this.features === features.length && this.featureNames.every((n, j) => n === features[j])) return
    throw new ValidationError([
      { field: 'scaler', message: `fitted on [${this.featureNames.join(', ')}], the features are [${features.join(', ')}]` },
    ])
  }

  /** `(x - center) / scale` per feature; writes into `out` (may be `X` itself) or a new array. */
  transform<T extends FloatArray>(X: T, out?: T): T {
    const y = this.output(X, out)
    const f = this.features
    for (let i = 0; i < X.length; i += f) {
      for (let j = 0; j < f; j++) y[i + j] = (X[i + j] - this.center[j]) / this.scale[j]
    }
    return y
  }

  /** `x * scale + center` per feature: undoes `transform`. */
  inverseTransform<T extends FloatArray>(X: T, out?: T): T {
    const y = this.output(X, out)
    const f = this.features
    for (let i = 0; i < X.length; i += f) {
      for (let j = 0; j < f; j++) y[i + j] = X[i + j] * this.scale[j] + this.center[j]
    }
    return y
  }

  toJSON(): ScalerJSON {
    const num = (a: Float64Array) => Array.from(a, (v) => (Number.isNaN(v) ? null : v))
    return {
      format: 'friday.scaler',
      formatVersion: 1,
      type: this.type,
      featureNames: [...this.featureNames],
      center: num(this.center),
      scale: num(this.scale),
      counts: Array.from(this.counts),
    }
  }

  /** Rebuilds a scaler from `toJSON()` output (an object or its JSON text); `ValidationError` if malformed. */
  static fromJSON(json: unknown): Scaler {
    const o = (typeof json === 'string' ? JSON.parse(json) : json) as Partial<ScalerJSON> | null
    const bad = (field: string, message: string) => new ValidationError([{ field, message }])
    if (!o || typeof o !== 'object' || o.format !== 'friday.scaler' || o.formatVersion !== 1) {
      throw bad('format', "expected a 'friday.scaler' object of formatVersion 1")
    }
    if (!SCALER_TYPES.includes(o.type as ScalerType)) throw bad('type', `unknown scaler type '${o.type}'`)
    const names = o.featureNames
    if (!Array.isArray(names) || names.length === 0 || names.some((s) => typeof s !== 'string')) {
      throw bad('featureNames', 'expected a non-empty array of strings')
    }
    const f = names.length
    const nums = (field: 'center' | 'scale') => {
      const a = o[field]
      if (!Array.isArray(a) || a.length !== f || a.some((v) => v !== null && typeof v !== 'number')) {
        throw bad(field, `expected ${f} numbers or nulls`)
      }
      return Float64Array.from(a, (v) => (v === null ? Number.NaN : v))
    }
    const counts = o.counts
    if (!Array.isArray(counts) || counts.length !== f || counts.some((v) => !Number.isInteger(v) || v < 0)) {
      throw bad('counts', `expected ${f} non-negative integers`)
    }
    return new Scaler(o.type as ScalerType, [...names], nums('center'), nums('scale'), Uint32Array.from(counts))
  }

  private output<T extends FloatArray>(X: T, out: T | undefined): T {
    if (X.length % this.features !== 0) {
      throw new ValidationError([
        { field: 'X', message: `length ${X.length} is not a multiple of the scaler's ${this.features} features` },
      ])
    }
    if (out && out.length !== X.length) {
      throw new ValidationError([{ field: 'out', message: `length ${out.length}, expected ${X.length}` }])
    }
    return out ?? new (X.constructor as new (n: number) => T)(X.length)
  }
}

/** Same as `Scaler.fit`. */
export function fitScaler(type: ScalerType, X: Float64Array, features: number, options?: FitOptions): Scaler {
  return Scaler.fit(type, X, features, options)
}

/**
 * `out[at..at+3)` = [count, mean, population std] of the non-NaN `col[rows[i]]`:
 * the sum, then the squared deviations, in row order.
 */
function meanStdOf(col: Float64Array, rows: ArrayLike<number>, out: Float64Array, at: number): void {
  const n = rows.length
  let m = 0
  let sum = 0
  for (let i = 0; i < n; i++) {
    const v = col[rows[i]]
    if (v === v) {
      sum += v
      m++
    }
  }
  const c = sum / m
  let ss = 0
  for (let i = 0; i < n; i++) {
    const v = col[rows[i]]
    if (v === v) ss += (v - c) * (v - c)
  }
  out[at] = m
  out[at + 1] = c
  out[at + 2] = Math.sqrt(ss / m)
}

/** `out[at..at+3)` = [count, min, max − min] of the non-NaN `col[rows[i]]`. */
function minMaxOf(col: Float64Array, rows: ArrayLike<number>, out: Float64Array, at: number): void {
  let m = 0
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (let i = 0; i < rows.length; i++) {
    const v = col[rows[i]]
    if (v === v) {
      if (v < lo) lo = v
      if (v > hi) hi = v
      m++
    }
  }
  out[at] = m
  out[at + 1] = lo
  out[at + 2] = hi - lo
}

/** `out[at..at+3)` = [count, median, interquartile range] of the non-NaN `col[rows[i]]`, gathered into `buf` and sorted. */
function medianIqrOf(col: Float64Array, rows: ArrayLike<number>, buf: Float64Array, out: Float64Array, at: number): void {
  let m = 0
  for (let i = 0; i < rows.length; i++) {
    const v = col[rows[i]]
    if (v === v) buf[m++] = v
  }
  const vals = buf.subarray(0, m).sort()
  out[at] = m
  out[at + 1] = quantile(vals, 0.5)
  out[at + 2] = quantile(vals, 0.75) - quantile(vals, 0.25)
}

/** Linear-interpolated quantile of sorted values (NumPy's default `linear` method). */
export function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

function featureNames(features: number, names: string[] | undefined): string[] {
  if (names === undefined) return Array.from({ length: features }, (_, j) => `f${j}`)
  if (names.length !== features) {
    throw new ValidationError([{ field: 'featureNames', message: `expected ${features} names, got ${names.length}` }])
  }
  return [...names]
}
