/**
 * The op log in MongoDB: collection `friday_oplog`, one document per record
 * (`{ _id, id, at: Date, op, dataset, outcome, record }`), indexed on `at`. `_id` is an
 * ObjectId derived from the record id (as row ids are: CongoDB takes only ObjectId `_id`s), so
 * storing a record twice is a duplicate-key error that a flush ignores. A flush is one
 * unordered `insertMany` (a record already stored is skipped); a query one sorted `find`;
 * retention one `deleteMany({ at: { $lt: cutoff } })` (not a TTL index: its removal time is
 * the server's choice, and the emulator the tests use has none).
 */

import type { ObjectId } from 'mongodb'
import type { OpLogQuery, OpLogStore, OpRecord } from '../../core/oplog-types.js'
import { countRead, countWritten, type MongoContext } from './context.js'
import { metaId } from './documents.js'
import { mongo } from './mongo-driver.js'

export const OPLOG_COLLECTION = 'friday_oplog'

interface OpDoc {
  _id: ObjectId
  id: string
  at: Date
  op: string
  dataset: string | null
  outcome: string
  record: OpRecord
}

export class MongoOpLogStore implements OpLogStore {
  private indexed: Promise<void> | null = null

  /** @param context the backend's (lazily connected) context: its database and request counters */
  constructor(private readonly context: () => Promise<MongoContext>) {}

  private async collection() {
    const ctx = await this.context()
    const col = ctx.db.collection<OpDoc>(OPLOG_COLLECTION)
    this.indexed ??= (async () => {
      ctx.stats.put++
      await col.createIndex({ at: 1 })
    })().catch((err) => {
      this.indexed = null
      throw err
    })
    await this.indexed
    return { ctx, col }
  }

  async append(records: OpRecord[]): Promise<void> {
    if (records.length === 0) return
    const { ctx, col } = await this.collection()
    const docs: OpDoc[] = records.map((r) => ({
      _id: metaId(OPLOG_COLLECTION, r.id),
      id: r.id,
      at: new Date(r.at),
      op: r.op,
      dataset: r.dataset,
      outcome: r.outcome,
      record: r,
    }))
    ctx.stats.put++
    countWritten(ctx, docs)
    try {
      await col.insertMany(docs, { ordered: false })
    } catch (err) {
      // a retried flush whose first attempt landed: the records are there already
      const errors = err instanceof mongo().MongoBulkWriteError ? [err.writeErrors].flat() : []
      if (errors.length === 0 || !errors.every((e) => e.code === 11000)) throw err
    }
  }

  async query(q: OpLogQuery): Promise<OpRecord[]> {
    if (q.limit <= 0) return []
    const { ctx, col } = await this.collection()
    const filter: Record<string, unknown> = {}
    if (q.since !== undefined || q.until !== undefined) {
      const at: Record<string, Date> = {}
      if (q.since !== undefined) at.$gte = new Date(q.since)
      if (q.until !== undefined) at.$lt = new Date(q.until)
      filter.at = at
    }
    if (q.dataset !== undefined) filter.dataset = q.dataset
    if (q.op !== undefined) filter.op = q.op
    ctx.stats.get++
    const docs = await col.find(filter).sort({ at: -1, id: -1 }).limit(q.limit).toArray()
    countRead(ctx, docs)
    return docs.map((d) => d.record)
  }

  async removeBefore(cutoff: number): Promise<number> {
    const { ctx, col } = await this.collection()
    ctx.stats.delete++
    const res = await col.deleteMany({ at: { $lt: new Date(cutoff) } })
    return res.deletedCount
  }
}
