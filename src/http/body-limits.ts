/**
 * Limits on the request bodies of the rows route: how long one may take to arrive, how wide it
 * may be, what a Parquet body may claim, and how many are read and parsed at once (a gate, so
 * that a burst of bodies cannot take all memory and CPU from other requests).
 */

import type { LimitsConfig } from '../config/schema.js'
import { BodiesBusyError } from '../core/errors.js'
import { DEFAULT_PARQUET_INGEST_LIMITS, type ParquetIngestLimits } from '../parquet/index.js'
import { DEFAULT_LIMITS } from '../table/limits.js'

export interface BodyLimits {
  /** Seconds from the request's arrival until its body must be in (408 past it). */
  maxBodyReadSeconds: number
  /** Columns a JSON, NDJSON or CSV body may have (413 past it). */
  maxColumnsPerRequest: number
  /** What a Parquet body may claim (413 past it). */
  parquet: ParquetIngestLimits
  /** Bodies read and parsed at once; more wait their turn. */
  maxConcurrentBodies: number
  /** Bodies that may wait for a turn; more get a 429. */
  maxQueuedBodies: number
}

export const DEFAULT_BODY_LIMITS: Readonly<BodyLimits> = Object.freeze({
  maxBodyReadSeconds: DEFAULT_LIMITS.maxBodyReadSeconds,
  maxColumnsPerRequest: DEFAULT_LIMITS.maxColumnsPerRequest,
  parquet: DEFAULT_PARQUET_INGEST_LIMITS,
  maxConcurrentBodies: 8,
  maxQueuedBodies: 256,
})

/** `storage.limits` (defaults applied) as the rows route's `BodyLimits`. */
export function bodyLimitsFromConfig(c: LimitsConfig): BodyLimits {
  return {
    maxBodyReadSeconds: c.max_body_read_seconds,
    maxColumnsPerRequest: c.max_columns_per_request,
    parquet: {
      maxRows: c.parquet_max_rows,
      maxCells: c.parquet_max_cells,
      maxPageBytes: c.parquet_max_page_bytes,
      maxDecodedBytes: c.parquet_max_decoded_bytes,
    },
    maxConcurrentBodies: c.max_concurrent_bodies,
    maxQueuedBodies: c.max_queued_bodies,
  }
}

/**
 * At most `concurrent` holders at once, at most `queued` waiting (`BodiesBusyError` past that).
 * `run` releases its turn however `fn` ends.
 */
export class BodyGate {
  private active = 0
  private readonly waiting: (() => void)[] = []

  constructor(
    private readonly concurrent: number,
    private readonly queued: number,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrent) {
      if (this.waiting.length >= this.queued) throw new BodiesBusyError(this.waiting.length)
      await new Promise<void>((resolve) => this.waiting.push(resolve))
    } else this.active++
    try {
      return await fn()
    } finally {
      // the turn passes on to the next waiter (`active` stays), or is given back
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }
}
