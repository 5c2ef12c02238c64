/**
 * Limits on what one write may ask of the storage: columns per request and per dataset,
 * partitions per write, and how long a request body may take to arrive. Configured in
 * `storage.limits` (snake_case there); the defaults below apply wherever nothing is configured.
 * A limit passed is answered with a `LimitExceededError` (413, 422 or 408) before anything is stored.
 */

import { LimitExceededError } from '../core/errors.js'

export interface InputLimits {
  /** Columns (key columns included) a dataset may ever have. */
  maxColumnsPerDataset: number
  /** Columns one write may carry (key columns included); a body parser stops at this width. */
  maxColumnsPerRequest: number
  /** Partitions (files) one write may touch. */
  maxPartitionsPerWrite: number
  /** Seconds a request body may take to arrive in full (a slowly trickling body is refused). */
  maxBodyReadSeconds: number
}

export const DEFAULT_LIMITS: Readonly<InputLimits> = Object.freeze({
  maxColumnsPerDataset: 1024,
  maxColumnsPerRequest: 1024,
  maxPartitionsPerWrite: 5000,
  maxBodyReadSeconds: 60,
})

/** A request's column count against `maxColumnsPerRequest` (413: the request is too wide). */
export function checkRequestColumns(count: number, limits: Pick<InputLimits, 'maxColumnsPerRequest'> = DEFAULT_LIMITS): void {
  const max = limits.maxColumnsPerRequest
  if (count > max) {
    throw new LimitExceededError(
      413,
      'max_columns_per_request',
      max,
      `the write has more than ${max} columns (limits.max_columns_per_request)`,
    )
  }
}

/** The dataset's column count after a write against `maxColumnsPerDataset` (422). */
export function checkDatasetColumns(
  dataset: number,
  added: number,
  limits: Pick<InputLimits, 'maxColumnsPerDataset'> = DEFAULT_LIMITS,
): void {
  const max = limits.maxColumnsPerDataset
  if (dataset + added > max) {
    throw new LimitExceededError(
      422,
      'max_columns_per_dataset',
      max,
      `the write would give the dataset ${dataset + added} columns (it has ${dataset}, the write adds ${added}), more than ${max} (limits.max_columns_per_dataset)`,
    )
  }
}

/** The number of partitions a write touches against `maxPartitionsPerWrite` (413: split the batch). */
export function checkPartitionCount(count: number, limits: Pick<InputLimits, 'maxPartitionsPerWrite'> = DEFAULT_LIMITS): void {
  const max = limits.maxPartitionsPerWrite
  if (count > max) {
    throw new LimitExceededError(
      413,
      'max_partitions_per_write',
      max,
      `the write touches ${count} partitions, more than ${max} (limits.max_partitions_per_write): split the batch`,
    )
  }
}

/** The `storage.limits` config block (snake_case, defaults applied) as `InputLimits`. */
export function limitsFromConfig(c: {
  max_columns_per_dataset: number
  max_columns_per_request: number
  max_partitions_per_write: number
  max_body_read_seconds: number
}): InputLimits {
  return {
    maxColumnsPerDataset: c.max_columns_per_dataset,
    maxColumnsPerRequest: c.max_columns_per_request,
    maxPartitionsPerWrite: c.max_partitions_per_write,
    maxBodyReadSeconds: c.max_body_read_seconds,
  }
}
