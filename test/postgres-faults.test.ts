/**
 * Network faults between the Postgres backend and a real PostgreSQL, through both drivers (`pg`,
 * and Neon via the WebSocket relay), injected by the TCP proxy in `helpers/tcp-proxy.ts`:
 * connections reset in the middle of a write transaction, half-open (stalled) connections, and
 * a connection lost right after COMMIT was sent (an in-doubt commit and the retry of its append).
 * No uncaught exception or unhandled rejection may happen meanwhile.
 */

import pg from 'pg'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import ws from 'ws'
import { createNeonPool, createPostgresStorage, type PgPoolLike } from '../src/backends/postgres/index.js'
import { createPgPool } from '../src/backends/postgres/node.js'
import type { PostgresTimeouts } from '../src/backends/postgres/timeouts.js'
import { CommitInDoubtError, DuplicateKeyError, StoreError } from '../src/core/errors.js'
import type { DataStorage } from '../src/core/types.js'
import { rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { pgSimpleQuery, startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js'
import { startWsRelay, type WsRelay } from './helpers/ws-relay.js'

const server = await requirePostgresOrSkip()
const proxy: TcpProxy | null = server ? await startTcpProxy({ target: { host: server.host, port: server.port } }) : null
const relay: WsRelay | null = server ? await startWsRelay() : null
/** Straight to the server, for set-up and checks. */
const direct = server ? new pg.Pool({ connectionString: server.url, max: 4 }) : null
const RUN = Math.random().toString(36).slice(2, 8)
const schemas: string[] = []
const pools: { end(): Promise<void> }[] = []

/** The server's URL with the proxy as host. */
function proxiedUrl(): string {
  const u = new URL(server!.url)
  u.host = proxy!.address
  return u.toString()
}

type Driver = 'pg' | 'neon'

function poolFor(driver: Driver, timeouts: PostgresTimeouts = {}, max = 4): PgPoolLike {
  const pool =
    driver === 'pg'
      ? createPgPool(proxiedUrl(), { max, ...timeouts })
      : createNeonPool(proxiedUrl(), {
          max,
          ...timeouts,
          webSocketConstructor: ws,
          wsProxy: (host, p) => `127.0.0.1:${relay!.port}/v1?address=${host}:${p}`,
          useSecureWebSocket: false,
          pipelineConnect: false,
        })
  pools.push(pool as unknown as { end(): Promise<void> })
  return pool
}

function storageFor(driver: Driver, timeouts: PostgresTimeouts = {}, max = 4): DataStorage {
  const schema = `friday_f_${RUN}_${schemas.length}`
  schemas.push(schema)
  return createPostgresStorage({ pool: poolFor(driver, timeouts, max), schema })
}

/** Polls `check` until it returns true; fails after `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Uncaught exceptions and unhandled rejections seen while a test ran. */
const uncaught: unknown[] = []
const onUncaught = (err: unknown) => uncaught.push(err)
beforeEach(() => {
  uncaught.length = 0
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
})
afterEach(async () => {
  proxy?.resume()
  // give late socket events a turn to surface before checking
  await new Promise((r) => setTimeout(r, 50))
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUncaught)
  expect(uncaught).toEqual([])
})

afterAll(async () => {
  for (const p of pools) await p.end().catch(() => undefined)
  if (direct) {
    for (const s of schemas) await direct.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
    await direct.end()
  }
  await relay?.close()
  await proxy?.close()
  await server?.stop()
})

const bars = (n: number, close = 1, day = 0) =>
  Array.from({ length: n }, (_, i) => ({ symbol: 'A', timestamp: tms(day, i), close: close + i }))

/** Rows of `ds` in `schema` counted over a direct connection (not through the proxy). */
async function countRows(schema: string, ds: string): Promise<number> {
  const res = await direct!.query(`SELECT count(*)::int AS n FROM "${schema}"."ds_${ds}"`)
  return res.rows[0].n
}

for (const driver of ['pg', 'neon'] as const) {
  describe.skipIf(!server)(`postgres faults via ${driver}`, () => {
    it('a connection reset in the middle of a write transaction rejects it (nothing written) and later calls work', async () => {
      const storage = storageFor(driver)
      const schema = schemas[schemas.length - 1]
      const ds = uniqueDataset('cut')
      await storage.write(ds, bars(3))
      // hold the dataset row so the next write waits inside its transaction
      const holder = await direct!.connect()
      try {
        await holder.query('BEGIN')
        await holder.query(`SELECT 1 FROM "${schema}".friday_datasets WHERE name = $1 FOR UPDATE`, [ds])
        const write = storage.write(ds, bars(3, 100, 1)).then(
          () => null,
          (e: unknown) => e,
        )
        await until('the write to wait on the row lock', async () => {
          const res = await direct!.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%friday_datasets%'`,
          )
          return res.rows[0].n > 0
        })
        const before = proxy!.accepted()
        proxy!.cut()
        const err = (await write) as StoreError
        expect(err).toBeInstanceOf(StoreError)
        expect(err.status).toBe(502)
        expect(err.details).toMatchObject({ reason: 'connection_lost', outcome: 'none' })
        expect(err.message).toMatch(/connection to PostgreSQL was lost.*nothing was written/)
        await holder.query('ROLLBACK')
        expect(await countRows(schema, ds)).toBe(3)
        // the broken connection was dropped, the next calls open new ones and work
        await storage.write(ds, bars(3, 100, 1))
        expect(rowsOf(await storage.read(ds)).length).toBe(6)
        expect(proxy!.accepted()).toBeGreaterThan(before)
      } finally {
        holder.release()
      }
    })

    it('a stalled (half-open) connection fails calls within their timeout, the pool recovers after the stall', async () => {
      const storage = storageFor(driver, { queryTimeoutMillis: 1_000, connectionTimeoutMillis: 1_000 }, 2)
      const ds = uniqueDataset('stall')
      await storage.write(ds, bars(3))
      proxy!.stall()
      try {
        const read = await storage.read(ds).then(
          () => null,
          (e: unknown) => e,
        )
        expect(read).toBeInstanceOf(StoreError)
        expect((read as StoreError).details).toMatchObject({ reason: 'timeout' })
        expect((read as StoreError).message).toMatch(/no answer from PostgreSQL in time/)
        const write = await storage.write(ds, bars(2, 50, 2)).then(
          () => null,
          (e: unknown) => e,
        )
        expect(write).toBeInstanceOf(StoreError)
        expect((write as StoreError).details).toMatchObject({ reason: 'timeout', outcome: 'none' })
        // more calls than the pool has connections: none hangs, each fails on its own
        const many = await Promise.allSettled([1, 2, 3, 4, 5].map(() => storage.read(ds)))
        for (const r of many) {
          expect(r.status).toBe('rejected')
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StoreError)
        }
      } finally {
        proxy!.resume()
      }
      // not poisoned: the next calls get fresh connections
      expect(rowsOf(await storage.read(ds)).length).toBe(3)
      await storage.write(ds, bars(2, 50, 2))
      expect(rowsOf(await storage.read(ds)).length).toBe(5)
    })

    it('a connection lost right after COMMIT is in doubt; the retried append is accepted and stores the rows once', async () => {
      const storage = storageFor(driver)
      const schema = schemas[schemas.length - 1]
      const ds = uniqueDataset('doubt')
      await storage.write(ds, bars(2), { mode: 'append' }) // set-up done: the next COMMIT is the append's
      const batch = bars(4, 10, 1)
      const fired = proxy!.cutAfterClientSends(pgSimpleQuery('COMMIT'))
      const err = (await storage.write(ds, batch, { mode: 'append' }).then(
        () => null,
        (e: unknown) => e,
      )) as CommitInDoubtError
      await fired
      expect(err).toBeInstanceOf(CommitInDoubtError)
      expect(err.status).toBe(503)
      expect(err.code).toBe('commit_in_doubt')
      expect(err.details).toMatchObject({ reason: 'connection_lost', outcome: 'unknown' })
      expect(err.message).toBe(
        `the commit of 'append of 4 row(s) into dataset ${ds}' may or may not have been applied: ${(err.cause as Error).message}`,
      )
      // the server got the COMMIT: the rows land
      await until('the in-doubt commit to land', async () => (await countRows(schema, ds)) === 6)
      const retry = await storage.write(ds, batch, { mode: 'append' })
      expect(retry.rowsWritten).toBe(4)
      expect(await countRows(schema, ds)).toBe(6)
      const rows = rowsOf(await storage.read(ds))
      expect(rows.map((r) => r.close)).toEqual([1, 2, 10, 11, 12, 13])
      expect((await storage.verify(ds)).ok).toBe(true)
      // a stored key with other values is still a conflict, even for a batch that landed before
      const changed = batch.map((r, i) => (i === 3 ? { ...r, close: -1 } : r))
      await expect(storage.write(ds, changed, { mode: 'append' })).rejects.toBeInstanceOf(DuplicateKeyError)
      // keys holding exactly the rows are no conflict, whatever batch stored them
      expect((await storage.write(ds, batch.slice(0, 2), { mode: 'append' })).rowsWritten).toBe(2)
      expect(await countRows(schema, ds)).toBe(6)
    })
  })
}

