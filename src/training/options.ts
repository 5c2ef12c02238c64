/**
 * The options of a training request, as one valibot schema shared by the library functions and
 * `POST /v1/datasets/:dataset/training-set`: validated once at the edge, typed inside. Every
 * issue names its field (`target.horizon`, `features[2]`).
 */

import * as v from 'valibot'
import { ValidationError } from '../core/errors.js'
import { SCALER_TYPES, Scaler, type ScalerJSON } from './scaler.js'

/** Targets computed from a price column, per symbol, `horizon` rows ahead. */
export const DERIVED_TARGETS = ['returns', 'log_returns', 'direction', 'value'] as const
export type DerivedTarget = (typeof DERIVED_TARGETS)[number]

const Name = v.pipe(v.string(), v.minLength(1, 'expected a non-empty column name'))
const Fraction = v.pipe(
  v.number(),
  v.check((n) => n >= 0 && n < 1, 'expected a fraction in [0, 1)'),
)
const Count = (min: number) =>
  v.pipe(v.number(), v.integer('expected an integer'), v.minValue(min, `expected an integer ≥ ${min}`))
const Time = v.union([v.string(), v.number(), v.date()], 'expected an ISO-8601 time or epoch milliseconds')

const TargetObject = v.strictObject({
  /** `returns`: p[t+h]/p[t] − 1; `log_returns`: ln(p[t+h]/p[t]); `direction`: 1 if p[t+h] > p[t] else 0; `value`: p[t+h]. */
  kind: v.picklist(DERIVED_TARGETS),
  /** The price column (default `close`). */
  column: v.optional(Name, 'close'),
  /** Rows ahead within the symbol (default 1; `value` allows 0: the column itself). */
  horizon: v.optional(Count(0), 1),
})

const FillMethodName = v.picklist(['ffill', 'bfill', 'drop', 'mean', 'median'])
const FillEntry = v.union([
  FillMethodName,
  v.strictObject({ method: FillMethodName }),
  v.strictObject({ method: v.literal('constant'), value: v.union([v.number(), v.string(), v.boolean()]) }),
])

export const TrainingOptionsSchema = v.strictObject({
  /** Symbols to load (default: every symbol of the dataset). */
  symbols: v.optional(v.pipe(v.array(Name), v.minLength(1, 'expected at least one symbol'))),
  /** Numeric columns (float64, int64, boolean) that become the features, in this order. */
  features: v.pipe(v.array(Name), v.minLength(1, 'expected at least one feature')),
  /**
   * A stored column (taken as is), a derived target name (`returns`, `log_returns`, `direction`:
   * of `close`, one row ahead), or `{ kind, column, horizon }`. A stored column of the same name wins.
   */
  target: v.union([Name, TargetObject], 'expected a column name or { kind, column?, horizon? }'),
  start: v.optional(Time),
  end: v.optional(Time),
  /** Fraction of distinct timestamps for the test segment (the latest). */
  testSize: Fraction,
  validationSize: v.optional(Fraction, 0),
  /** Distinct timestamps left out between segments (beyond the purge of look-ahead labels). */
  gap: v.optional(Count(0), 0),
  /** Milliseconds after a segment's last timestamp during which the next segment's rows are dropped. */
  embargo: v.optional(v.pipe(v.number(), v.minValue(0, 'expected milliseconds ≥ 0')), 0),
  /** Missing values per column: `ffill`, `bfill`, `drop`, `mean`, `median`, or `{ method: 'constant', value }`. */
  fill: v.optional(v.record(Name, FillEntry)),
  /** Symbols loaded at once (default: the storage's `retrieval.concurrency`, `max_workers` 4 from `createStorage`; else 4). */
  concurrency: v.optional(v.pipe(Count(1), v.maxValue(64, 'expected at most 64'))),
})

export const MatrixOptionsSchema = v.strictObject({
  ...TrainingOptionsSchema.entries,
  normalize: v.optional(v.boolean(), true),
  scalerType: v.optional(v.picklist(SCALER_TYPES), 'standard'),
  /** Element type of X and y (default float32, what TensorFlow and PyTorch train in). */
  dtype: v.optional(v.picklist(['float32', 'float64']), 'float32'),
  /** A fitted scaler (or its JSON) to apply instead of fitting one on the training rows. */
  scaler: v.optional(v.custom<Scaler | ScalerJSON>((s) => s instanceof Scaler || (typeof s === 'object' && s !== null))),
})

