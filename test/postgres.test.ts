/**
 * The storage conformance suite on PostgreSQL, through node-postgres (`pg`) and through the Neon
 * serverless driver (WebSocket, via the relay in `helpers/ws-relay.ts`), each also with every
 * write on the bulk path (staging table loaded by COPY, or by unnest statements), plus
 * Postgres-specific checks: exact µs and int64, concurrent writers and set-ups, quoted identifiers, parameters only.
 */

import type { Pool as NeonPool } from '@neondatabase/serverless'
import { afterAll, describe, expect, it } from 'vitest'
import ws from 'ws'
import { createNeonPool, createPostgresStorage, type PgPoolLike } from '../src/backends/postgres/index.js'
import { createPgPool } from '../src/backends/postgres/node.js'
import { postgresFactory } from '../src/config/factory.js'
import { parseConfig } from '../src/config/load.js'
import { type ConfigError, StoreError } from '../src/core/errors.js'
import type { DataStorage } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { bars, rowsOf, shuffle, testStorage, tms, uniqueDataset, us } from './conformance/storage.case.js'
import { configuredStorage } from './helpers/configured.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { startWsRelay, type WsRelay } from './helpers/ws-relay.js'

const server = await requirePostgresOrSkip()
const relay: WsRelay | null = server ? await startWsRelay() : null
const RUN = Math.random().toString(36).slice(2, 8)
/** Schemas this run creates (dropped at the end, so a reused DATABASE_URL stays clean). */
const SCHEMAS = {
  pg: `friday_t_${RUN}_pg`,
  neon: `friday_t_${RUN}_neon`,
  date: `friday_t_${RUN}_date`,
  extra: `friday_t_${RUN}_x`,
  pgCopy: `friday_t_${RUN}_pgcopy`,
  neonCopy: `friday_t_${RUN}_neoncopy`,
  unnest: `friday_t_${RUN}_unnest`,
  configured: `friday_t_${RUN}_configured`,
}

function neonPool(max = 10): NeonPool {
  if (!server || !relay) throw new Error('no server')
  const port = relay.port
  return createNeonPool(server.url, {
    max,
    webSocketConstructor: ws,
    wsProxy: (host, p) => `127.0.0.1:${port}/v1?address=${host}:${p}`,
    useSecureWebSocket: false,
    pipelineConnect: false,
  })
}

const pgPool = server ? createPgPool(server.url, { max: 20 }) : null
const neon = server ? neonPool() : null
const skip = server ? false : 'no PostgreSQL (set DATABASE_URL or install PostgreSQL)'

afterAll(async () => {
  if (pgPool) {
    for (const s of Object.values(SCHEMAS)) await pgPool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
    await pgPool.end()
  }
  await neon?.end()
  await relay?.close()
  await server?.stop()
})

testStorage({
  name: 'postgres via pg',
  create: async () => createPostgresStorage({ pool: pgPool as PgPoolLike, schema: SCHEMAS.pg }),
  skip,
})

testStorage({
  name: 'postgres via @neondatabase/serverless (WebSocket relay)',
  create: async () => createPostgresStorage({ pool: neon as PgPoolLike, schema: SCHEMAS.neon }),
  skip,
})

// bulkRows 0: every write takes the bulk path (staging table + set-based merge)
testStorage({
  name: 'postgres via pg, every write staged with binary COPY',
  create: async () => createPostgresStorage({ pool: pgPool as PgPoolLike, schema: SCHEMAS.pgCopy, bulkRows: 0 }),
  skip,
})

testStorage({
  name: 'postgres via @neondatabase/serverless, every write staged with binary COPY',
  create: async () => createPostgresStorage({ pool: neon as PgPoolLike, schema: SCHEMAS.neonCopy, bulkRows: 0 }),
  skip,
})

testStorage({
  name: 'postgres via pg, every write staged with unnest statements (copy: false)',
  create: async () => createPostgresStorage({ pool: pgPool as PgPoolLike, schema: SCHEMAS.unnest, bulkRows: 0, copy: false }),
  skip,
})

testStorage({
  name: 'postgres via pg, partition_by=[date]',
  create: async () => createPostgresStorage({ pool: pgPool as PgPoolLike, schema: SCHEMAS.date, partitionBy: ['date'] }),
  skip,
})

