/**
 * A training-set export: its options (the matrix options plus `windows`, `format`, `inline`), the
 * fingerprint of the partition versions it reads, the derivation of the matrix (or windows) with
 * that fingerprint checked before and after reading, and a cache of built sets bounded in bytes.
 * Its parts (`.npy` bodies, a Parquet table per segment, the description of the segments) are in
 * `export-parts.ts`. The HTTP routes (`src/http/routes/training.ts`) parse requests into these
 * options and render what this builds.
 */

import { LRUCache } from 'lru-cache'
import * as v from 'valibot'
import { ConflictError, TrainingLimitError } from '../core/errors.js'
import type { DataStorage } from '../core/types.js'
import { buildMatrix, type FeatureMatrix } from './matrix.js'
import { MatrixOptionsSchema } from './options.js'
import { prepareTrainingData, type SegmentName } from './prepare.js'
import { SCALER_TYPES, type Scaler } from './scaler.js'
import { type SequenceWindows, sequenceWindows } from './windows.js'

/** Bounds and cache of a training-set export (the HTTP defaults: `DEFAULT_TRAINING_LIMITS` in `src/http/config.ts`). */
export interface TrainingLimits {
  /** Largest `windows.lookback` (default 2048): above, 422 naming the field. */
  maxLookback: number
  /** Most symbols one training set reads, listed or all of the dataset (default 5000): above, 422. */
  maxSymbols: number
  /** Most bytes one training set may advertise over all its parts (default 4 GiB): above, 413. */
  maxBytes: number
  /** Memory for built training sets kept for their links (default 256 MiB; 0: no cache). */
  cacheBytes: number
  /** How long a built training set stays cached for its links (default 10 minutes). */
  cacheTtlMs: number
}

// ---- the options -------------------------------------------------------------------------

export const Int = (min: number) =>
  v.pipe(v.number(), v.integer('expected an integer'), v.minValue(min, `expected an integer ≥ ${min}`))

/** `Scaler.toJSON()` output, so a client can apply the scaler of an earlier training set. */
export const ScalerJSONSchema = v.strictObject({
  format: v.literal('friday.scaler', "expected 'friday.scaler'"),
  formatVersion: v.literal(1, 'expected 1'),
  type: v.picklist(SCALER_TYPES, `expected one of ${SCALER_TYPES.join(', ')}`),
  featureNames: v.pipe(v.array(v.string()), v.minLength(1, 'expected at least one feature name')),
  center: v.array(v.nullable(v.number())),
  scale: v.array(v.nullable(v.number())),
  counts: v.array(Int(0)),
})

export const WindowsSchema = v.strictObject({
  lookback: Int(1),
  stride: v.optional(Int(1)),
  /** Milliseconds: see `WindowOptions.maxGap`. */
  maxGap: v.optional(
    v.pipe(
      v.number(),
      v.check((n) => n > 0, 'expected milliseconds > 0'),
    ),
  ),
})

const { scaler: _instance, ...matrixEntries } = MatrixOptionsSchema.entries

/** The body of `POST .../training-set`: the matrix options, plus `windows`, `format` and `inline`. */
export const TrainingSetSchema = v.strictObject({
  ...matrixEntries,
  scaler: v.optional(ScalerJSONSchema),
  windows: v.optional(WindowsSchema),
  format: v.optional(v.picklist(['npy', 'parquet'], "expected 'npy' or 'parquet'"), 'npy'),
  inline: v.optional(v.boolean(), false),
})

export type TrainingSetRequest = v.InferOutput<typeof TrainingSetSchema>

// ---- fingerprint -------------------------------------------------------------------------

/** The first 16 hex digits of SHA-256 over the `path:version` of every partition the request reads. */
export async function fingerprint(storage: DataStorage, dataset: string, req: TrainingSetRequest): Promise<string> {
  return (await readPlan(storage, dataset, req)).fp
}

/** The fingerprint of what `req` reads and how many symbols that is. */
async function readPlan(
  storage: DataStorage,
  dataset: string,
  req: TrainingSetRequest,
): Promise<{ fp: string; symbols: number }> {
  const parts = await storage.listPartitions(dataset, { symbols: req.symbols, start: req.start, end: req.end })
  const text = `${dataset}\n${parts.map((p) => `${p.path}:${p.version}`).join('\n')}`
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  const fp = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('')
  return { fp, symbols: new Set(parts.map((p) => p.values.symbol)).size }
}

