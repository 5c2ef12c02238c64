/** Checks of call options every backend takes the same way (made once, by the front): write mode, time unit, scan batch size, row limit, column list, gc options. */

import { ValidationError } from './errors.js'
import { describeValue } from './keys.js'
import { TIME_UNITS, type TimeUnit } from './time.js'
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

/** The unit of epoch numbers of a write, or undefined (milliseconds); a ValidationError on `timeUnit` for anything else. */
export function checkTimeUnit(unit: unknown): TimeUnit | undefined {
  if (unit === undefined) return undefined
  if (!TIME_UNITS.includes(unit as TimeUnit))
    throw new ValidationError([{ field: 'timeUnit', message: `expected s, ms, us or ns, got ${describeValue(unit)}` }])
  return unit as TimeUnit
}

/**
 * A read's column list: undefined (all columns) or an array of strings; a ValidationError on
 * `columns` for anything else. Names the dataset does not have are refused where the schema is
 * known (`projectSchema`).
 */
export function checkColumns(columns: unknown): string[] | undefined {
  if (columns === undefined || columns === null) return undefined
  if (!Array.isArray(columns) || columns.some((c) => typeof c !== 'string'))
    throw new ValidationError([{ field: 'columns', message: 'expected an array of column names' }])
  return columns
}

/** `gc()`'s grace period when given: a number of milliseconds >= 0; a ValidationError on `graceMs` otherwise. */
export function checkGraceMs(graceMs: unknown): number | undefined {
  if (graceMs === undefined) return undefined
  if (typeof graceMs !== 'number' || !(graceMs >= 0))
    throw new ValidationError([{ field: 'graceMs', message: 'expected a non-negative number of milliseconds' }])
  return graceMs
}

/** A `dryRun` flag: absent is false; a ValidationError on `dryRun` unless a boolean (a dry run is never guessed). */
export function checkDryRun(dryRun: unknown): boolean {
  if (dryRun === undefined) return false
  if (typeof dryRun !== 'boolean') throw new ValidationError([{ field: 'dryRun', message: 'expected true or false' }])
  return dryRun
}
