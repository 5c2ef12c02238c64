/**
 * Input at the edges on MongoDB (issue 12, items 13 and 14): `X\uD800` and `X\uDFFF` in one batch
 * (one key once BSON made both U+FFFD) are a 400 with nothing stored; year 0, Dates far out and
 * times outside the accepted range are a 400 with nothing stored; the first and last accepted
 * microseconds round-trip exactly and rows 1 µs apart stay two rows.
 */

import type { MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMongoStorage } from '../src/backends/mongodb/index.js'
import type { DataStorage, InputRow } from '../src/core/types.js'
import { expectValidation, rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import { requireMongoOrSkip } from './helpers/mongo.js'

const server = await requireMongoOrSkip()
const dbName = `friday_ir_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`
let client: MongoClient | undefined
let storage: DataStorage

beforeAll(() => {
  if (!server) return
  client = server.client()
  storage = createMongoStorage({ client: () => client!, db: dbName, closeClient: false })
})
afterAll(async () => {
  await storage?.close()
  if (client) {
    await client
      .db(dbName)
      .dropDatabase()
      .catch(() => undefined)
    await client.close()
  }
  await server?.stop()
})

/** The accepted time range (README: `[1700-01-01T00:00:00Z, 2200-01-01T00:00:00Z)`), in epoch µs. */
const FIRST_US = Date.UTC(1700, 0, 1) * 1000
const PAST_US = Date.UTC(2200, 0, 1) * 1000

function iso(us: number): string {
  const ms = Math.floor(us / 1000)
  return `${new Date(ms).toISOString().slice(0, -1)}${String(us - ms * 1000).padStart(3, '0')}Z`
}

/** Collections of the test database whose name mentions `ds` (rows, or anything else a write made). */
async function collectionsOf(ds: string): Promise<string[]> {
  const cols = await client!.db(dbName).listCollections({}, { nameOnly: true }).toArray()
  return cols.map((c) => c.name).filter((n) => n.includes(ds))
}

describe.skipIf(!server)('mongodb: times and strings outside what is stored exactly are a 400 (issue 12, items 13, 14)', () => {
  it('X\\uD800 and X\\uDFFF in one batch are a 400 naming the row; nothing stored', async () => {
    const ds = uniqueDataset('sur')
    await expectValidation(
      storage.write(ds, [
        { symbol: 'X', timestamp: tms(0), close: 0 },
        { symbol: 'X\uD800', timestamp: tms(0), close: 1 },
        { symbol: 'X\uDFFF', timestamp: tms(0), close: 2 },
      ]),
      1,
      'symbol',
    )
    expect(await storage.listDatasets()).not.toContain(ds)
    expect(await storage.describe(ds)).toBeNull()
    expect(await collectionsOf(ds)).toEqual([])
  })

  it('year 0, Dates far out and times outside the accepted range are a 400; nothing stored', async () => {
    const ds = uniqueDataset('y0')
    const bad: InputRow[][] = [
      [{ symbol: 'A', timestamp: '0000-01-01T00:00:00Z', close: 1 }],
      [{ symbol: 'A', timestamp: '0001-01-01T00:00:00.000001Z', close: 1 }],
      [{ symbol: 'A', timestamp: new Date('0000-06-01T00:00:00Z'), close: 1 }],
      [{ symbol: 'A', timestamp: new Date(8.64e15), close: 1 }],
      [{ symbol: 'A', timestamp: '9999-12-31T23:59:59.999999Z', close: 1 }],
      [
        { symbol: 'A', timestamp: tms(0), close: 1 },
        { symbol: 'A', timestamp: iso(FIRST_US - 1), close: 1 },
      ],
      [
        { symbol: 'A', timestamp: tms(0), close: 1 },
        { symbol: 'A', timestamp: iso(PAST_US), close: 1 },
      ],
    ]
    for (const rows of bad) {
      await expectValidation(storage.write(ds, rows), rows.length - 1, 'timestamp')
      expect(await storage.describe(ds)).toBeNull()
    }
    expect(await collectionsOf(ds)).toEqual([])
  })

  it('the first and last accepted µs round-trip exactly; rows 1 µs apart stay two rows; 1 µs outside is a 400', async () => {
    const ds = uniqueDataset('edge')
    const times = [FIRST_US, FIRST_US + 1, PAST_US - 2, PAST_US - 1]
    const dates = [FIRST_US, FIRST_US + 1000, PAST_US - 2000, PAST_US - 1000].map((t) => new Date(t / 1000))
    await storage.write(
      ds,
      times.map((t, i) => ({ symbol: 'A', timestamp: iso(t), close: i, at: dates[3 - i] })),
    )
    const t = await storage.read(ds)
    expect(t.length).toBe(4)
    expect([...(t.columns.timestamp.values as Float64Array)]).toEqual(times)
    expect([...(t.columns.at.values as Float64Array)]).toEqual([...dates].reverse().map((d) => d.getTime() * 1000))
    const d = await storage.describe(ds)
    expect([d?.firstTimestamp, d?.lastTimestamp]).toEqual(['1700-01-01T00:00:00.000Z', '2199-12-31T23:59:59.999999Z'])
    await storage.write(ds, [{ symbol: 'A', timestamp: iso(FIRST_US + 1), close: 9 }])
    expect(rowsOf(await storage.read(ds, { start: iso(FIRST_US + 1), end: iso(FIRST_US + 2) })).map((r) => r.close)).toEqual([9])
    expect((await storage.read(ds)).length).toBe(4)
    expect((await storage.verify(ds)).ok).toBe(true)
    for (const outside of [FIRST_US - 1, PAST_US]) {
      await expectValidation(storage.write(ds, [{ symbol: 'B', timestamp: iso(outside), close: 1 }]), 0, 'timestamp')
    }
    for (const outside of [FIRST_US - 1000, PAST_US]) {
      await expectValidation(
        storage.write(ds, [{ symbol: 'B', timestamp: iso(FIRST_US), at: new Date(outside / 1000) }]),
        0,
        'at',
      )
    }
    expect((await storage.read(ds)).length).toBe(4)
    expect((await storage.describe(ds))?.symbols).toEqual(['A'])
  })
})
