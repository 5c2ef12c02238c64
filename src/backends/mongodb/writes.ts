/**
 * The row writes of the three modes, in batches of `BATCH` operations. Uniqueness rests on the
 * key-derived `_id`; every write filters on `{ _id, symbol, t }`, and every delete that removes
 * rows it has seen matches their write stamp too (`{ _id, w }`, see documents.ts).
 *
 * None of them needs a transaction to be safe when the process dies at any point:
 * - upsert: each key holds its old or its new document;
 * - replace: the batch is upserted first, then the range's other keys are deleted, so a key is
 *   never missing both its old and its new value and readers never see the range empty;
 * - append: rows already holding exactly the batch's values count as written (the retry of a
 *   write that landed); only a key with different values is a conflict.
 */

import type { AnyBulkWriteOperation, Collection, ObjectId } from 'mongodb'
import { CommitInDoubtError, DuplicateKeyError, StorageError, StoreError } from '../../core/errors.js'
import { formatUs } from '../../core/time.js'
import type { Table } from '../../core/types.js'
import { BATCH, backoff, countRead, countWritten, type MongoContext } from './context.js'
import { type RowDoc, rowId, toDocs } from './documents.js'
import { mongo } from './mongo-driver.js'
import { type RowFilter, rowQuery } from './query.js'

const UPSERT_ATTEMPTS = 5

export type KeyedDoc = RowDoc & { _id: ObjectId; w: ObjectId }

/** Documents with their `_id` and the write stamp `w`, in table order. */
export function keyedDocs(table: Table, stamp: ObjectId): KeyedDoc[] {
  return toDocs(table).map((d) => ({ ...d, _id: rowId(d.symbol, d.t), w: stamp }))
}

/**
 * Upserts (replaceOne by key, upsert) in unordered batches. Two writers upserting a new key at
 * once may make one of them fail with E11000 (the other inserted first): those operations are
 * simply retried, and then find the document and replace it.
 */
export async function upsertRows(ctx: MongoContext, col: Collection<RowDoc>, docs: KeyedDoc[]): Promise<void> {
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

/**
 * `replace` over the range `f`: upserts the batch, then deletes the range's documents whose key
 * is not in the batch, each only in the version seen (`{ _id, w }`): a key written by someone
 * else after that look is theirs, not part of what this replace removes.
 */
export async function replaceRange(ctx: MongoContext, col: Collection<RowDoc>, docs: KeyedDoc[], f: RowFilter): Promise<void> {
  await upsertRows(ctx, col, docs)
  const keep = new Set(docs.map((d) => d._id.toHexString()))
  const stale: { _id: ObjectId; w: ObjectId | null }[] = []
  ctx.stats.get++
  const cursor = col.find(rowQuery(f), { projection: { _id: 1, w: 1 }, batchSize: 10_000 })
  for await (const d of cursor) {
    if (!keep.has(d._id!.toHexString())) stale.push({ _id: d._id!, w: d.w ?? null })
  }
  await deleteExact(ctx, col, stale)
}

/** Deletes documents matching `{ _id, w }` exactly (`w: null`: documents without a stamp); returns how many went. */
export async function deleteExact(
  ctx: MongoContext,
  col: Collection<RowDoc>,
  keys: { _id: ObjectId; w: ObjectId | null }[],
): Promise<number> {
  let deleted = 0
  for (let off = 0; off < keys.length; off += BATCH) {
    const ops: AnyBulkWriteOperation<RowDoc>[] = keys
      .slice(off, off + BATCH)
      .map(({ _id, w }) => ({ deleteOne: { filter: { _id, w } as never } }))
    ctx.stats.delete++
    const res = await col.bulkWrite(ops, { ordered: false })
    deleted += res.deletedCount
  }
  return deleted
}

/** Indexes of the operations that failed with E11000, or null if anything else failed. */
function duplicateIndexes(err: unknown): number[] | null {
  if (!(err instanceof mongo().MongoBulkWriteError)) return null
  const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors]
  if (errors.length === 0 || errors.some((e) => e.code !== 11000)) return null
  return errors.map((e) => e.index)
}

/**
 * `append`, first step (reads only): keys already stored with exactly the batch's values count
 * as written (a retry of an append that landed, or the same rows from someone else); any other
 * existing key makes the whole batch fail with `DuplicateKeyError` naming the keys. Returns the
 * documents still to insert (`insertRows`).
 */
