/**
 * Reads from a rows collection into columnar Tables. Rows come back in (symbol, timestamp)
 * order as JavaScript compares strings (UTF-16 code units): MongoDB sorts strings by UTF-8
 * bytes (or a collation; CongoDB uses a locale order), so order is fixed client-side.
 */

import type { Collection } from 'mongodb'
import { concat, emptyTable, isSorted, sortTable } from '../../core/table.js'
import type { Schema, Table } from '../../core/types.js'
import { countRead, type MongoContext } from './context.js'
import { projectionOf, type RowDoc, TableBuilder } from './documents.js'
import { isEmptyFilter, type RowFilter, rowQuery } from './query.js'

/** Documents fetched per cursor round trip at most. */
const CURSOR_BATCH = 10_000

/** All matching rows (no limit): one query sorted on the server, re-sorted only if the orders differ. */
export async function readAll(ctx: MongoContext, col: Collection<RowDoc>, f: RowFilter, schema: Schema): Promise<Table> {
  if (isEmptyFilter(f)) return emptyTable(schema)
  ctx.stats.get++
  const cursor = col.find(rowQuery(f), {
    projection: projectionOf(schema),
    sort: { symbol: 1, t: 1 },
    useBigInt64: true,
    batchSize: CURSOR_BATCH,
  })
  const builder = new TableBuilder(schema, 1024)
  const chunk: RowDoc[] = []
  for await (const doc of cursor) {
    builder.push(doc)
    chunk.push(doc)
    if (chunk.length === CURSOR_BATCH) {
      countRead(ctx, chunk)
      chunk.length = 0
    }
  }
  countRead(ctx, chunk)
  const table = builder.build()
  return isSorted(table) ? table : sortTable(table)
}

/**
 * Matching rows as batches of at most `batchSize`, symbol by symbol (sorted client-side, each
 * symbol's rows sorted by the `{ symbol, t }` index), stopping after `limit` rows. Memory: one
 * batch plus one cursor batch.
 */
export async function* scanRows(
  ctx: MongoContext,
  col: Collection<RowDoc>,
  f: RowFilter,
  schema: Schema,
  batchSize: number,
  limit: number,
): AsyncGenerator<Table> {
  if (isEmptyFilter(f) || limit <= 0) return
  ctx.stats.get++
  const symbols = ((await col.distinct('symbol', rowQuery(f))) as string[]).sort()
  let remaining = limit
  const builder = new TableBuilder(schema, Math.min(batchSize, 65_536))
  for (const symbol of symbols) {
    ctx.stats.get++
    const cursor = col.find(rowQuery(f, symbol), {
      projection: projectionOf(schema),
      sort: { t: 1 },
      useBigInt64: true,
      batchSize: Math.min(batchSize, CURSOR_BATCH),
      ...(Number.isFinite(remaining) ? { limit: remaining } : {}),
    })
    const chunk: RowDoc[] = []
    try {
      for await (const doc of cursor) {
        builder.push(doc)
        chunk.push(doc)
        remaining--
        if (builder.length === batchSize) {
          countRead(ctx, chunk)
          chunk.length = 0
          yield builder.build()
        }
        if (remaining <= 0) break
      }
    } finally {
      countRead(ctx, chunk)
      await cursor.close()
    }
    if (remaining <= 0) break
  }
  if (builder.length) yield builder.build()
}

/** The first `limit` rows, via `scanRows`. */
export async function readLimited(
  ctx: MongoContext,
  col: Collection<RowDoc>,
  f: RowFilter,
  schema: Schema,
  limit: number,
): Promise<Table> {
  const parts: Table[] = []
  for await (const t of scanRows(ctx, col, f, schema, Math.min(limit, 65_536), limit)) parts.push(t)
  return parts.length ? concat(parts, schema) : emptyTable(schema)
}
