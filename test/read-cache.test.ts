/**
 * The read cache (`src/cache/`) over the local lake, the S3 lake (radosgw) and PostgreSQL: cached
 * reads equal `storage.read`, repeated reads are hits that only list partitions, writes by this
 * or another storage instance are seen at once, TTL and size bounds, the config wiring and
 * `GET /v1/cache/stats`. The S3 and PostgreSQL suites skip (and say so) when their server is absent.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPgPool } from '../src/backends/postgres/node.js'
import { ReadCache, type ReadCacheStats, withReadCache } from '../src/cache/index.js'
import { ConfigError } from '../src/core/errors.js'
import type { DataStorage, InputRow, ReadOptions, StoreRequestStats, Table } from '../src/core/types.js'
import { createApp } from '../src/http/index.js'
import { createStorage } from '../src/node.js'
import { midnight, rowsOf, tms, uniqueDataset, us } from './conformance/storage.case.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection } from './helpers/s3.js'

const s3 = await requireS3OrSkip()
const pg = await requirePostgresOrSkip()
const RUN = Math.random().toString(36).slice(2, 8)
const MB = 1024 * 1024

/** A backend under test: `make()` opens one more storage instance (no cache, no op log) on the same store. */
interface Backend {
  name: string
  skip: string | false
  make: (partitionBy?: string[]) => DataStorage
  cleanup: () => Promise<void>
}

