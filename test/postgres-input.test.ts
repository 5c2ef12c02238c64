/**
 * Hostile input on PostgreSQL (issue 12, items 13 and 15), through node-postgres and the Neon
 * driver: a system column name is a 400 before anything is written, filters naming what no row
 * can hold (a NUL, a lone surrogate) match nothing as in the lake,
 * and symbols come back in the contract's order (JavaScript's, as the lake returns them) from read,
 * scan pages, describe and listPartitions.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Pool as NeonPool } from '@neondatabase/serverless'
import { afterAll, describe, expect, it } from 'vitest'
import ws from 'ws'
import { createNeonPool, createPostgresStorage, type PgPoolLike } from '../src/backends/postgres/index.js'
import { createPgPool } from '../src/backends/postgres/node.js'
import type { PartitionKey } from '../src/core/partitioning.js'
import { isSorted } from '../src/core/table.js'
import type { DataStorage, InputRow, Table } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { expectValidation, rowsOf, tms, uniqueDataset, us } from './conformance/storage.case.js'
import { json, postJson, type TestLake, testApp } from './helpers/http.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { startWsRelay, type WsRelay } from './helpers/ws-relay.js'

const server = await requirePostgresOrSkip()
const relay: WsRelay | null = server ? await startWsRelay() : null
const RUN = Math.random().toString(36).slice(2, 8)
const schemas: string[] = []

const pgPool = server ? createPgPool(server.url, { max: 4 }) : null
const neon: NeonPool | null =
  server && relay
    ? createNeonPool(server.url, {
        max: 4,
        webSocketConstructor: ws,
        wsProxy: (host, p) => `127.0.0.1:${relay.port}/v1?address=${host}:${p}`,
        useSecureWebSocket: false,
        pipelineConnect: false,
      })
    : null
const lakes: TestLake[] = []

afterAll(async () => {
  for (const l of lakes) await l.cleanup()
  if (pgPool) {
    for (const s of schemas) await pgPool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
    await pgPool.end()
  }
  await neon?.end()
  await relay?.close()
  await server?.stop()
})

const DRIVERS = ['pg', 'neon'] as const

function open(
  driver: (typeof DRIVERS)[number],
  partitionBy?: PartitionKey[],
  bulkRows?: number,
): { storage: DataStorage; schema: string } {
  const schema = `friday_in_${RUN}_${schemas.length}`
  schemas.push(schema)
  const pool = (driver === 'pg' ? pgPool : neon) as unknown as PgPoolLike
  return { storage: createPostgresStorage({ pool, schema, partitionBy, bulkRows }), schema }
}

/** A local Parquet lake in a fresh temp dir: the reference the answers are compared with. */
async function lake(partitionBy: PartitionKey[] = ['symbol', 'date']): Promise<DataStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'friday-pgin-'))
  const storage = createStorage(
    { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir, partition_by: partitionBy } } },
    {},
  )
  lakes.push({
    name: 'local',
    storage,
    cleanup: async () => {
      await storage.close()
      await rm(dir, { recursive: true, force: true })
    },
  })
  return storage
}

/** Rows of every schema this test file's catalog holds for `ds` (none when nothing was stored). */
async function catalogRows(schema: string, ds: string): Promise<number> {
  const res = await pgPool!.query(`SELECT count(*)::int AS n FROM "${schema}".friday_datasets WHERE name = $1`, [ds])
  return res.rows[0].n
}

/** A row as `rowsOf` gives it back (epoch-ms timestamp -> µs). */
function plain(row: { timestamp: number } & Record<string, unknown>): Record<string, unknown> {
  return { ...row, timestamp: us(row.timestamp) }
}

