/**
 * The storage conformance suite on the MongoDB backend: against the real MongoDB at
 * `MONGODB_URL` when set, else against CongoDB started in a child process (no case needs
 * skipping there: the backend avoids the emulator's gaps, see README). Plus MongoDB-specific checks:
 * document layout, exact µs and int64, and concurrent writers resting on `_id`.
 */

import type { MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMongoStorage, mongodbFactory } from '../src/backends/mongodb/index.js'
import { parseConfig } from '../src/config/load.js'
import { DuplicateKeyError } from '../src/core/errors.js'
import { createDataStorage } from '../src/core/front.js'
import type { PartitionKey } from '../src/core/partitioning.js'
import type { DataStorage, InputRow, Table } from '../src/core/types.js'
import { bars, rejection, rowsOf, testStorage, tms, uniqueDataset, us } from './conformance/storage.case.js'
import { configuredStorage } from './helpers/configured.js'
import { requireMongoOrSkip } from './helpers/mongo.js'

const server = await requireMongoOrSkip()
const dbName = `friday_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`
let client: MongoClient | undefined

beforeAll(async () => {
  if (server) client = server.client()
})
afterAll(async () => {
  if (client) {
    await client
      .db(dbName)
      .dropDatabase()
      .catch(() => undefined)
    await client.close()
  }
  await server?.stop()
})

function mongoStorage(partitionBy?: PartitionKey[]): DataStorage {
  return createMongoStorage({ client: () => client!, db: dbName, closeClient: false, partitionBy })
}

for (const partitionBy of [['symbol', 'date'], ['date']] as PartitionKey[][]) {
  testStorage({
    name: `mongodb (${server?.kind ?? 'absent'}) partition_by=[${partitionBy.join(',')}]`,
    create: async () => mongoStorage(partitionBy),
    skip: server ? false : 'no MongoDB server (set MONGODB_URL, or CongoDB failed to start)',
  })
}

// The same suite through the config-driven factory: read cache and op log in front of the backend.
testStorage({
  name: `mongodb (${server?.kind ?? 'absent'}) through createStorageWith (read cache and op log on)`,
  create: async () =>
    configuredStorage('mongodb', (c) => mongodbFactory(c, { client: client! }), {
      mongodb: { url: server!.url, database: dbName },
    }),
  skip: server ? false : 'no MongoDB server (set MONGODB_URL, or CongoDB failed to start)',
})

