/**
 * Hostile input on MongoDB (issue 12, items 13 and 15): filters naming what no row can hold (a
 * NUL, a lone surrogate: BSON would send U+FFFD) match nothing, as in the lake; and symbols come
 * back in the contract's order (JavaScript's, as the lake returns them) from read, scan pages,
 * describe and listPartitions.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMongoStorage } from '../src/backends/mongodb/index.js'
import type { PartitionKey } from '../src/core/partitioning.js'
import type { DataStorage, InputRow, Table } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { expectValidation, rowsOf, tms, uniqueDataset, us } from './conformance/storage.case.js'
import { requireMongoOrSkip } from './helpers/mongo.js'

const server = await requireMongoOrSkip()
const dbName = `friday_in_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`
let client: MongoClient | undefined
const cleanups: (() => Promise<void>)[] = []

beforeAll(() => {
  if (server) client = server.client()
})
afterAll(async () => {
  for (const c of cleanups) await c()
  if (client) {
    await client
      .db(dbName)
      .dropDatabase()
      .catch(() => undefined)
    await client.close()
  }
  await server?.stop()
})

function mongo(partitionBy?: PartitionKey[]): DataStorage {
  const storage = createMongoStorage({ client: () => client!, db: dbName, closeClient: false, partitionBy })
  cleanups.push(() => storage.close())
  return storage
}

/** A local Parquet lake in a fresh temp dir: the reference the answers are compared with. */
async function lake(partitionBy: PartitionKey[] = ['symbol', 'date']): Promise<DataStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'friday-mgin-'))
  const storage = createStorage(
    { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir, partition_by: partitionBy } } },
    {},
  )
  cleanups.push(async () => {
    await storage.close()
    await rm(dir, { recursive: true, force: true })
  })
  return storage
}

describe.skipIf(!server)('mongodb: filters naming what no row can hold match nothing (issue 12, item 13)', () => {
  it('a NUL or a lone surrogate in a read/delete symbol filter matches nothing, as in the lake', async () => {
    const storages = [mongo(), await lake()]
    const ds = uniqueDataset('nulf')
    const rows = [
      { symbol: 'A', timestamp: tms(0), close: 1 },
      { symbol: 'X\uFFFD', timestamp: tms(0), close: 2 },
    ]
    const plain = rows.map((r) => ({ ...r, timestamp: us(r.timestamp) }))
    for (const s of storages) {
      await s.write(ds, rows)
      for (const symbols of [['A\u0000'], ['X\uD800'], ['X\uDFFF']]) {
        expect(rowsOf(await s.read(ds, { symbols }))).toEqual([])
        expect(rowsOf(await s.read(ds, { symbols, limit: 5 }))).toEqual([])
        const batches: Table[] = []
        for await (const t of s.scan(ds, { symbols })) batches.push(t)
        expect(batches.reduce((n, t) => n + t.length, 0)).toBe(0)
        expect(await s.listPartitions(ds, { symbols })).toEqual([])
        expect((await s.delete(ds, { symbols })).rowsDeleted).toBe(0)
      }
      expect(rowsOf(await s.read(ds, { symbols: ['A', 'B\u0000', 'X\uD800'] }))).toEqual([plain[0]])
      expect(rowsOf(await s.read(ds))).toEqual(plain)
    }
  })
})