// The same suite through the config-driven factory: read cache and op log in front of the backend.
testStorage({
  name: 'postgres via pg through createStorageWith (read cache and op log on)',
  create: async () =>
    configuredStorage('postgres', (c) => postgresFactory(c, { pool: pgPool as PgPoolLike }), {
      postgres: { url: server!.url, schema: SCHEMAS.configured },
    }),
  skip,
})

describe.skipIf(Boolean(skip))('postgres backend specifics', () => {
  const storage = (schema = SCHEMAS.extra): DataStorage => createPostgresStorage({ pool: pgPool as PgPoolLike, schema })

  it('keeps microseconds exactly, before and after 1970, and stores them as timestamptz', async () => {
    const s = storage()
    const ds = uniqueDataset('micro')
    const times = [
      '2024-01-02T09:30:00.123457Z',
      '2024-01-02T09:30:00.999999Z',
      '1969-12-31T23:59:59.999999Z',
      '1900-01-01T00:00:00.000001Z',
      '2199-12-31T23:59:59.999999Z', // the last accepted µs (issue 12)
    ]
    await s.write(
      ds,
      times.map((t, i) => ({ symbol: 'A', timestamp: t, close: i, at: new Date(Date.UTC(2024, 0, 1, 0, 0, 0, i)) })),
    )
    const t = await s.read(ds)
    const expected = times.map((x) => Date.parse(x.slice(0, 23) + 'Z') * 1000 + Number(x.slice(23, 26))).sort((a, b) => a - b)
    expect(Array.from(t.columns.timestamp.values as Float64Array)).toEqual(expected)
    expect(Array.from(t.columns.at.values as Float64Array).sort()).toEqual(
      [0, 1, 2, 3, 4].map((i) => (Date.UTC(2024, 0, 1) + i) * 1000).sort(),
    )
    const res = await pgPool!.query(
      `SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS t FROM "${SCHEMAS.extra}"."ds_${ds}" ORDER BY 1`,
    )
    expect(res.rows.map((r) => `${r.t}Z`).sort()).toEqual([...times].sort())
    await s.close()
  })

  it('keeps int64 beyond 2^53 exactly, including the extremes', async () => {
    const s = storage()
    const ds = uniqueDataset('int64')
    const values = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -(2n ** 53n) - 3n, 0n]
    await s.write(
      ds,
      values.map((v, i) => ({ symbol: 'A', timestamp: tms(0, i), volume: v })),
    )
    const t = await s.read(ds)
    expect(Array.from(t.columns.volume.values as BigInt64Array)).toEqual(values)
    await s.close()
  })

  it('8 writers on 8 instances (own pools) into the same partitions lose nothing; versions count the commits', async () => {
    const ds = uniqueDataset('conc8')
    const pools = Array.from({ length: 8 }, () => createPgPool(server!.url, { max: 2 }))
    const storages = pools.map((pool) => createPostgresStorage({ pool, schema: SCHEMAS.extra }))
    try {
      const expected = new Map<string, number>()
      const batches = storages.map((_, w) => {
        const rows = []
        for (const symbol of ['AAPL', 'MSFT'])
          for (let m = 0; m < 50; m++) {
            // every writer writes its own keys plus a column only it has (concurrent ALTER TABLEs)
            rows.push({ symbol, timestamp: tms(0, m * 8 + w), close: w, [`c${w}`]: m })
            expected.set(`${symbol}@${m * 8 + w}`, w)
          }
        return shuffle(rows, w)
      })
      await Promise.all(storages.map((s, w) => s.write(ds, batches[w])))
      const t = await storages[0].read(ds)
      expect(t.length).toBe(expected.size)
      expect(t.schema.map((c) => c.name).sort()).toEqual(
        ['symbol', 'timestamp', 'close', ...Array.from({ length: 8 }, (_, w) => `c${w}`)].sort(),
      )
      const parts = await storages[0].listPartitions(ds)
      expect(parts.map((p) => p.version)).toEqual([8, 8])
      expect(parts.reduce((s, p) => s + p.rows, 0)).toBe(expected.size)
      expect((await storages[0].verify(ds)).ok).toBe(true)
    } finally {
      for (const s of storages) await s.close()
      for (const p of pools) await p.end()
    }
  })

  it('two instances setting up a fresh schema at once both succeed', async () => {
    const schema = `friday_t_${RUN}_setup`
    const pools = [createPgPool(server!.url, { max: 2 }), createPgPool(server!.url, { max: 2 })]
    const [a, b] = pools.map((pool) => createPostgresStorage({ pool, schema }))
    try {
      const ds = uniqueDataset('setup')
      const [ra, rb] = await Promise.all([a.write(ds, bars(['A'], [0], 3)), b.write(ds, bars(['A'], [0], 3))])
      expect(ra.rowsWritten).toBe(3)
      expect(rb.rowsWritten).toBe(3)
      expect(await a.listDatasets()).toEqual([ds])
      const tables = await pgPool!.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [
        schema,
      ])
      expect(tables.rows.map((r) => r.table_name)).toEqual([`ds_${ds}`, 'friday_datasets', 'friday_partitions'])
    } finally {
      await a.close()
      await b.close()
      for (const p of pools) await p.end()
      await pgPool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    }
  })

  it('quotes identifiers: a dataset and columns named with reserved words work', async () => {
    const s = storage()
    for (const ds of ['select', 'table', 'Order-By']) {
      await s.write(ds, [{ symbol: 'A', timestamp: tms(0, 0), from: 1, where: 'x', group: true, user: 5n }])
      expect(rowsOf(await s.read(ds, { columns: ['from', 'user'] }))).toEqual([
        { symbol: 'A', timestamp: us(tms(0, 0)), from: 1, user: 5n },
      ])
    }
    expect((await s.listDatasets()).filter((n) => ['select', 'table', 'Order-By'].includes(n))).toEqual([
      'Order-By',
      'select',
      'table',
    ])
    await s.close()
  })

  it('passes values only as parameters: SQL in symbols and strings round-trips', async () => {
    const s = storage()
    const ds = uniqueDataset('inject')
    const evil = ["'); DROP TABLE x; --", 'a"b\\c{d},e', 'NULL', "O'Brien", '$1']
    const rows = evil.map((symbol, i) => ({ symbol, timestamp: tms(0, i), note: evil[(i + 1) % evil.length] }))
    await s.write(ds, rows)
    const t = await s.read(ds)
    expect(rowsOf(t)).toEqual(
      rows.map((r) => ({ ...r, timestamp: us(r.timestamp) })).sort((a, b) => (a.symbol < b.symbol ? -1 : 1)),
    )
    for (const symbol of evil) expect((await s.read(ds, { symbols: [symbol] })).length).toBe(1)
    expect((await s.delete(ds, { symbols: [evil[0]] })).rowsDeleted).toBe(1)
    expect((await s.verify(ds)).ok).toBe(true)
    await s.close()
  })

  it('verify() notices a row changed behind its back', async () => {
    const s = storage()
    const ds = uniqueDataset('tamper')
    await s.write(ds, bars(['AAPL', 'MSFT'], [0], 3))
    expect((await s.verify(ds)).ok).toBe(true)
    await pgPool!.query(`UPDATE "${SCHEMAS.extra}"."ds_${ds}" SET close = close + 1 WHERE symbol = 'MSFT'`)
    const report = await s.verify(ds)
    expect(report.ok).toBe(false)
    expect(report.problems).toHaveLength(1)
    expect(report.problems[0]).toMatchObject({ problem: 'checksum-mismatch', partition: 'symbol=MSFT/date=2024-01-02' })
    await s.close()
  })

  it('the Neon driver ends cleanly through the relay (Terminate closes the TCP side)', async () => {
    const pool = neonPool(2)
    const s = createPostgresStorage({ pool, schema: SCHEMAS.extra, ownsPool: true })
    const ds = uniqueDataset('neonend')
    await s.write(ds, bars(['A'], [0], 2))
    expect((await s.read(ds)).length).toBe(2)
    await s.close() // ends the pool: must not hang
    await new Promise((r) => setTimeout(r, 50))
    const other = await pgPool!.query('SELECT 1 AS one')
    expect(other.rows[0].one).toBe(1)
  })

  it('an unreachable server is a StoreError, and the next call retries the set-up', async () => {
    const pool = createPgPool('postgres://postgres@127.0.0.1:1/postgres', { connectionTimeoutMillis: 1000 })
    const s = createPostgresStorage({ pool })
    const err = await s.listDatasets().catch((e) => e)
    expect(err.code).toBe('store_error')
    expect(err.status).toBe(502)
    const again = await s.listDatasets().catch((e) => e)
    expect(again.code).toBe('store_error')
    await pool.end()
  })
})

