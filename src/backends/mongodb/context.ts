/** Shared state of one MongoStorage: the database handle, collection names and request counts. */

import type { Db } from 'mongodb'
import type { StoreRequestStats } from '../../core/types.js'
import { mongo } from './mongo-driver.js'

/** One document per dataset: name, partitioning and schema (the source of truth for column types). */
export const DATASETS = 'friday_datasets'
/** One document per partition: version, row count, time range, checksum of its rows. */
export const PARTITIONS = 'friday_partitions'
/** The rows of a dataset: one collection per dataset. */
export const rowsCollection = (dataset: string): string => `ds_${dataset}`

/** Operations per `bulkWrite` / `insertMany` / `$in` lookup. */
export const BATCH = 1000

export interface MongoContext {
  db: Db
  stats: StoreRequestStats
}

export function emptyStats(): StoreRequestStats {
  return { get: 0, put: 0, head: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 }
}

/** Adds the BSON size of documents read to `bytesRead`. */
export function countRead(ctx: MongoContext, docs: object[]): void {
  let n = 0
  const { BSON } = mongo()
  for (const d of docs) n += BSON.calculateObjectSize(d)
  ctx.stats.bytesRead += n
}

/** Adds the BSON size of documents sent to `bytesWritten`. */
export function countWritten(ctx: MongoContext, docs: object[]): void {
  let n = 0
  const { BSON } = mongo()
  for (const d of docs) n += BSON.calculateObjectSize(d)
  ctx.stats.bytesWritten += n
}

/** MongoDB's duplicate-key error (E11000), from a single write. */
export function isDuplicateKey(err: unknown): boolean {
  return err instanceof mongo().MongoServerError && err.code === 11000
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Jittered backoff for optimistic-concurrency retries: ~2 ms doubling to ~100 ms. */
export function backoff(attempt: number): Promise<void> {
  return sleep(Math.random() * Math.min(100, 2 * 2 ** attempt))
}