describe.skipIf(!server)('append retries (no fault needed)', () => {
  for (const bulkRows of [10_000, 0]) {
    it(`an append sent again is accepted, storing its rows once; stored keys with other values are 409 and store nothing (${bulkRows ? 'statements' : 'staged'})`, async () => {
      const schema = `friday_f_${RUN}_${schemas.length}`
      schemas.push(schema)
      const storage = createPostgresStorage({ pool: direct as unknown as PgPoolLike, schema, bulkRows })
      const ds = uniqueDataset('again')
      const batch = [...bars(3, 1), { symbol: 'B', timestamp: tms(0, 0), close: -0, note: 'x' }]
      await storage.write(ds, batch, { mode: 'append' })
      const before = await storage.listPartitions(ds)
      expect((await storage.write(ds, batch, { mode: 'append' })).rowsWritten).toBe(4)
      expect(await countRows(schema, ds)).toBe(4)
      // nothing changed: no partition got a new version
      expect(await storage.listPartitions(ds)).toEqual(before)
      // -0 is not 0, a string differs, a missing value differs from a stored one; the new key C is not stored either
      for (const change of [{ close: 0 }, { note: 'y' }, { note: undefined }]) {
        const other = [
          ...batch.map((r, i) => (i === 3 ? { ...r, ...change } : r)),
          { symbol: 'C', timestamp: tms(0, 0), close: 1 },
        ]
        const err = await storage.write(ds, other, { mode: 'append' }).then(
          () => null,
          (e: unknown) => e,
        )
        expect(err).toBeInstanceOf(DuplicateKeyError)
        expect((err as DuplicateKeyError).details).toMatchObject({
          total: 1,
          keys: [{ symbol: 'B', timestamp: '2024-01-02T14:30:00.000Z' }],
        })
      }
      expect(await countRows(schema, ds)).toBe(4)
      // a batch lacking a column the dataset has: NULL there, so it matches the rows whose value is NULL
      expect((await storage.write(ds, [{ symbol: 'A', timestamp: tms(0, 0), close: 1 }], { mode: 'append' })).rowsWritten).toBe(1)
      await expect(
        storage.write(ds, [{ symbol: 'B', timestamp: tms(0, 0), close: -0 }], { mode: 'append' }),
      ).rejects.toBeInstanceOf(DuplicateKeyError)
      // an upserted batch holds the same rows: appending it over itself is no conflict
      const ds2 = uniqueDataset('upserted')
      await storage.write(ds2, batch)
      expect((await storage.write(ds2, batch, { mode: 'append' })).rowsWritten).toBe(4)
      expect(await countRows(schema, ds2)).toBe(4)
      expect((await storage.verify()).ok).toBe(true)
    })
  }
})