// ---- cache -------------------------------------------------------------------------------

/** Memory a built training set holds (its arrays; windows share the matrix's `X`). */
function derivedBytes(d: Derived): number {
  const m = d.matrix
  let n = m.X.byteLength + m.y.byteLength + m.timestamps.byteLength + m.symbolIndex.byteLength + m.labelTs.byteLength
  for (const w of Object.values(d.windows ?? {})) {
    n += w.starts.byteLength + w.targets.byteLength + w.endTimestamps.byteLength + w.symbolIndex.byteLength
  }
  return n + 1024
}

/**
 * Built training sets by id (dataset, spec, fingerprint, dtype), so the links of one description
 * do not each rebuild the matrix: bounded in bytes (`cacheBytes`), each kept `cacheTtlMs`; a build
 * in progress is shared by the requests that need it, and a failed build is not kept.
 */
export class TrainingSetCache {
  private readonly done: LRUCache<string, Derived> | null
  private readonly building = new Map<string, Promise<Derived>>()
  builds = 0

  constructor(private readonly limits: TrainingLimits) {
    this.done =
      limits.cacheBytes > 0
        ? new LRUCache<string, Derived>({ maxSize: limits.cacheBytes, ttl: limits.cacheTtlMs, sizeCalculation: derivedBytes })
        : null
  }

  static key(dataset: string, spec: string, fp: string, dtype: string): string {
    return `${dataset}\n${dtype}\n${fp}\n${spec}`
  }

  get(key: string): Derived | undefined {
    return this.done?.get(key)
  }

  set(key: string, d: Derived): void {
    if (this.done && derivedBytes(d) <= this.limits.cacheBytes) this.done.set(key, d)
  }

  /** The cached set, the build already running, or a new build of `build()` (kept once it succeeds). */
  async getOrBuild(key: string, build: () => Promise<Derived>): Promise<Derived> {
    const hit = this.get(key)
    if (hit) return hit
    let running = this.building.get(key)
    if (!running) {
      this.builds++
      running = build()
      this.building.set(key, running)
      running.then(
        (d) => {
          this.building.delete(key)
          this.set(key, d)
        },
        () => this.building.delete(key),
      )
    }
    return running
  }
}

// ---- derivation --------------------------------------------------------------------------

export interface Derived {
  matrix: FeatureMatrix
  windows: Record<SegmentName, SequenceWindows> | null
  fp: string
}

export function dataChanged(dataset: string, expected: string, current: string): ConflictError {
  return new ConflictError(
    `the data of dataset '${dataset}' changed since the training set was described: POST .../training-set again for new links`,
    { fingerprint: expected, current },
  )
}

/**
 * The matrix (and windows) of `req`, with the fingerprint taken before and after reading: equal
 * means no partition changed in between. With `expected` (a link), any other fingerprint is a 409;
 * without (a description), a change while reading is retried.
 */
export async function derive(
  storage: DataStorage,
  dataset: string,
  req: TrainingSetRequest,
  dtype: 'float32' | 'float64',
  scaler: Scaler | null,
  expected?: string,
  limits?: Pick<TrainingLimits, 'maxSymbols'>,
): Promise<Derived> {
  for (let attempt = 1; ; attempt++) {
    const plan = await readPlan(storage, dataset, req)
    const before = plan.fp
    if (expected !== undefined && before !== expected) throw dataChanged(dataset, expected, before)
    if (limits && plan.symbols > limits.maxSymbols) {
      throw new TrainingLimitError(
        422,
        expected === undefined ? 'symbols' : 'spec.symbols',
        `the request reads ${plan.symbols} symbols, above the limit of ${limits.maxSymbols} (TRAINING_MAX_SYMBOLS): list at most ${limits.maxSymbols} in symbols`,
        { limit: limits.maxSymbols, got: plan.symbols },
      )
    }
    const prepared = await prepareTrainingData(storage, dataset, req)
    const matrix = buildMatrix(prepared, { dtype, normalize: req.normalize, scalerType: req.scalerType, scaler })
    const windows = req.windows ? sequenceWindows(matrix, req.windows) : null
    const after = await fingerprint(storage, dataset, req)
    if (after === before) return { matrix, windows, fp: after }
    if (expected !== undefined) throw dataChanged(dataset, expected, after)
    if (attempt === 3) throw new ConflictError(`the data of dataset '${dataset}' kept changing while it was read: retry`)
  }
}