describe.skipIf(!server)(
  'postgres: input PostgreSQL would refuse is a 400 before anything is written (issue 12, item 13)',
  () => {
    for (const name of ['xmin', 'xmax', 'cmin', 'cmax', 'ctid', 'tableoid']) {
      it(`a column named ${name}: 400 naming it, no dataset, no schema stored; an existing dataset keeps its schema`, async () => {
        const { storage, schema } = open('pg')
        const ds = uniqueDataset('sys')
        await expectValidation(storage.write(ds, [{ symbol: 'A', timestamp: tms(0), close: 1, [name]: 2 }]), undefined, name)
        expect(await storage.listDatasets()).toEqual([])
        expect(await catalogRows(schema, ds)).toBe(0)
        await storage.write(ds, [{ symbol: 'A', timestamp: tms(0), close: 1 }])
        await expectValidation(storage.write(ds, { symbol: ['A'], timestamp: [tms(1)], [name]: [3] }), undefined, name)
        expect((await storage.describe(ds))?.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp', 'close'])
        expect(rowsOf(await storage.read(ds))).toEqual([{ symbol: 'A', timestamp: us(tms(0)), close: 1 }])
      })
    }

    it('over HTTP a system column name is a 400 (not a 502) and stores nothing; other case is a plain column', async () => {
      const { storage } = open('pg')
      const app = testApp(storage)
      const res = await postJson(app, '/v1/datasets/sysh/rows', [{ symbol: 'A', timestamp: tms(0), ctid: 1 }])
      expect(res.status).toBe(400)
      const body = await json(res)
      expect(body.error.code).toBe('validation_error')
      expect(JSON.stringify(body.error)).toContain('ctid')
      expect(await storage.listDatasets()).toEqual([])
      const ok = await postJson(app, '/v1/datasets/sysh/rows', [{ symbol: 'A', timestamp: tms(0), XMIN: 1 }])
      expect(ok.status).toBe(200)
      expect(rowsOf(await storage.read('sysh'))).toEqual([{ symbol: 'A', timestamp: us(tms(0)), XMIN: 1 }])
    })

    it('a row too wide for a PostgreSQL page (1,020 float64 columns, within the column limits) is a 400; nothing stored', async () => {
      const { storage, schema } = open('pg')
      const ds = uniqueDataset('wide')
      const wide: Record<string, unknown> = { symbol: 'A', timestamp: tms(0) }
      for (let i = 0; i < 1020; i++) wide[`c${i}`] = i + 0.5
      const err = await expectValidation(storage.write(ds, [wide]), undefined, 'columns')
      expect(err.message).toContain('too wide')
      expect(await storage.listDatasets()).toEqual([])
      expect(await catalogRows(schema, ds)).toBe(0)
      // an existing dataset: the columns are not added, its rows stay
      await storage.write(ds, [{ symbol: 'A', timestamp: tms(0), close: 1 }])
      await expectValidation(storage.write(ds, [{ ...wide, timestamp: tms(1) }]), undefined, 'columns')
      expect((await storage.describe(ds))?.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp', 'close'])
      expect(rowsOf(await storage.read(ds))).toEqual([plain({ symbol: 'A', timestamp: tms(0), close: 1 })])
      // the same columns mostly null fit: PostgreSQL stores no bytes for a null
      const sparse: Record<string, unknown> = { ...wide, timestamp: tms(2) }
      for (let i = 10; i < 1020; i++) sparse[`c${i}`] = null
      await storage.write(ds, [sparse])
      expect((await storage.read(ds, { columns: ['c5'] })).length).toBe(2)
    })

    it('a NUL or a lone surrogate in a read/delete symbol filter matches nothing, as in the lake (no 502)', async () => {
      const { storage } = open('pg')
      const local = await lake()
      const ds = uniqueDataset('nulf')
      const rows = [
        { symbol: 'A', timestamp: tms(0), close: 1 },
        { symbol: 'X\uFFFD', timestamp: tms(0), close: 2 },
      ]
      for (const s of [storage, local]) {
        await s.write(ds, rows)
        for (const symbols of [['A\u0000'], ['\u0000'], ['X\uD800'], ['X\uDFFF']]) {
          expect(rowsOf(await s.read(ds, { symbols }))).toEqual([])
          expect(rowsOf(await s.read(ds, { symbols, limit: 5 }))).toEqual([])
          const batches: Table[] = []
          for await (const t of s.scan(ds, { symbols })) batches.push(t)
          expect(batches.reduce((n, t) => n + t.length, 0)).toBe(0)
          expect(await s.listPartitions(ds, { symbols })).toEqual([])
          expect((await s.delete(ds, { symbols })).rowsDeleted).toBe(0)
        }
        expect(rowsOf(await s.read(ds, { symbols: ['A', 'B\u0000', 'X\uD800'] }))).toEqual([plain(rows[0])])
        expect(rowsOf(await s.read(ds))).toEqual(rows.map(plain))
      }
    })
  },
)

/** Symbols whose code point order (PostgreSQL "C") differs from the contract's UTF-16 order. */
const SYMBOLS = [
  'A',
  'a',
  'B',
  'b',
  'Z',
  'x',
  'é',
  '\uFF21', // FULLWIDTH A: after every supplementary character in UTF-16 order
  '\uE000',
  '\u{1F600}', // U+1F600: a surrogate pair, before U+E000-U+FFFF in UTF-16 order
  '\u{10000}',
  '\u{10FFFF}',
  '\u{10FFFF}A',
  '\u{10FFFF}\u{10000}',
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

describe.skipIf(!server)("postgres: symbols in the contract's order, the lake's (issue 12, item 15)", () => {
  for (const driver of DRIVERS) {
    for (const partitionBy of [['symbol', 'date'], ['date']] as PartitionKey[][]) {
      it(`${driver}, partition_by=[${partitionBy}]: read, limited read, scan pages, describe and listPartitions`, async () => {
        const { storage } = open(driver, partitionBy)
        const local = await lake(partitionBy)
        const ds = uniqueDataset('order')
        for (const s of [storage, local]) await s.write(ds, orderRows())
        const want = rowsOf(await local.read(ds))
        // the lake's order is JavaScript's: symbols ascending by UTF-16 code units, then time
        const jsOrder = [...SYMBOLS].sort()
        expect(want.map((r) => r.symbol)).toEqual(jsOrder.flatMap((s) => [s, s]))
        expect(jsOrder.indexOf('\u{1F600}')).toBeLessThan(jsOrder.indexOf('\uFF21'))

        expect(rowsOf(await storage.read(ds))).toEqual(want)
        for (const limit of [1, 5, 17, 22, 40]) expect(rowsOf(await storage.read(ds, { limit }))).toEqual(want.slice(0, limit))
        const some = ['\uFF21', 'x\u{1F600}', 'x\uFF21', 'A', '\u{10FFFF}A']
        expect(rowsOf(await storage.read(ds, { symbols: some }))).toEqual(rowsOf(await local.read(ds, { symbols: some })))
        expect(rowsOf(await storage.read(ds, { symbols: some, limit: 3 }))).toEqual(
          rowsOf(await local.read(ds, { symbols: some, limit: 3 })),
        )
        for (const batchSize of [1, 3, 7, 100]) expect(await scanAll(storage, ds, batchSize)).toEqual(want)
        expect(await scanAll(storage, ds, 4, 15)).toEqual(want.slice(0, 15))

        const d = await storage.describe(ds)
        expect(d?.symbols).toEqual(jsOrder)
        expect(d?.symbols).toEqual((await local.describe(ds))?.symbols)
        const parts = (await storage.listPartitions(ds)).map((p) => p.values)
        expect(parts).toEqual((await local.listPartitions(ds)).map((p) => p.values))
      })
    }
  }
  it("pg: each retention archive holds its rows in the contract's order", async () => {
    const schema = `friday_in_${RUN}_${schemas.length}`
    schemas.push(schema)
    const storage = createPostgresStorage({ pool: pgPool as unknown as PgPoolLike, schema, partitionBy: ['date'] })
    const ds = uniqueDataset('arch')
    await storage.write(ds, orderRows())
    const archived: Table[] = []
    const archive = { put: async (_name: string, t: Table) => void archived.push(t), remove: async () => undefined }
    const res = await storage.expireRows(ds, { cutoff: tms(5), archive, batchSize: 7 })
    expect(res.rowsExpired).toBe(SYMBOLS.length * 2)
    const got = archived.flatMap((t) => rowsOf(t))
    expect(got.map((r) => r.symbol).sort()).toEqual([...SYMBOLS].sort().flatMap((s) => [s, s]))
    for (const t of archived) expect(isSorted(t)).toBe(true)
    expect((await storage.read(ds)).length).toBe(0)
  })
  it('pg: a retention cutoff before year 1 expires nothing, one past 9999 is a 400 (no 502)', async () => {
    const schema = `friday_in_${RUN}_${schemas.length}`
    schemas.push(schema)
    const storage = createPostgresStorage({ pool: pgPool as unknown as PgPoolLike, schema })
    const ds = uniqueDataset('cut')
    await storage.write(ds, [
      { symbol: 'A', timestamp: tms(0), close: 1 },
      { symbol: 'B', timestamp: tms(1), close: 2 },
    ])
    const archived: Table[] = []
    const archive = { put: async (_name: string, t: Table) => void archived.push(t), remove: async () => undefined }
    expect((await storage.expireRows(ds, { cutoff: Date.parse('0000-06-01T00:00:00Z') })).rowsExpired).toBe(0)
    expect((await storage.expireRows(ds, { cutoff: -8.64e15, archive })).rowsExpired).toBe(0)
    expect((await storage.read(ds)).length).toBe(2)
    await expectValidation(storage.expireRows(ds, { cutoff: 8.64e15, archive }), undefined, 'cutoff')
    expect((await storage.read(ds)).length).toBe(2)
    expect((await storage.expireRows(ds, { cutoff: Date.parse('9999-12-31T00:00:00Z'), archive })).rowsExpired).toBe(2)
    expect(archived.reduce((n, t) => n + t.length, 0)).toBe(2)
    expect((await storage.read(ds)).length).toBe(0)
  })
})