const localDir = await mkdtemp(join(tmpdir(), 'friday-read-cache-'))
const bucket = `friday-read-cache-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
const pgSchemas = new Set<string>()
const bare = { read_cache: { enabled: false }, metadata_logging: { enabled: false } }

const BACKENDS: Backend[] = [
  {
    name: 'local_parquet',
    skip: false,
    make: (partitionBy = ['symbol', 'date']) =>
      createStorage(
        {
          storage: {
            ...bare,
            default_backend: 'local_parquet',
            local_parquet: { base_dir: localDir, partition_by: partitionBy },
          },
        },
        {},
      ),
    cleanup: () => rm(localDir, { recursive: true, force: true }),
  },
  {
    name: 's3_parquet',
    skip: s3 ? false : 'no S3 endpoint reachable',
    make: (partitionBy = ['symbol', 'date']) =>
      createStorage(
        {
          storage: {
            ...bare,
            default_backend: 's3_parquet',
            s3_parquet: {
              ...s3ParquetSection(s3!, bucket),
              partition_by: partitionBy,
            },
          },
        },
        {},
      ),
    cleanup: async () => {
      if (s3) await deleteTestBucket(s3, bucket)
    },
  },
  {
    name: 'postgres',
    skip: pg ? false : 'no PostgreSQL (set DATABASE_URL or install PostgreSQL)',
    make: (partitionBy = ['symbol', 'date']) => {
      const schema = `friday_rc_${RUN}_${partitionBy.join('_')}`
      pgSchemas.add(schema)
      return createStorage(
        {
          storage: {
            ...bare,
            default_backend: 'postgres',
            postgres: { url: pg!.url, driver: 'pg', schema, partition_by: partitionBy },
          },
        },
        {},
      )
    },
    cleanup: async () => {
      if (!pg) return
      const pool = createPgPool(pg.url, { max: 1 })
      try {
        for (const s of pgSchemas) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
      } finally {
        await pool.end()
        await pg.stop()
      }
    },
  },
]

afterAll(async () => {
  for (const b of BACKENDS) await b.cleanup()
})

const SYMBOLS = ['AAPL', 'EUR/USD', 'MSFT']
const DAYS = [0, 1, 2, 3]
const PER_DAY = 10

/** Bars with a float, an int64 (some null), a string and a boolean column. */
function rows(): InputRow[] {
  const out: InputRow[] = []
  for (const symbol of SYMBOLS)
    for (const day of DAYS)
      for (let m = 0; m < PER_DAY; m++)
        out.push({
          symbol,
          timestamp: tms(day, m * 7),
          close: symbol.charCodeAt(0) + day * 10 + m / 100,
          volume: m % 4 === 0 ? null : BigInt(1000 * day + m),
          venue: m % 3 === 0 ? null : `${symbol[0]}-${m}`,
          halted: m % 5 === 0,
        })
  return out
}

const cacheOpts = { ttlMs: 60_000, maxBytes: 64 * MB }

function delta(after: StoreRequestStats, before: StoreRequestStats) {
  return { get: after.get - before.get, list: after.list - before.list, bytesRead: after.bytesRead - before.bytesRead }
}

/** Reads with and without the cache give the same table (schema, rows, order). */
async function expectSame(cached: DataStorage, raw: DataStorage, ds: string, o: ReadOptions): Promise<Table> {
  const a = await cached.read(ds, o)
  const b = await raw.read(ds, o)
  expect(a.schema, JSON.stringify(o)).toEqual(b.schema)
  expect(rowsOf(a), JSON.stringify(o)).toEqual(rowsOf(b))
  return a
}

const FILTERS: { o: ReadOptions; rows: number }[] = [
  { o: {}, rows: 120 },
  { o: { symbols: ['MSFT'] }, rows: 40 },
  { o: { symbols: ['MSFT', 'EUR/USD'] }, rows: 80 },
  // cuts day 1 and day 3 in the middle
  { o: { start: tms(1, 20), end: tms(3, 30) }, rows: 3 * (7 + 10 + 5) },
  { o: { symbols: ['AAPL'], start: tms(0, 14), end: tms(2, 40), columns: ['close'] }, rows: 8 + 10 + 6 },
  { o: { columns: ['venue', 'volume'] }, rows: 120 },
  { o: { columns: [], symbols: ['EUR/USD'], start: midnight(2) }, rows: 20 },
  { o: { limit: 7 }, rows: 7 },
  { o: { symbols: ['MSFT', 'AAPL'], start: tms(1, 20), limit: 33, columns: ['halted'] }, rows: 33 },
  { o: { symbols: ['EUR/USD'], limit: 1000 }, rows: 40 },
]

describe.each(BACKENDS)('read cache over $name', (backend) => {
  describe.skipIf(backend.skip)('behaviour', () => {
    let raw: DataStorage
    const ds = uniqueDataset('rc')

    beforeAll(async () => {
      raw = backend.make()
      await raw.write(ds, rows())
    })
    afterAll(async () => {
      await raw?.close()
    })

    it.each([[['symbol', 'date']], [['date']], [['symbol', 'month']]])(
      'equals storage.read for every filter, cold and warm (partition_by %j)',
      async (partitionBy) => {
        const store = backend.make(partitionBy)
        const name = uniqueDataset('rc_eq')
        const c = withReadCache(store, cacheOpts)
        try {
          await store.write(name, rows())
          for (const { o, rows: n } of FILTERS) {
            expect((await expectSame(c, store, name, o)).length, JSON.stringify(o)).toBe(n)
            const before = c.readCache.stats()
            expect((await expectSame(c, store, name, o)).length).toBe(n)
            const after = c.readCache.stats()
            expect(after.misses, JSON.stringify(o)).toBe(before.misses)
            expect(after.hits, JSON.stringify(o)).toBeGreaterThan(before.hits)
          }
          // empty results and bad options are the backend's own answer
          expect((await expectSame(c, store, name, { start: tms(9) })).length).toBe(0)
          expect((await expectSame(c, store, name, { symbols: ['NOPE'] })).length).toBe(0)
          expect((await expectSame(c, store, name, { start: tms(2), end: tms(2) })).length).toBe(0)
          // an end before the start is refused by the front, under the cache as without it
          for (const s of [c, store]) {
            await expect(s.read(name, { start: tms(2), end: tms(1) })).rejects.toMatchObject({ code: 'validation_error' })
          }
          await expect(c.read(name, { columns: ['nope'] })).rejects.toMatchObject({ code: 'validation_error' })
          await expect(c.read(name, { start: 'yesterday' })).rejects.toMatchObject({ code: 'validation_error' })
        } finally {
          await c.close()
        }
      },
    )

    it('a repeated read is all hits and only lists partitions', async () => {
      const c = withReadCache(raw, cacheOpts)
      const o = { symbols: ['AAPL', 'MSFT'], start: midnight(1), end: tms(3, 30) }
      const b1 = raw.requestStats()
      const first = await c.read(ds, o)
      const cold = delta(raw.requestStats(), b1)
      expect(c.readCache.stats()).toMatchObject({ hits: 0, misses: 6, entries: 6 })

      const b2 = raw.requestStats()
      const second = await c.read(ds, o)
      const warm = delta(raw.requestStats(), b2)
      expect(c.readCache.stats()).toMatchObject({ hits: 6, misses: 6, entries: 6, hitRate: 0.5 })
      expect(rowsOf(second)).toEqual(rowsOf(first))
      expect(second.length).toBe(2 * (10 + 10 + 5))

      const b3 = raw.requestStats()
      await raw.listPartitions(ds, o)
      const listing = delta(raw.requestStats(), b3)
      expect(warm, JSON.stringify({ cold, warm, listing })).toEqual(listing)
      expect(warm.get, JSON.stringify({ cold, warm })).toBeLessThan(cold.get)
      expect(warm.bytesRead).toBeLessThan(cold.bytesRead)

      // a result is never the cached table itself (here: exactly one whole partition)
      const one = { symbols: ['AAPL'], start: midnight(0), end: midnight(1) }
      const r1 = await c.read(ds, one)
      const r2 = await c.read(ds, one)
      expect(r2.length).toBe(10)
      expect(r2.columns.close.values).not.toBe(r1.columns.close.values)
      ;(r2.columns.close.values as Float64Array)[0] = -1
      ;(r2.columns.venue.values as string[])[1] = 'changed'
      expect(rowsOf(await c.read(ds, one))).toEqual(rowsOf(r1))
    })

    it('sees writes and deletes through the wrapper and through another instance', async () => {
      const name = uniqueDataset('rc_inv')
      await raw.write(name, rows())
      const c = withReadCache(raw, cacheOpts)
      const other = backend.make()
      const expectFresh = () => expectSame(c, raw, name, {})
      const closeAt = (t: Table, symbol: string, tsMs: number) =>
        rowsOf(t).find((r) => r.symbol === symbol && r.timestamp === us(tsMs))?.close
      try {
        await expectFresh()
        const s0 = c.readCache.stats()

        // through the wrapper: its partition's entries are dropped
        await c.write(name, [{ symbol: 'AAPL', timestamp: tms(1, 7), close: 999 }])
        expect(c.readCache.stats().invalidations).toBe(s0.invalidations + 1)
        expect(closeAt(await expectFresh(), 'AAPL', tms(1, 7))).toBe(999)

        // another instance (another process): seen through the version check
        const s1 = c.readCache.stats()
        await other.write(name, [{ symbol: 'MSFT', timestamp: tms(2, 14), close: 555 }])
        expect(closeAt(await expectFresh(), 'MSFT', tms(2, 14))).toBe(555)
        const s2 = c.readCache.stats()
        expect(s2.invalidations).toBe(s1.invalidations + 1)
        expect(s2.misses).toBe(s1.misses + 1)
        expect(s2.hits).toBe(s1.hits + 11)

        // a delete by another instance, of some rows and of a whole partition
        await other.delete(name, { symbols: ['MSFT'], start: tms(3), end: tms(3, 30) })
        await other.delete(name, { symbols: ['EUR/USD'], start: midnight(0), end: midnight(1) })
        const afterDelete = await expectFresh()
        expect(afterDelete.length).toBe(120 - 5 - 10)
        expect(c.readCache.stats().invalidations).toBe(s2.invalidations + 1)

        // a delete through the wrapper
        const s3stats = c.readCache.stats()
        await c.delete(name, { symbols: ['AAPL'], start: midnight(2), end: midnight(3) })
        expect(c.readCache.stats().invalidations).toBe(s3stats.invalidations + 1)
        expect((await expectFresh()).length).toBe(120 - 5 - 10 - 10)
      } finally {
        await other.close()
      }
    })

    it('expires entries after the TTL (injected clock)', async () => {
      let now = 0
      const c = withReadCache(raw, new ReadCache({ ttlMs: 1000, maxBytes: 64 * MB, now: () => now }))
      const o = { symbols: ['EUR/USD'] }
      await c.read(ds, o)
      expect(c.readCache.stats()).toMatchObject({ misses: 4, hits: 0, expirations: 0 })
      now = 1000
      await c.read(ds, o)
      expect(c.readCache.stats()).toMatchObject({ misses: 4, hits: 4, expirations: 0, entries: 4 })
      now = 1001
      expect(c.readCache.stats()).toMatchObject({ entries: 0, expirations: 4 })
      expect(rowsOf(await c.read(ds, o))).toEqual(rowsOf(await raw.read(ds, o)))
      expect(c.readCache.stats()).toMatchObject({ misses: 8, hits: 4, expirations: 4, entries: 4 })
      now = 2001
      await c.read(ds, o)
      expect(c.readCache.stats()).toMatchObject({ misses: 8, hits: 8 })
      now = 2002
      await c.read(ds, o)
      expect(c.readCache.stats()).toMatchObject({ misses: 12, hits: 8, expirations: 8 })
    })

    it('stays under maxBytes, evicting the least recently used', async () => {
      // one partition entry: 10 rows of 6 columns, about 1 KB
      const probe = withReadCache(raw, cacheOpts)
      await probe.read(ds, { symbols: ['AAPL'], start: midnight(0), end: midnight(1) })
      const one = probe.readCache.stats().bytes
      expect(one).toBeGreaterThan(500)
      expect(one).toBeLessThan(4000)

      const maxBytes = Math.floor(one * 3.5)
      const c = withReadCache(raw, { ttlMs: 60_000, maxBytes })
      for (const o of [{}, { symbols: ['MSFT'] }, {}]) {
        await expectSame(c, raw, ds, o)
        const s = c.readCache.stats()
        expect(s.bytes).toBeLessThanOrEqual(maxBytes)
        expect(s.entries).toBe(3)
        // every miss stored an entry; all but the ones held were evicted
        expect(s.evictions).toBe(s.misses - s.entries)
      }
      expect(c.readCache.stats().evictions).toBeGreaterThanOrEqual(19)

      // an entry bigger than the whole cache is not kept
      const tiny = withReadCache(raw, { ttlMs: 60_000, maxBytes: 100 })
      await expectSame(tiny, raw, ds, { symbols: ['AAPL'] })
      expect(tiny.readCache.stats()).toMatchObject({ entries: 0, bytes: 0, misses: 4, evictions: 0 })
    })

    it('GET /v1/cache/stats returns the counters, { enabled: false } without a cache', async () => {
      const c = withReadCache(raw, cacheOpts)
      await c.read(ds, { symbols: ['AAPL'] })
      await c.read(ds, { symbols: ['AAPL'] })
      const res = await createApp({ storage: c }).request('/v1/cache/stats')
      expect(res.status).toBe(200)
      const body = (await res.json()) as ReadCacheStats
      expect(body).toEqual(c.readCache.stats())
      expect(body).toMatchObject({
        enabled: true,
        hits: 4,
        misses: 4,
        entries: 4,
        hitRate: 0.5,
        ttlMs: 60_000,
        maxBytes: 64 * MB,
      })
      expect(body.bytes).toBeGreaterThan(0)

      const plain = await createApp({ storage: raw }).request('/v1/cache/stats')
      expect(plain.status).toBe(200)
      expect(await plain.json()).toEqual({ enabled: false })

      const bad = await createApp({ storage: c }).request('/v1/cache/stats?verbose=1')
      expect(bad.status).toBe(400)
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('validation_error')
      const post = await createApp({ storage: c }).request('/v1/cache/stats', { method: 'POST' })
      expect(post.status).toBe(405)
    })
  })
})

describe('read cache config', () => {
  it('createStorage puts the cache inside the op log: both reachable, reads still recorded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-read-cache-cfg-'))
    const storage = createStorage(
      { storage: { local_parquet: { base_dir: dir }, read_cache: { enabled: true, ttl_seconds: 2, max_mb: 1 } } },
      {},
    )
    try {
      const cache = storage.readCache
      expect(cache).toBeInstanceOf(ReadCache)
      expect(cache!.stats()).toMatchObject({ ttlMs: 2000, maxBytes: MB })
      expect(storage.oplog).toBeDefined()
      const ds = uniqueDataset('rc_cfg')
      await storage.write(ds, rows())
      await storage.read(ds, { symbols: ['AAPL'] })
      await storage.read(ds, { symbols: ['AAPL'] })
      expect(cache!.stats()).toMatchObject({ hits: 4, misses: 4 })
      const reads = await storage.oplog!.query({ dataset: ds, op: 'read', limit: 10 })
      expect(reads).toHaveLength(2)
      expect(reads.every((r) => r.rows === 40)).toBe(true)
    } finally {
      await storage.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('on by default (300 s, 64 MiB); off with enabled: false or READ_CACHE_ENABLED=false; READ_CACHE_* env sets it; bad sizes are config errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-read-cache-cfg-'))
    const byDefault = createStorage({ storage: { local_parquet: { base_dir: dir } } }, {})
    expect(byDefault.readCache?.stats()).toMatchObject({ ttlMs: 300_000, maxBytes: 64 * MB })
    await byDefault.close()
    for (const [config, env] of [
      [{ read_cache: { enabled: false } }, {}],
      [{}, { READ_CACHE_ENABLED: 'false' }],
    ] as const) {
      const storage = createStorage({ storage: { local_parquet: { base_dir: dir }, ...config } }, env)
      expect(storage.readCache).toBeUndefined()
      await storage.close()
    }
    const fromEnv = createStorage(
      { storage: { local_parquet: { base_dir: dir }, read_cache: { enabled: false } } },
      { READ_CACHE_ENABLED: 'true', READ_CACHE_TTL_SECONDS: '7', READ_CACHE_MAX_MB: '2' },
    )
    try {
      expect(fromEnv.readCache?.stats()).toMatchObject({ ttlMs: 7000, maxBytes: 2 * MB })
    } finally {
      await fromEnv.close()
      await rm(dir, { recursive: true, force: true })
    }
    expect(() => createStorage({ storage: { read_cache: { ttl_seconds: 0 } } }, {})).toThrow(ConfigError)
    expect(() => createStorage({ storage: { read_cache: { max_mb: -1 } } }, {})).toThrow(/read_cache\.max_mb/)
    expect(() => new ReadCache({ ttlMs: Number.NaN, maxBytes: 10 })).toThrow(ConfigError)
  })
})