describe.skipIf(!server)('mongodb backend specifics', () => {
  let storage: DataStorage
  beforeAll(() => {
    storage = mongoStorage()
  })
  afterAll(async () => {
    await storage?.close()
  })

  it('stores one document per key in a collection per dataset, with Date + exact µs', async () => {
    const ds = uniqueDataset('layout')
    await storage.write(ds, [{ symbol: 'AAPL', timestamp: '2024-01-02T09:30:00.123456Z', close: 1.5, volume: 7n }])
    await storage.write(ds, [{ symbol: 'AAPL', timestamp: '2024-01-02T09:30:00.123456Z', close: 2.5, volume: 8n }])
    const docs = await client!.db(dbName).collection(`ds_${ds}`).find({}, { useBigInt64: true }).toArray()
    expect(docs).toHaveLength(1)
    const d = docs[0]
    expect(d.symbol).toBe('AAPL')
    expect(d.t).toBe(1704187800123456)
    expect(d.timestamp).toBeInstanceOf(Date)
    expect((d.timestamp as Date).toISOString()).toBe('2024-01-02T09:30:00.123Z')
    expect(d.v.close).toBe(2.5)
    expect(BigInt(d.v.volume)).toBe(8n)
    const indexes = await client!.db(dbName).collection(`ds_${ds}`).indexes()
    expect(indexes.some((i) => JSON.stringify(i.key) === JSON.stringify({ symbol: 1, t: 1 }))).toBe(true)
  })

  it('keeps microseconds exact in the key and in timestamp columns', async () => {
    const ds = uniqueDataset('micros')
    const times = [1704187800000001, 1704187800999999, 1704187800123456, -1_000_001, 0]
    const table: Table = {
      length: times.length,
      schema: [
        { name: 'symbol', type: 'string' },
        { name: 'timestamp', type: 'timestamp' },
        { name: 'filled_at', type: 'timestamp' },
      ],
      columns: {
        symbol: { type: 'string', values: times.map(() => 'X') },
        timestamp: { type: 'timestamp', values: Float64Array.from(times) },
        filled_at: { type: 'timestamp', values: Float64Array.from(times.map((t, i) => (i === 4 ? Number.NaN : t + 1))) },
      },
    }
    await storage.write(ds, table)
    const back = await storage.read(ds)
    const sorted = [...times].sort((a, b) => a - b)
    expect(Array.from(back.columns.timestamp.values as Float64Array)).toEqual(sorted)
    const filled = rowsOf(back).map((r) => r.filled_at)
    expect(filled).toEqual(sorted.map((t) => (t === 0 ? null : t + 1)))
    // a range bound one microsecond apart
    const one = await storage.read(ds, { start: '2024-01-02T09:30:00.000001Z', end: '2024-01-02T09:30:00.123457Z' })
    expect(Array.from(one.columns.timestamp.values as Float64Array)).toEqual([1704187800000001, 1704187800123456])
  })

  it('keeps int64 exact beyond 2^53, stored as BSON Long', async () => {
    const ds = uniqueDataset('int64')
    const values = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -(2n ** 53n) - 1n, 0n]
    await storage.write(
      ds,
      values.map((v, i) => ({ symbol: 'X', timestamp: tms(0, i), qty: v })),
    )
    const t = await storage.read(ds)
    expect(Array.from(t.columns.qty.values as BigInt64Array)).toEqual(values)
    const raw = await client!
      .db(dbName)
      .collection(`ds_${ds}`)
      .find({}, { useBigInt64: true, sort: { t: 1 } })
      .toArray()
    expect(raw[0].v.qty).toBe(2n ** 63n - 1n) // came back as int64 (bigint), not a rounded double
  })

  it('8 concurrent writers (separate storages) lose nothing and duplicate nothing', async () => {
    const ds = uniqueDataset('conc8')
    const writers = Array.from({ length: 8 }, () => mongoStorage())
    try {
      // overlapping upserts: every key is written by several writers
      const batches = writers.map((_, w) => bars(['AAPL', 'MSFT'], [0, 1], 12).filter((_, i) => (i + w) % 3 !== 0))
      const results = await Promise.all(writers.map((s, w) => s.write(ds, batches[w])))
      expect(results.map((r) => r.rowsWritten)).toEqual(batches.map((b) => b.length))
      const all = rowsOf(await storage.read(ds))
      expect(all).toHaveLength(2 * 2 * 12)
      expect(new Set(all.map((r) => `${r.symbol}@${r.timestamp}`)).size).toBe(all.length)
      // appends of the same new keys: exactly one writer wins, the others get DuplicateKeyError
      const fresh = (w: number): InputRow[] => [0, 1, 2].map((m) => ({ symbol: 'GOOG', timestamp: tms(2, m), close: w }))
      const outcomes = await Promise.allSettled(writers.map((s, w) => s.write(ds, fresh(w), { mode: 'append' })))
      const won = outcomes.flatMap((o, w) => (o.status === 'fulfilled' ? [w] : []))
      expect(won).toHaveLength(1)
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(DuplicateKeyError)
      const goog = rowsOf(await storage.read(ds, { symbols: ['GOOG'] }))
      expect(goog.map((r) => r.close)).toEqual([won[0], won[0], won[0]])
      expect(goog.map((r) => r.timestamp)).toEqual([0, 1, 2].map((m) => us(tms(2, m))))
      // metadata agrees with the rows
      expect((await storage.describe(ds))?.rows).toBe(2 * 2 * 12 + 3)
      const report = await storage.verify(ds)
      expect(report.problems).toEqual([])
    } finally {
      await Promise.all(writers.map((s) => s.close()))
    }
  })

  it('append of an existing key names it and writes nothing', async () => {
    const ds = uniqueDataset('appkey')
    await storage.write(ds, bars(['AAPL'], [0], 3))
    const err = await rejection(
      storage.write(
        ds,
        [
          { symbol: 'AAPL', timestamp: tms(0, 9), close: 1 },
          { symbol: 'AAPL', timestamp: tms(0, 1), close: 1 },
        ],
        { mode: 'append' },
      ),
    )
    expect(err).toBeInstanceOf(DuplicateKeyError)
    expect(err.details.keys).toEqual([{ symbol: 'AAPL', timestamp: new Date(tms(0, 1)).toISOString() }])
    expect((await storage.read(ds)).length).toBe(3)
  })

  it('verify() notices rows changed behind its back', async () => {
    const ds = uniqueDataset('tamper')
    await storage.write(ds, bars(['AAPL'], [0, 1], 3))
    expect((await storage.verify(ds)).ok).toBe(true)
    await client!
      .db(dbName)
      .collection(`ds_${ds}`)
      .updateOne({ symbol: 'AAPL', t: us(tms(1, 0)) }, { $set: { 'v.close': 999 } })
    const report = await storage.verify(ds)
    expect(report.ok).toBe(false)
    expect(report.problems.map((p) => p.problem)).toEqual(['checksum-mismatch'])
    expect(report.problems[0].partition).toBe('symbol=AAPL/date=2024-01-03')
  })

  it('requestStats counts driver operations by kind', async () => {
    const s = mongoStorage()
    try {
      const ds = uniqueDataset('stats')
      await s.write(ds, bars(['AAPL'], [0], 3))
      const a = s.requestStats()
      expect(a.put).toBeGreaterThan(0)
      expect(a.get).toBeGreaterThan(0)
      await s.read(ds)
      const b = s.requestStats()
      expect(b.get).toBeGreaterThan(a.get)
      expect(b.bytesRead).toBeGreaterThan(a.bytesRead)
      expect(b.put).toBe(a.put)
      await s.delete(ds, { symbols: ['AAPL'] })
      expect(s.requestStats().delete).toBe(b.delete + 1)
    } finally {
      await s.close()
    }
  })

  it('mongodbFactory builds the backend from the config and owns its client', async () => {
    const sep = server!.url.includes('?') ? '&' : '?'
    // CongoDB: see test/helpers/mongo.ts for why monitoring polls
    const url = server!.kind === 'congodb' ? `${server!.url}${sep}directConnection=true&serverMonitoringMode=poll` : server!.url
    const s = createDataStorage(
      mongodbFactory(parseConfig({ storage: { default_backend: 'mongodb', mongodb: { url, database: dbName } } }, {})),
    )
    try {
      expect(s.backend).toBe('mongodb')
      const ds = uniqueDataset('factory')
      await s.write(ds, bars(['AAPL'], [0], 2))
      expect((await s.read(ds)).length).toBe(2)
      expect(await s.listDatasets()).toContain(ds)
    } finally {
      await s.close()
    }
    expect(() => mongodbFactory(parseConfig({}, {}))).toThrow(/storage\.mongodb\.url/)
  })

  it('a failed client factory is retried at the next call', async () => {
    let calls = 0
    const s = createMongoStorage({
      db: dbName,
      closeClient: false,
      client: () => {
        calls++
        if (calls === 1) throw new Error('no route to host')
        return client!
      },
    })
    try {
      expect((await rejection(s.listDatasets())).message).toBe('no route to host')
      expect(Array.isArray(await s.listDatasets())).toBe(true)
      expect(calls).toBe(2)
    } finally {
      await s.close()
    }
  })

  it('rejects bad options at creation with a ConfigError', () => {
    expect(() => createMongoStorage({ client: () => client!, db: 'a/b' })).toThrow(/db/)
    expect(() => createMongoStorage({ client: undefined as never, db: 'x' })).toThrow(/client/)
  })
})