describe.skipIf(!server)('mongodb: rows at and past the 16 MiB document limit (issue 12, item 13)', () => {
  it('17 MB of text in one row is a 400 naming the row and column, nothing stored; a 12 MB row is stored', async () => {
    const storage = mongo()
    const ds = uniqueDataset('big')
    const rows = [
      { symbol: 'A', timestamp: tms(0), note: 'small', other: 'y' },
      { symbol: 'A', timestamp: tms(1), note: 'x'.repeat(17_000_000), other: 'y' },
    ]
    await expectValidation(storage.write(ds, rows), 1, 'note')
    expect(await storage.listDatasets()).not.toContain(ds)
    expect(await storage.describe(ds)).toBeNull()
    // UTF-8 bytes count: 9M x 'é' is 18 MB
    await expectValidation(storage.write(ds, [{ symbol: 'A', timestamp: tms(0), note: 'é'.repeat(9_000_000) }]), 0, 'note')
    expect(await storage.listDatasets()).not.toContain(ds)
    // under the limit: stored whole, the partition's metadata committed (its stats keep a prefix)
    const big = `\u{1F600}${'é'.repeat(6_000_000)}`
    await storage.write(ds, [
      { symbol: 'A', timestamp: tms(0), note: big },
      { symbol: 'A', timestamp: tms(1), note: 'x'.repeat(3_000_000) },
    ])
    const t = await storage.read(ds)
    expect((t.columns.note.values as string[])[0] === big).toBe(true)
    expect((t.columns.note.values as string[])[1].length).toBe(3_000_000)
    expect((await storage.verify(ds)).ok).toBe(true)
    const [part] = await storage.listPartitions(ds)
    const stats = (await storage.getManifest(ds, part.path))?.files[0]?.columns?.note
    expect(typeof stats?.min === 'string' && stats.min.length === 1024 && big.startsWith(stats.min)).toBe(true)
    expect(stats?.max).toBeNull()
  }, 120_000)
})

/** Symbols whose UTF-8 byte order (MongoDB's) differs from the contract's UTF-16 order. */
const SYMBOLS = [
  'A',
  'a',
  'B',
  'b',
  'x',
  'é',
  '\uFF21',
  '\uE000',
  '\u{1F600}',
  '\u{10000}',
  '\u{10FFFF}',
  '\u{10FFFF}A',
  'x\uFF21',
  'x\u{1F600}',
  'x\u{1F600}b',
  'xy',
]

function orderRows(): InputRow[] {
  const rows: InputRow[] = []
  SYMBOLS.forEach((symbol, i) => {
    for (const day of [0, 1]) rows.push({ symbol, timestamp: tms(day, i), close: i * 10 + day })
  })
  return rows.reverse()
}

async function scanAll(s: DataStorage, ds: string, batchSize: number, limit?: number): Promise<unknown[]> {
  const out: unknown[] = []
  for await (const t of s.scan(ds, { batchSize, limit })) {
    expect(t.length).toBeLessThanOrEqual(batchSize)
    out.push(...rowsOf(t))
  }
  return out
}

describe.skipIf(!server)("mongodb: symbols in the contract's order, the lake's (issue 12, item 15)", () => {
  for (const partitionBy of [['symbol', 'date'], ['date']] as PartitionKey[][]) {
    it(`partition_by=[${partitionBy}]: read, limited read, scan pages, describe and listPartitions`, async () => {
      const storage = mongo(partitionBy)
      const local = await lake(partitionBy)
      const ds = uniqueDataset('order')
      for (const s of [storage, local]) await s.write(ds, orderRows())
      const want = rowsOf(await local.read(ds))
      const jsOrder = [...SYMBOLS].sort()
      expect(want.map((r) => r.symbol)).toEqual(jsOrder.flatMap((s) => [s, s]))
      expect(rowsOf(await storage.read(ds))).toEqual(want)
      for (const limit of [1, 5, 17, 32]) expect(rowsOf(await storage.read(ds, { limit }))).toEqual(want.slice(0, limit))
      for (const batchSize of [1, 3, 100]) expect(await scanAll(storage, ds, batchSize)).toEqual(want)
      expect(await scanAll(storage, ds, 4, 15)).toEqual(want.slice(0, 15))
      expect((await storage.describe(ds))?.symbols).toEqual(jsOrder)
      expect((await storage.listPartitions(ds)).map((p) => p.values)).toEqual(
        (await local.listPartitions(ds)).map((p) => p.values),
      )
    })
  }
})