/** Walk-forward folds for backtesting: the matrix options with fold sizes instead of split fractions. */
export const WalkForwardOptionsSchema = v.strictObject({
  ...v.omit(MatrixOptionsSchema, ['testSize', 'validationSize']).entries,
  /** Number of folds (test blocks), in time order. */
  folds: v.pipe(Count(1), v.maxValue(1000, 'expected at most 1000')),
  /** `expanding`: each fold trains on everything before its test block; `rolling`: on the last `trainSize`. */
  window: v.optional(v.picklist(['expanding', 'rolling']), 'expanding'),
  /** Distinct timestamps per test block (default: distinct / (folds + 1), rounded down). */
  foldSize: v.optional(Count(1)),
  /** Rolling window length in distinct timestamps (default: the first fold's training length). */
  trainSize: v.optional(Count(1)),
})

export type TrainingOptionsInput = v.InferInput<typeof TrainingOptionsSchema>
export type TrainingOptions = v.InferOutput<typeof TrainingOptionsSchema>
export type MatrixOptionsInput = v.InferInput<typeof MatrixOptionsSchema>
export type MatrixOptions = v.InferOutput<typeof MatrixOptionsSchema>
export type WalkForwardOptionsInput = v.InferInput<typeof WalkForwardOptionsSchema>
export type WalkForwardMatrixOptions = v.InferOutput<typeof WalkForwardOptionsSchema>

/** The scaler to apply instead of fitting one: the one passed (or rebuilt from its JSON) when normalizing, else null. */
export function givenScaler(o: { normalize: boolean; scaler?: Scaler | ScalerJSON }): Scaler | null {
  if (!o.normalize || !o.scaler) return null
  return o.scaler instanceof Scaler ? o.scaler : Scaler.fromJSON(o.scaler)
}

/** The resolved target: what to compute and from which column. */
export interface TargetSpec {
  kind: DerivedTarget | 'column'
  column: string
  horizon: number
  /** The target's name in tables and reports: the column, or e.g. `returns_1`. */
  name: string
}

/**
 * Parses with `schema`, turning valibot issues into one `ValidationError` naming each field the
 * way the rest of the API does (`features[2]`, `target.horizon`), `prefix`ed; `whole` names an
 * issue with no path.
 */
export function parseOptions<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  prefix = '',
  whole = 'options',
): v.InferOutput<S> {
  const r = v.safeParse(schema, input)
  if (r.success) return r.output
  throw new ValidationError(r.issues.map((issue) => ({ field: fieldOf(issue, prefix, whole), message: messageOf(issue) })))
}

function fieldOf(issue: v.BaseIssue<unknown>, prefix: string, whole: string): string {
  let out = ''
  for (const p of issue.path ?? []) out += p.type === 'array' ? `[${String(p.key)}]` : `${out ? '.' : ''}${String(p.key)}`
  return out ? prefix + out : whole
}

function messageOf(issue: v.BaseIssue<unknown>): string {
  if (issue.type === 'strict_object' && issue.expected === 'never') return 'unknown field'
  if ((issue.type === 'strict_object' || issue.type === 'object') && issue.received === 'undefined') return 'required'
  return issue.message
}

/** Resolves `target` against the dataset's columns: a stored column wins over a derived name. */
export function resolveTarget(target: TrainingOptions['target'], columns: ReadonlySet<string>): TargetSpec {
  if (typeof target === 'string') {
    if (columns.has(target)) return { kind: 'column', column: target, horizon: 0, name: target }
    if ((DERIVED_TARGETS as readonly string[]).includes(target) && target !== 'value') {
      return resolveTarget({ kind: target as DerivedTarget, column: 'close', horizon: 1 }, columns)
    }
    throw new ValidationError([
      { field: 'target', message: `'${target}' is neither a column of the dataset nor one of returns, log_returns, direction` },
    ])
  }
  if (!columns.has(target.column)) {
    throw new ValidationError([{ field: 'target.column', message: `no column '${target.column}' in the dataset` }])
  }
  if (target.horizon === 0 && target.kind !== 'value') {
    throw new ValidationError([{ field: 'target.horizon', message: `${target.kind} needs a horizon ≥ 1` }])
  }
  const name = target.kind === 'value' && target.horizon === 0 ? target.column : `${target.kind}_${target.horizon}`
  return { kind: target.kind, column: target.column, horizon: target.horizon, name }
}
