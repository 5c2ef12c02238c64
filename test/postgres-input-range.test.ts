/**
 * Input at the edges of what PostgreSQL can hold (issue 12, items 13 and 14), through
 * node-postgres and the Neon driver: read/delete filter times PostgreSQL cannot parse answer as
 * the lake does (no 502); year 0, Dates outside PostgreSQL's range and times outside
 * the accepted range are a 400 with nothing stored (not a 502 from the server), ill-formed
 * symbols are a 400, and the first and last accepted microseconds round-trip exactly.
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
import type { DataStorage, InputRow } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { expectValidation, rowsOf, tms, uniqueDataset, us } from './conformance/storage.case.js'
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

const cleanups: (() => Promise<void>)[] = []

afterAll(async () => {
  for (const c of cleanups) await c()
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
  const schema = `friday_ir_${RUN}_${schemas.length}`
  schemas.push(schema)
  const pool = (driver === 'pg' ? pgPool : neon) as unknown as PgPoolLike
  return { storage: createPostgresStorage({ pool, schema, partitionBy, bulkRows }), schema }
}

/** A local Parquet lake in a fresh temp dir: the reference the answers are compared with. */
async function lake(): Promise<DataStorage> {
  const dir = await mkdtemp(join(tmpdir(), 'friday-pgir-'))
  const storage = createStorage({ storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } }, {})
  cleanups.push(async () => {
    await storage.close()
    await rm(dir, { recursive: true, force: true })
  })
  return storage
}

/** Rows of every schema this test file's catalog holds for `ds` (none when nothing was stored). */
async function catalogRows(schema: string, ds: string): Promise<number> {
  const res = await pgPool!.query(`SELECT count(*)::int AS n FROM "${schema}".friday_datasets WHERE name = $1`, [ds])
  return res.rows[0].n
}

/** The accepted time range (README: `[1700-01-01T00:00:00Z, 2200-01-01T00:00:00Z)`), in epoch µs. */
const FIRST_US = Date.UTC(1700, 0, 1) * 1000
const PAST_US = Date.UTC(2200, 0, 1) * 1000

function iso(us: number): string {
  const ms = Math.floor(us / 1000)
  return `${new Date(ms).toISOString().slice(0, -1)}${String(us - ms * 1000).padStart(3, '0')}Z`
}

describe.skipIf(!server)('postgres: times and strings PostgreSQL cannot hold are a 400 (issue 12, item 13)', () => {
  it('filter times PostgreSQL cannot parse (year 0, past 9999) answer as in the lake (no 502)', async () => {
    const { storage } = open('pg')
    const local = await lake()
    const ds = uniqueDataset('farf')
    const rows = [{ symbol: 'A', timestamp: us(tms(0)), close: 1 }]
    const year0 = Date.parse('0000-06-01T00:00:00Z') // epoch ms of a day in year 0 (1 BC)
    const year10k = Date.parse('+010000-01-02T00:00:00Z')
    for (const s of [storage, local]) {
      await s.write(ds, [{ symbol: 'A', timestamp: tms(0), close: 1 }])
      expect(rowsOf(await s.read(ds, { start: year0 }))).toEqual(rows)
      expect(rowsOf(await s.read(ds, { start: year0, end: 8.64e15 }))).toEqual(rows)
      expect(rowsOf(await s.read(ds, { start: year0, end: year10k, limit: 1 }))).toEqual(rows)
      expect(rowsOf(await s.read(ds, { end: year0 }))).toEqual([])
      expect(rowsOf(await s.read(ds, { start: year10k }))).toEqual([])
      expect(rowsOf(await s.read(ds, { start: -8.6e15, end: -8.5e15 }))).toEqual([])
      expect(await s.listPartitions(ds, { end: year0 })).toEqual([])
      expect((await s.delete(ds, { end: year0 })).rowsDeleted).toBe(0)
      expect((await s.delete(ds, { start: year10k })).rowsDeleted).toBe(0)
      expect((await s.delete(ds, { start: year0, end: 8.64e15 })).rowsDeleted).toBe(1)
    }
  })

  for (const driver of DRIVERS) {
    it(`${driver}: year 0, Dates outside PostgreSQL's range and times outside the accepted range are a 400; nothing stored`, async () => {
      const { storage, schema } = open(driver)
      const ds = uniqueDataset('y0')
      const bad: InputRow[][] = [
        [{ symbol: 'A', timestamp: '0000-01-01T00:00:00Z', close: 1 }],
        [{ symbol: 'A', timestamp: '0001-01-01T00:00:00.000001Z', close: 1 }],
        [{ symbol: 'A', timestamp: new Date('0000-06-01T00:00:00Z'), close: 1 }],
        [{ symbol: 'A', timestamp: new Date(8.64e15), close: 1 }],
        [{ symbol: 'A', timestamp: new Date(-8.64e15), close: 1 }],
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
        expect(await storage.listDatasets()).toEqual([])
        expect(await catalogRows(schema, ds)).toBe(0)
      }
    })

    it(`${driver}: X\\uD800 and X\\uDFFF in one batch are a 400 naming the row; nothing stored`, async () => {
      const { storage } = open(driver)
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
      expect(await storage.listDatasets()).toEqual([])
      await expectValidation(storage.write(ds, [{ symbol: 'X', timestamp: tms(0), note: 'a\uDFFF' }]), 0, 'note')
      expect(await storage.listDatasets()).toEqual([])
    })
  }
})

