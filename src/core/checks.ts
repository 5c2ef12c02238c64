/** Checks of call options every backend makes the same way: write mode, scan batch size, row limit. */

import { ValidationError } from './errors.js'
import type { WriteMode } from './types.js'

export const WRITE_MODES: readonly WriteMode[] = ['upsert', 'append', 'replace']

/** Rows per `scan()` batch when neither the call nor `storage.retrieval` names a size. */
export const DEFAULT_SCAN_BATCH = 65_536

/** The write mode (default `upsert`); a ValidationError on `mode` for anything else. */
export function checkWriteMode(mode: unknown = 'upsert'): WriteMode {
  if (!WRITE_MODES.includes(mode as WriteMode)) {
    throw new ValidationError([
      { field: 'mode', message: `expected one of ${WRITE_MODES.join(', ')}, got ${JSON.stringify(mode)}` },
    ])
  }
  return mode as WriteMode
}

/** `scan()`'s batch size (default `DEFAULT_SCAN_BATCH`); a ValidationError on `batchSize` unless a number >= 1. */
export function checkBatchSize(batchSize: unknown = DEFAULT_SCAN_BATCH): number {
  if (typeof batchSize !== 'number' || !(batchSize >= 1)) {
    throw new ValidationError([{ field: 'batchSize', message: 'expected a positive integer' }])
  }
  return batchSize
}

/** A read's row limit (default: none, `Infinity`); a ValidationError on `limit` unless a number >= 0. */
export function checkLimit(limit: unknown): number {
  const n = limit ?? Number.POSITIVE_INFINITY
  if (typeof n !== 'number' || !(n >= 0))
    throw new ValidationError([{ field: 'limit', message: 'expected a non-negative integer' }])
  return n
}