/** Polls `check` until it returns true; fails after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

for (const driver of ['pg', 'neon'] as const) {
  describe.skipIf(Boolean(skip))(`postgres scan via ${driver}: one snapshot, the connection always returned`, () => {
    type CountedPool = PgPoolLike & { totalCount: number; idleCount: number; end(): Promise<void> }
    const pools: CountedPool[] = []
    const open = (options: { scanIdleTimeoutMs?: number } = {}) => {
      const pool = (driver === 'pg' ? createPgPool(server!.url, { max: 2 }) : neonPool(2)) as unknown as CountedPool
      pools.push(pool)
      return { pool, storage: createPostgresStorage({ pool, schema: SCHEMAS.extra, ...options }) }
    }
    /** Connections checked out of the pool. */
    const busy = (pool: CountedPool) => pool.totalCount - pool.idleCount
    afterAll(async () => {
      for (const p of pools) await p.end()
    })

    it('a partition written between two batches shows its old rows in the second batch', async () => {
      const { storage } = open()
      const ds = uniqueDataset('snap')
      await storage.write(ds, [
        { symbol: 'A', timestamp: tms(0, 0), close: 1 },
        { symbol: 'A', timestamp: tms(0, 1), close: 2 },
      ])
      const seen: number[] = []
      for await (const batch of storage.scan(ds, { batchSize: 1 })) {
        expect(batch.length).toBe(1)
        seen.push((batch.columns.close.values as Float64Array)[0])
        // committed while the scan is between its pages: it must see none of it
        if (seen.length === 1)
          await storage.write(ds, [
            { symbol: 'A', timestamp: tms(0, 0), close: 10 },
            { symbol: 'A', timestamp: tms(0, 1), close: 20 },
          ])
      }
      expect(seen).toEqual([1, 2])
      expect(rowsOf(await storage.read(ds)).map((r) => r.close)).toEqual([10, 20])
    })

    it('break, a throwing consumer and a failing query each return the connection', async () => {
      const { pool, storage } = open()
      const ds = uniqueDataset('snaprel')
      await storage.write(ds, bars(['A'], [0], 5))
      for await (const _ of storage.scan(ds, { batchSize: 2 })) {
        expect(busy(pool)).toBe(1) // the scan holds its snapshot's connection
        break
      }
      expect(busy(pool)).toBe(0)
      await expect(
        (async () => {
          for await (const _ of storage.scan(ds, { batchSize: 2 })) throw new Error('consumer failed')
        })(),
      ).rejects.toThrow('consumer failed')
      expect(busy(pool)).toBe(0)
      // the scan's session is ended by the server between two pages: its next page fails
      const it = storage.scan(ds, { batchSize: 2 })[Symbol.asyncIterator]()
      expect((await it.next()).done).toBe(false)
      const killed = await pgPool!.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE $1`,
        [`%ds_${ds}%`],
      )
      expect(killed.rows).toEqual([{ ok: true }])
      await expect(it.next()).rejects.toBeInstanceOf(StoreError)
      expect(busy(pool)).toBe(0)
      // and the pool still works: both connections are free
      expect(rowsOf(await storage.read(ds)).length).toBe(5)
    })

    it('an iterator dropped without closing loses its snapshot after scanIdleTimeoutMs; the connection is returned', async () => {
      const { pool, storage } = open({ scanIdleTimeoutMs: 300 })
      const ds = uniqueDataset('snapidle')
      await storage.write(ds, bars(['A'], [0], 5))
      const it = storage.scan(ds, { batchSize: 2 })[Symbol.asyncIterator]()
      expect((await it.next()).value.length).toBe(2)
      expect(busy(pool)).toBe(1)
      await until('the idle scan to release its connection', () => busy(pool) === 0)
      const err = await it.next().then(
        () => null,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(StoreError)
      expect((err as StoreError).details).toMatchObject({ reason: 'scan_idle_timeout', idleMs: 300 })
      expect(busy(pool)).toBe(0)
      // a consumer within the limit is not affected
      let n = 0
      for await (const b of storage.scan(ds, { batchSize: 2 })) n += b.length
      expect(n).toBe(5)
    })
  })
}

describe.skipIf(Boolean(skip))('postgres timeouts from the config reach the pool', () => {
  const SECTION = {
    connect_timeout_ms: 4_000,
    statement_timeout_ms: 300,
    query_timeout_ms: 7_000,
    idle_timeout_ms: 3_000,
    idle_in_transaction_timeout_ms: 400,
    keepalive: false,
  }
  const config = (driver: 'pg' | 'neon') => ({
    storage: {
      default_backend: 'postgres',
      postgres: { url: server!.url, driver, schema: SCHEMAS.extra, ...SECTION },
      metadata_logging: { enabled: false },
    },
  })
  /** The options node-postgres (or Neon's fork of it) was given for the storage's pool. */
  const poolOptions = (storage: object) =>
    (storage as unknown as { session: { pool: { options: Record<string, unknown> } } }).session.pool.options

  it('Node entry (pg): a statement past statement_timeout_ms is cancelled by the server; every setting is on the pool', async () => {
    const storage = createStorage(config('pg'), {})
    try {
      expect(poolOptions(storage)).toMatchObject({
        connectionTimeoutMillis: 4_000,
        statement_timeout: 300,
        query_timeout: 7_000,
        idleTimeoutMillis: 3_000,
        idle_in_transaction_session_timeout: 400,
        keepAlive: false,
      })
      const ds = uniqueDataset('stmt')
      await storage.write(ds, bars(['A'], [0], 2))
      // hold the dataset row: the next write waits on it until the server cancels the statement
      const holder = await pgPool!.connect()
      try {
        await holder.query({ text: 'BEGIN' })
        await holder.query({ text: `SELECT 1 FROM "${SCHEMAS.extra}".friday_datasets WHERE name = $1 FOR UPDATE`, values: [ds] })
        const err = await storage.write(ds, bars(['A'], [1], 2)).then(
          () => null,
          (e: unknown) => e,
        )
        expect(err).toBeInstanceOf(StoreError)
        expect((err as StoreError).details).toMatchObject({ sqlstate: '57014' }) // query_canceled: statement timeout
      } finally {
        await holder.query({ text: 'ROLLBACK' })
        holder.release()
      }
      expect((await storage.read(ds)).length).toBe(2)
      // idle_in_transaction_timeout_ms also bounds a scan whose consumer stops asking
      const it = storage.scan(ds, { batchSize: 1 })[Symbol.asyncIterator]()
      await it.next()
      const pool = (storage as unknown as { session: { pool: { totalCount: number; idleCount: number } } }).session.pool
      await until('the idle scan to release its connection', () => pool.totalCount === pool.idleCount)
      const stale = await it.next().then(
        () => null,
        (e: unknown) => e,
      )
      expect(stale).toBeInstanceOf(StoreError)
      expect((stale as StoreError).details).toMatchObject({ reason: 'scan_idle_timeout', idleMs: 400 })
    } finally {
      await storage.close()
    }
  })

  it('a bad value is a ConfigError naming the setting; 0 is allowed (no timeout)', () => {
    const issues = (section: Record<string, unknown>) => {
      try {
        parseConfig({ storage: { postgres: section } }, {})
        return []
      } catch (err) {
        return (((err as ConfigError).details?.issues ?? []) as { path: string }[]).map((i) => i.path)
      }
    }
    expect(issues({ statement_timeout_ms: -1, query_timeout_ms: 1.5, keepalive: 'yes' }).sort()).toEqual([
      'storage.postgres.keepalive',
      'storage.postgres.query_timeout_ms',
      'storage.postgres.statement_timeout_ms',
    ])
    expect(issues({ statement_timeout_ms: 0, idle_in_transaction_timeout_ms: 0 })).toEqual([])
  })

  it('Web entry (Neon pool built by postgresFactory): the same settings', async () => {
    const storage = postgresFactory(parseConfig(config('neon'), {}))
    try {
      expect(poolOptions(storage)).toMatchObject({
        connectionTimeoutMillis: 4_000,
        statement_timeout: 300,
        query_timeout: 7_000,
        idleTimeoutMillis: 3_000,
        idle_in_transaction_session_timeout: 400,
      })
    } finally {
      await storage.close()
    }
  })
})