describe.skipIf(!server)('postgres: the accepted time range round-trips exactly to the µs (issue 12, item 14)', () => {
  for (const driver of DRIVERS) {
    for (const bulkRows of [10_000, 0]) {
      it(`${driver}${bulkRows ? '' : ' (staged writes)'}: the first and last accepted µs, rows 1 µs apart stay apart`, async () => {
        const { storage: s } = open(driver, undefined, bulkRows)
        const ds = uniqueDataset('edge')
        const times = [FIRST_US, FIRST_US + 1, PAST_US - 2, PAST_US - 1]
        const dates = [FIRST_US, FIRST_US + 1000, PAST_US - 2000, PAST_US - 1000].map((t) => new Date(t / 1000))
        await s.write(
          ds,
          times.map((t, i) => ({ symbol: 'A', timestamp: iso(t), close: i, at: dates[3 - i] })),
        )
        const t = await s.read(ds)
        expect(t.length).toBe(4)
        expect([...(t.columns.timestamp.values as Float64Array)]).toEqual(times)
        expect([...(t.columns.at.values as Float64Array)]).toEqual([...dates].reverse().map((d) => d.getTime() * 1000))
        const d = await s.describe(ds)
        expect([d?.firstTimestamp, d?.lastTimestamp]).toEqual(['1700-01-01T00:00:00.000Z', '2199-12-31T23:59:59.999999Z'])
        // the same key again is one row: an upsert at the edge changes it in place
        await s.write(ds, [{ symbol: 'A', timestamp: iso(FIRST_US + 1), close: 9 }])
        expect(rowsOf(await s.read(ds, { start: iso(FIRST_US + 1), end: iso(FIRST_US + 2) })).map((r) => r.close)).toEqual([9])
        expect((await s.read(ds)).length).toBe(4)
        expect((await s.verify(ds)).ok).toBe(true)
        for (const outside of [FIRST_US - 1, PAST_US]) {
          await expectValidation(s.write(ds, [{ symbol: 'A', timestamp: iso(outside), close: 1 }]), 0, 'timestamp')
        }
        for (const outside of [FIRST_US - 1000, PAST_US]) {
          await expectValidation(s.write(ds, [{ symbol: 'B', timestamp: iso(FIRST_US), at: new Date(outside / 1000) }]), 0, 'at')
        }
        expect((await s.read(ds)).length).toBe(4)
        expect((await s.describe(ds))?.symbols).toEqual(['A'])
      })
    }
  }
})
