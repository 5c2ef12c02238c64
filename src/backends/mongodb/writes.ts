/**
 * The row writes of the three modes, in batches of `BATCH` operations. Uniqueness rests on the
 * key-derived `_id`; every write filters on `{ _id, symbol, t }`.
 */

import { type AnyBulkWriteOperation, type Collection, MongoBulkWriteError, type ObjectId } from 'mongodb'
import { DuplicateKeyError, StoreError } from '../../errors.js'
import { formatUs } from '../../table/time.js'
import type { Table } from '../../types.js'
import { BATCH, backoff, countRead, countWritten, type MongoContext } from './context.js'
import { type RowDoc, rowId, toDocs } from './documents.js'

const UPSERT_ATTEMPTS = 5

/** Documents with their `_id`, in table order. */
export function keyedDocs(table: Table): (RowDoc & { _id: ObjectId })[] {
  return toDocs(table).map((d) => ({ ...d, _id: rowId(d.symbol, d.t) }))
}

/**
 * Upserts (replaceOne by key, upsert) in unordered batches. Two writers upserting a new key at
 * once may make one of them fail with E11000 (the other inserted first): those operations are
 * simply retried, and then find the document and replace it.
 */
export async function upsertRows(
  ctx: MongoContext,
  col: Collection<RowDoc>,
  docs: (RowDoc & { _id: ObjectId })[],
): Promise<void> {
  for (let off = 0; off < docs.length; off += BATCH) {
    let pending = docs.slice(off, off + BATCH)
    for (let attempt = 0; pending.length; attempt++) {
      if (attempt > 0) await backoff(attempt)
      const ops: AnyBulkWriteOperation<RowDoc>[] = pending.map(({ _id, ...doc }) => ({
        replaceOne: { filter: { _id, symbol: doc.symbol, t: doc.t }, replacement: doc, upsert: true },
      }))
      ctx.stats.put++
      countWritten(ctx, pending)
      try {
        await col.bulkWrite(ops, { ordered: false })
        pending = []
      } catch (err) {
        const failed = duplicateIndexes(err)
        if (!failed) throw err
        if (attempt + 1 >= UPSERT_ATTEMPTS) {
          const d = pending[failed[0]]
          throw new StoreError(`upsert of ${d.symbol}@${formatUs(d.t)} kept failing with a duplicate _id (key hash collision?)`, {
            symbol: d.symbol,
            timestamp: formatUs(d.t),
          })
        }
        pending = failed.map((i) => pending[i])
      }
    }
  }
}

/** Indexes of the operations that failed with E11000, or null if anything else failed. */
function duplicateIndexes(err: unknown): number[] | null {
  if (!(err instanceof MongoBulkWriteError)) return null
  const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors]
  if (errors.length === 0 || errors.some((e) => e.code !== 11000)) return null
  return errors.map((e) => e.index)
}

/** Throws `DuplicateKeyError` listing the batch keys that already exist. */
export async function assertNoExistingKeys(
  ctx: MongoContext,
  col: Collection<RowDoc>,
  docs: (RowDoc & { _id: ObjectId })[],
): Promise<void> {
  const found: { symbol: string; timestamp: string }[] = []
  let total = 0
  for (let off = 0; off < docs.length; off += BATCH) {
    const ids = docs.slice(off, off + BATCH).map((d) => d._id)
    ctx.stats.get++
    const existing = await col.find({ _id: { $in: ids } }, { projection: { _id: 0, symbol: 1, t: 1 } }).toArray()
    countRead(ctx, existing)
    for (const e of existing) {
      total++
      if (found.length < 100) found.push({ symbol: e.symbol, timestamp: formatUs(Number(e.t)) })
    }
  }
  if (total) throw new DuplicateKeyError(found, total)
}

/**
 * Inserts new rows (append). If a concurrent writer inserted one of the keys since the check,
 * the rows this call inserted are removed again and the batch is rejected: nothing stays.
 */
export async function insertRows(
  ctx: MongoContext,
  col: Collection<RowDoc>,
  docs: (RowDoc & { _id: ObjectId })[],
): Promise<void> {
  const inserted: ObjectId[] = []
  for (let off = 0; off < docs.length; off += BATCH) {
    const chunk = docs.slice(off, off + BATCH)
    ctx.stats.put++
    countWritten(ctx, chunk)
    try {
      await col.insertMany(chunk, { ordered: false })
      for (const d of chunk) inserted.push(d._id)
    } catch (err) {
      const failed = duplicateIndexes(err)
      if (!failed) throw err
      const bad = new Set(failed)
      chunk.forEach((d, i) => {
        if (!bad.has(i)) inserted.push(d._id)
      })
      await deleteIds(ctx, col, inserted)
      const keys = failed.map((i) => ({ symbol: chunk[i].symbol, timestamp: formatUs(chunk[i].t) }))
      throw new DuplicateKeyError(keys, keys.length)
    }
  }
}

async function deleteIds(ctx: MongoContext, col: Collection<RowDoc>, ids: ObjectId[]): Promise<void> {
  for (let off = 0; off < ids.length; off += BATCH) {
    ctx.stats.delete++
    await col.deleteMany({ _id: { $in: ids.slice(off, off + BATCH) } })
  }
}