export async function rowsToAppend(ctx: MongoContext, col: Collection<RowDoc>, docs: KeyedDoc[]): Promise<KeyedDoc[]> {
  const present = await conflictsWith(ctx, col, docs)
  return docs.filter((d) => !present.has(d._id.toHexString()))
}

/**
 * Looks up the batch's keys: throws `DuplicateKeyError` listing those stored with other values;
 * returns the ids (hex) of those stored with the same values.
 */
async function conflictsWith(ctx: MongoContext, col: Collection<RowDoc>, docs: KeyedDoc[]): Promise<Set<string>> {
  const same = new Set<string>()
  const found: { symbol: string; timestamp: string }[] = []
  let total = 0
  for (let off = 0; off < docs.length; off += BATCH) {
    const chunk = docs.slice(off, off + BATCH)
    const byId = new Map(chunk.map((d) => [d._id.toHexString(), d]))
    ctx.stats.get++
    const existing = await col
      .find({ _id: { $in: chunk.map((d) => d._id) } }, { projection: { _id: 1, symbol: 1, t: 1, v: 1, r: 1 }, useBigInt64: true })
      .toArray()
    countRead(ctx, existing)
    for (const e of existing) {
      const id = e._id!.toHexString()
      const mine = byId.get(id)
      if (mine && sameRow(e, mine)) {
        same.add(id)
        continue
      }
      total++
      if (found.length < 100) found.push({ symbol: e.symbol, timestamp: formatUs(Number(e.t)) })
    }
  }
  if (total) throw new DuplicateKeyError(found, total)
  return same
}

/**
 * Inserts new rows. If a concurrent writer inserted one of the keys since the check with other
 * values, the rows this call inserted (its stamp) are removed again and the batch is rejected.
 */
export async function insertRows(ctx: MongoContext, col: Collection<RowDoc>, docs: KeyedDoc[]): Promise<void> {
  const inserted: KeyedDoc[] = []
  for (let off = 0; off < docs.length; off += BATCH) {
    const chunk = docs.slice(off, off + BATCH)
    ctx.stats.put++
    countWritten(ctx, chunk)
    try {
      await col.insertMany(chunk, { ordered: false })
      inserted.push(...chunk)
    } catch (err) {
      const failed = duplicateIndexes(err)
      if (!failed) throw err
      const bad = new Set(failed)
      chunk.forEach((d, i) => {
        if (!bad.has(i)) inserted.push(d)
      })
      try {
        await conflictsWith(
          ctx,
          col,
          failed.map((i) => chunk[i]),
        )
      } catch (conflict) {
        await deleteExact(
          ctx,
          col,
          inserted.map((d) => ({ _id: d._id, w: d.w })),
        )
        throw conflict
      }
    }
  }
}

/** Whether a stored document holds exactly the values of a batch document (same key assumed). */
export function sameRow(stored: RowDoc, doc: RowDoc): boolean {
  return (
    stored.symbol === doc.symbol &&
    Number(stored.t) === doc.t &&
    sameFields(stored.v ?? {}, doc.v ?? {}) &&
    sameFields(stored.r ?? {}, doc.r ?? {})
  )
}

function sameFields(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a).filter((k) => a[k] !== undefined && a[k] !== null)
  const kb = Object.keys(b).filter((k) => b[k] !== undefined && b[k] !== null)
  if (ka.length !== kb.length) return false
  return kb.every((k) => sameValue(a[k], b[k]))
}

function sameValue(x: unknown, y: unknown): boolean {
  if (y instanceof Date) return x instanceof Date && x.getTime() === y.getTime()
  if (typeof y === 'bigint')
    return typeof x === 'bigint' ? x === y : typeof x === 'number' && Number.isInteger(x) && BigInt(x) === y
  if (typeof y === 'number') return typeof x === 'number' && x === y
  return x === y
}

/**
 * The error of a write that failed after row commands were sent (connection dropped, timeout,
 * server error mid-batch): `CommitInDoubtError` (503, `details.outcome: 'unknown'`), since the
 * rows may have been written, partly or wholly. Re-sending the same batch is safe: upsert and
 * replace are idempotent, and an append whose keys already hold the same values succeeds.
 * Errors of this code (`StorageError`s: duplicate keys, conflicts) pass through.
 */
export function inDoubt(err: unknown, ds: string, mode: string, rows: number): unknown {
  if (err instanceof StorageError) return err
  return new CommitInDoubtError(`${mode} of ${rows} row(s) into dataset ${ds}`, err, {
    dataset: ds,
    mode,
    rows,
    outcome: 'unknown',
  })
}
