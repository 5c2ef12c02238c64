/**
 * The operation log on every backend (local lake, S3 lake on radosgw, PostgreSQL, MongoDB on
 * CongoDB): a record per operation with the right figures, batched durable storage that a new
 * instance reads back, exact retention (injected clock, no sleeps), and the HTTP route. Levels,
 * validation and the Worker-style `settle()` run on the local lake (they do not depend on the
 * backend). A backend whose server is absent skips and says so (under CI it fails).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MongoClient } from 'mongodb'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { createMongoStorage } from '../src/backends/mongodb/index.js'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { createPgPool } from '../src/backends/postgres/node.js'
import { parseConfig } from '../src/config/load.js'
import type { MetadataLoggingConfig } from '../src/config/schema.js'
import { StorageError } from '../src/core/errors.js'
import type { OpLog, OpRecord } from '../src/core/oplog-types.js'
import type { DataStorage } from '../src/core/types.js'
import { createApp } from '../src/http/app.js'
import { createLakeStorage, type LakeDataStorage } from '../src/lake/lake-storage.js'
import { createStorage } from '../src/node.js'
import { attachOpLog } from '../src/oplog/attach.js'
import { BufferedOpLog, type OpLogOptions } from '../src/oplog/buffered-op-log.js'
import { newOpRecord } from '../src/oplog/records.js'
import type { PutOptions } from '../src/stores/types.js'
import { bars, midnight, uniqueDataset } from './conformance/storage.case.js'
import { requireMongoOrSkip } from './helpers/mongo.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection } from './helpers/s3.js'

const DAY = 86_400_000
/** The op log's clock in these tests: fixed unless a test moves it. */
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0)
let now = NOW
const clock = () => now
beforeEach(() => {
  now = NOW
})

const LOGGING: MetadataLoggingConfig = {
  enabled: true,
  log_operations: true,
  log_performance: true,
  log_errors: true,
  retention_days: 30,
}

/** Lines the op log printed (instead of console.error). */
let printed: string[] = []

/** `raw` with an op log that flushes only when told (or on close), on the test clock. */
function logged(raw: DataStorage, config: Partial<MetadataLoggingConfig> = {}, options: Partial<OpLogOptions> = {}) {
  const storage = attachOpLog(
    raw,
    { ...LOGGING, ...config },
    {
      now: clock,
      flushIntervalMs: 3_600_000,
      flushRecords: 100_000,
      retentionEveryMs: Number.POSITIVE_INFINITY, // only when a test asks for it
      logger: (m) => printed.push(m),
      ...options,
    },
  )
  return { storage, oplog: storage.oplog as OpLog }
}

interface Backend {
  name: string
  /** A new storage instance on the same location, without an op log of its own. */
  make(): DataStorage
  /** Stored op-log batches (objects or rows) right now, for the batching test. */
  batches?(): Promise<number>
  cleanup(): Promise<void>
}

const off = { enabled: false }

async function localBackend(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), 'friday-oplog-'))
  const make = () =>
    createStorage({ storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir }, metadata_logging: off } }, {})
  return {
    name: 'local_parquet',
    make,
    async batches() {
      const s = make() as LakeDataStorage
      const n = (await s.store.list('_oplog/')).objects.length
      await s.close()
      return n
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

async function s3Backend(): Promise<Backend | null> {
  const config = await requireS3OrSkip()
  if (!config) return null
  const bucket = `friday-oplog-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
  const make = () =>
    createStorage(
      {
        storage: {
          default_backend: 's3_parquet',
          metadata_logging: off,
          s3_parquet: s3ParquetSection(config, bucket),
        },
      },
      {},
    )
  return {
    name: 's3_parquet',
    make,
    async batches() {
      const s = make() as LakeDataStorage
      const n = (await s.store.list('_oplog/')).objects.length
      await s.close()
      return n
    },
    cleanup: () => deleteTestBucket(config, bucket),
  }
}

async function postgresBackend(): Promise<Backend | null> {
  const server = await requirePostgresOrSkip()
  if (!server) return null
  const schema = `oplog_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`
  const admin = createPgPool(server.url, { max: 1 })
  return {
    name: 'postgres',
    make: () =>
      createStorage(
        { storage: { default_backend: 'postgres', metadata_logging: off, postgres: { url: server.url, driver: 'pg', schema } } },
        {},
      ),
    async batches() {
      // one INSERT statement per flush: count distinct transactions that inserted rows
      const res = await admin.query({ text: `SELECT count(DISTINCT xmin::text)::int AS n FROM "${schema}".friday_oplog` })
      return res.rows[0].n as number
    },
    async cleanup() {
      await admin.query({ text: `DROP SCHEMA IF EXISTS "${schema}" CASCADE` })
      await admin.end()
      await server.stop()
    },
  }
}

async function mongoBackend(): Promise<Backend | null> {
  const server = await requireMongoOrSkip()
  if (!server) return null
  const client: MongoClient = server.client()
  const db = `friday_oplog_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`
  return {
    name: `mongodb (${server.kind})`,
    make: () => createMongoStorage({ client: () => client, db, closeClient: false }),
    async cleanup() {
      await client
        .db(db)
        .dropDatabase()
        .catch(() => undefined)
      await client.close()
      await server.stop()
    },
  }
}

const BACKENDS: { name: string; open: () => Promise<Backend | null> }[] = [
  { name: 'local_parquet', open: localBackend },
  { name: 's3_parquet', open: s3Backend },
  { name: 'postgres', open: postgresBackend },
  { name: 'mongodb', open: mongoBackend },
]

const opened: Backend[] = []
afterAll(async () => {
  for (const b of opened) await b.cleanup()
})

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError)
    return err as StorageError
  }
  throw new Error('expected a rejection')
}

const oldestFirst = (records: OpRecord[]) => [...records].reverse()

for (const { name, open } of BACKENDS) {
  const backend = await open()
  if (backend) opened.push(backend)

  describe.skipIf(!backend)(`op log on ${name}`, () => {
    const b = backend as Backend

    it('records write, read, scan, delete, verify and gc with rows, partitions and outcome; failures with their code', async () => {
      const { storage, oplog } = logged(b.make())
      try {
        const ds = uniqueDataset('ops')
        const rows = bars(['AAPL', 'MSFT'], [0, 1], 3) // 12 rows in 4 symbol-day partitions
        const w = await storage.write(ds, rows)
        const t = await storage.read(ds, { symbols: ['AAPL'] })
        let scanned = 0
        for await (const batch of storage.scan(ds, { batchSize: 4 })) scanned += batch.length
        const d = await storage.delete(ds, { symbols: ['MSFT'], start: midnight(1) })
        const v = await storage.verify(ds)
        const g = await storage.gc({ dataset: ds, graceMs: 0 })
        const dup = await rejection(storage.write(ds, [{ ...rows[0], close: -1 }], { mode: 'append' }))
        const bad = await rejection(storage.write('no/such name', rows))

        const records = oldestFirst(await oplog.query({ dataset: ds, limit: 100 }))
        expect(records.map((r) => r.op)).toEqual(['write', 'read', 'scan', 'delete', 'verify', 'gc', 'write'])
        const [wr, rd, sc, del, ver, gc, failed] = records

        expect(wr).toMatchObject({ dataset: ds, rows: 12, partitionCount: 4, outcome: 'ok', error: null, retries: 0 })
        expect(wr.partitions).toEqual(w.partitions.map((p) => p.path))
        expect(wr.partitions).toHaveLength(4)
        expect(wr.requests.put).toBeGreaterThan(0)
        expect(wr.bytes).toBeGreaterThan(0)
        expect(wr.durationMs).toBeGreaterThan(0)
        expect(wr.at).toBe(new Date(NOW).toISOString())
        expect(wr.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/)
        expect(wr.details).toMatchObject({ mode: 'upsert' })

        expect(t.length).toBe(6)
        expect(rd).toMatchObject({ rows: 6, outcome: 'ok', partitions: [], details: { symbols: ['AAPL'] } })
        expect(rd.requests.get).toBeGreaterThan(0)
        expect(scanned).toBe(12)
        expect(sc).toMatchObject({ rows: 12, outcome: 'ok' })

        expect(d.rowsDeleted).toBe(3)
        expect(del).toMatchObject({ rows: 3, partitionCount: d.partitions.length, outcome: 'ok' })
        expect(del.partitions).toEqual(d.partitions.map((p) => p.path))

        expect(v.ok).toBe(true)
        expect(ver).toMatchObject({ outcome: 'ok', partitionCount: v.partitions, details: { ok: true, problems: 0 } })
        expect(gc).toMatchObject({ outcome: 'ok', details: { filesDeleted: g.filesDeleted, dryRun: false, graceMs: 0 } })

        expect(failed).toMatchObject({ outcome: 'error', rows: 0, error: { code: dup.code, message: dup.message } })
        const [badRecord] = await oplog.query({ dataset: 'no/such name', limit: 10 })
        expect(badRecord).toMatchObject({ op: 'write', outcome: 'error', error: { code: 'validation_error' } })
        expect(bad.code).toBe('validation_error')
        // errors also go to the runtime's log
        expect(printed.some((line) => line.includes(dup.code) && line.includes(ds))).toBe(true)
      } finally {
        await storage.close()
      }
    })

    it('stores a flush as one batch, and a new instance reads the records back', async () => {
      const { storage, oplog } = logged(b.make())
      const ds = uniqueDataset('batch')
      await storage.write(ds, bars(['AAPL'], [0], 2))
      await oplog.flush() // first flush: creates the table/index where there is one
      const batchesBefore = await b.batches?.()
      for (let i = 0; i < 40; i++) await storage.read(ds, { limit: 1 })
      const before = storage.requestStats()
      await oplog.flush()
      const after = storage.requestStats()
      expect(after.put - before.put).toBe(1) // 40 records, one object / statement / insertMany
      if (b.batches) expect((await b.batches()) - batchesBefore!).toBe(1)
      expect(oplog.summary()).toMatchObject({ flushed: 41, pending: 0, batches: 2 })

      const mine = await oplog.query({ dataset: ds, limit: 100 })
      expect(mine).toHaveLength(41)
      await storage.close()

      const { storage: again, oplog: log2 } = logged(b.make())
      try {
        expect(await log2.query({ dataset: ds, limit: 100 })).toEqual(mine)
        expect(await log2.query({ dataset: ds, op: 'write', limit: 100 })).toEqual(mine.filter((r) => r.op === 'write'))
        expect(await log2.query({ dataset: ds, limit: 5 })).toEqual(mine.slice(0, 5))
      } finally {
        await again.close()
      }
    })

    it('close() stores what is buffered', async () => {
      const { storage } = logged(b.make())
      const ds = uniqueDataset('close')
      await storage.write(ds, bars(['AAPL'], [0], 1))
      await storage.close()
      const { storage: again, oplog } = logged(b.make())
      try {
        expect((await oplog.query({ dataset: ds, limit: 10 })).map((r) => r.op)).toEqual(['write'])
      } finally {
        await again.close()
      }
    })

    it('retention removes exactly the records older than retention_days', async () => {
      const { storage, oplog } = logged(b.make(), { retention_days: 30 })
      const ds = uniqueDataset('retention')
      const cutoff = NOW - 30 * DAY
      const at = (ms: number) => newOpRecord('compact', { startedAt: ms, dataset: ds })
      oplog.record(at(NOW - 40 * DAY))
      await oplog.flush()
      const [boundaryOld, boundary, fresh] = [at(cutoff - 1), at(cutoff), at(NOW)]
      for (const r of [boundaryOld, boundary, fresh]) oplog.record(r) // one batch straddling the cutoff
      await oplog.flush()
      expect(await oplog.query({ dataset: ds, limit: 10 })).toHaveLength(4)

      expect(await oplog.applyRetention()).toBe(2)
      expect(await oplog.query({ dataset: ds, limit: 10 })).toEqual([fresh, boundary])
      expect(await oplog.applyRetention()).toBe(0) // idempotent
      const [retention] = await oplog.query({ op: 'retention', limit: 1 })
      expect(retention).toMatchObject({ rows: 2, dataset: null, details: { target: 'oplog' } })
      await storage.close()

      const { storage: again, oplog: log2 } = logged(b.make())
      try {
        expect(await log2.query({ dataset: ds, limit: 10 })).toEqual([fresh, boundary])
      } finally {
        await again.close()
      }
    })

    it('GET /v1/oplog filters by dataset, op and time, newest first, with paging; /v1/stats summarizes', async () => {
      const { storage, oplog } = logged(b.make())
      const app = createApp({ storage, openWrites: true })
      try {
        const ds = uniqueDataset('api')
        const other = uniqueDataset('api_other')
        now = NOW
        await storage.write(ds, bars(['AAPL'], [0], 2))
        now = NOW + 1000
        await storage.write(other, bars(['AAPL'], [0], 2))
        await oplog.flush() // the first two stored, the rest still buffered: the route reads both
        now = NOW + 2000
        await storage.read(ds)
        now = NOW + 3000
        await storage.delete(ds, { symbols: ['AAPL'] })

        const get = async (query: string) => {
          const res = await app.request(`/v1/oplog?${query}`)
          expect(res.status, await res.clone().text()).toBe(200)
          return (await res.json()) as { enabled: boolean; records: OpRecord[]; next: { until: string } | null }
        }
        const all = await get(`dataset=${ds}`)
        expect(all.enabled).toBe(true)
        expect(all.records.map((r) => r.op)).toEqual(['delete', 'read', 'write'])
        expect(all.next).toBeNull()
        expect((await get(`dataset=${ds}&op=write`)).records.map((r) => r.at)).toEqual([new Date(NOW).toISOString()])
        expect((await get(`dataset=${other}`)).records.map((r) => r.op)).toEqual(['write'])

        const since = new Date(NOW + 2000).toISOString()
        expect((await get(`dataset=${ds}&since=${since}`)).records.map((r) => r.op)).toEqual(['delete', 'read'])
        expect((await get(`dataset=${ds}&until=${NOW + 2000}`)).records.map((r) => r.op)).toEqual(['write'])
        expect((await get(`dataset=${ds}&since=${NOW + 1}&until=${NOW + 3000}`)).records.map((r) => r.op)).toEqual(['read'])

        const first = await get(`dataset=${ds}&limit=2`)
        expect(first.records.map((r) => r.op)).toEqual(['delete', 'read'])
        expect(first.next).toEqual({ until: new Date(NOW + 2000).toISOString() })
        const second = await get(`dataset=${ds}&limit=2&until=${encodeURIComponent(first.next!.until)}`)
        expect(second.records.map((r) => r.op)).toEqual(['write'])
        expect(second.next).toBeNull()

        const stats = await (await app.request('/v1/stats')).json()
        expect(stats.oplog).toMatchObject({ enabled: true, flushed: 2, pending: 2 })
        expect(stats.oplog.operations.write).toMatchObject({ ok: 2, error: 0 })
        expect(stats.oplog.operations.read.ok).toBe(1)
        expect(stats.oplog.operations.write.p50Ms).toBeGreaterThan(0)
        expect(stats.oplog.operations.write.p99Ms).toBeGreaterThanOrEqual(stats.oplog.operations.write.p50Ms)
      } finally {
        await storage.close()
      }
    })
  })
}

describe('op log levels (local lake)', () => {
  let dir: string
  const make = () =>
    createStorage({ storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir }, metadata_logging: off } }, {})
  beforeEach(async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'friday-oplog-levels-'))
    printed = []
  })
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  async function runOps(storage: DataStorage, ds: string): Promise<StorageError> {
    await storage.write(ds, bars(['AAPL'], [0], 2))
    await storage.read(ds)
    return rejection(storage.write(ds, [{ ...bars(['AAPL'], [0], 1)[0], close: -1 }], { mode: 'append' }))
  }

  it('log_operations off: only failed operations are recorded, and printed', async () => {
    const { storage, oplog } = logged(make(), { log_operations: false })
    const ds = uniqueDataset('levels')
    const err = await runOps(storage, ds)
    await storage.close()
    const { storage: again, oplog: log2 } = logged(make())
    const stored = await log2.query({ dataset: ds, limit: 10 })
    await again.close()
    expect(stored.map((r) => [r.op, r.outcome])).toEqual([['write', 'error']])
    expect(stored[0].error?.code).toBe(err.code)
    expect(printed).toHaveLength(1)
    expect(printed[0]).toContain(`write ${ds} failed`)
    expect(oplog.summary().operations).toEqual({ write: expect.objectContaining({ ok: 0, error: 1 }) })
  })

  it('log_errors off: failed operations are recorded with the others but not printed', async () => {
    const { storage, oplog } = logged(make(), { log_errors: false })
    const ds = uniqueDataset('levels')
    await runOps(storage, ds)
    expect((await oplog.query({ dataset: ds, limit: 10 })).map((r) => r.outcome)).toEqual(['error', 'ok', 'ok'])
    expect(printed).toEqual([])
    await storage.close()
  })

  it('log_errors and log_operations off: nothing is recorded', async () => {
    const { storage, oplog } = logged(make(), { log_errors: false, log_operations: false })
    const ds = uniqueDataset('levels')
    await runOps(storage, ds)
    expect(await oplog.query({ dataset: ds, limit: 10 })).toEqual([])
    expect(oplog.summary().recorded).toBe(0)
    expect(printed).toEqual([])
    await storage.close()
  })

  it('log_performance off: durations, bytes and requests are stored as 0 and the summary has no percentiles', async () => {
    const { storage, oplog } = logged(make(), { log_performance: false })
    const ds = uniqueDataset('levels')
    await runOps(storage, ds)
    const records = await oplog.query({ dataset: ds, limit: 10 })
    expect(records).toHaveLength(3)
    for (const r of records) {
      expect(r.durationMs).toBe(0)
      expect(r.bytes).toBe(0)
      expect(r.requests).toEqual({ get: 0, put: 0, list: 0, delete: 0, head: 0 })
    }
    expect(records[2].rows).toBe(2) // figures that are not performance stay
    expect(oplog.summary().operations.write).toEqual({ ok: 1, error: 1, p50Ms: null, p99Ms: null })
    await storage.close()
  })

  it('enabled: false attaches no op log; the routes say so', async () => {
    const storage = make()
    expect(storage.oplog).toBeUndefined()
    const app = createApp({ storage, openWrites: true })
    expect(await (await app.request('/v1/oplog')).json()).toEqual({ enabled: false, records: [], next: null })
    expect((await (await app.request('/v1/stats')).json()).oplog).toEqual({ enabled: false })
    await storage.close()
  })

  it('createStorage attaches the op log by default, and METADATA_LOGGING_ENABLED=false turns it off', async () => {
    const config = { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } }
    const on = createStorage(config, {})
    expect(on.oplog).toBeDefined()
    const ds = uniqueDataset('default')
    await on.write(ds, bars(['AAPL'], [0], 1))
    await on.close()
    const { storage: again, oplog } = logged(make())
    expect((await oplog.query({ dataset: ds, limit: 10 })).map((r) => r.op)).toEqual(['write'])
    await again.close()
    const disabled = createStorage(config, { METADATA_LOGGING_ENABLED: 'false' })
    expect(disabled.oplog).toBeUndefined()
    await disabled.close()
  })

  it('concurrent operations are flagged as sharing request counts; a lone one is exact', async () => {
    const { storage, oplog } = logged(make())
    const ds = uniqueDataset('shared')
    await storage.write(ds, bars(['AAPL', 'MSFT'], [0], 2))
    await Promise.all([storage.read(ds, { symbols: ['AAPL'] }), storage.read(ds, { symbols: ['MSFT'] })])
    await storage.read(ds, { symbols: ['AAPL'] })
    const [lone, a, b2, write] = await oplog.query({ dataset: ds, limit: 10 })
    expect(write.details?.requestsShared).toBeUndefined()
    expect(a.details?.requestsShared).toBe(true)
    expect(b2.details?.requestsShared).toBe(true)
    expect(lone.details?.requestsShared).toBeUndefined()
    expect(lone.requests.get).toBeGreaterThan(0)
    await storage.close()
  })

  it('gc records the partitions it removed files from; a verify that finds damage is an error record', async () => {
    const raw = make() as LakeDataStorage
    const { storage, oplog } = logged(raw)
    const ds = uniqueDataset('damage')
    await storage.write(ds, bars(['AAPL', 'MSFT'], [0], 2))
    const orphan = `${ds}/symbol=MSFT/date=2024-01-02/part-01KAAAAAAAAAAAAAAAAAAAAAAA.parquet`
    await raw.store.put(orphan, new Uint8Array([1, 2, 3]))
    const g = await storage.gc({ dataset: ds, graceMs: 0 })
    expect(g.keys).toEqual([orphan])
    const [gcRecord] = await oplog.query({ dataset: ds, op: 'gc', limit: 1 })
    expect(gcRecord).toMatchObject({
      outcome: 'ok',
      partitions: ['symbol=MSFT/date=2024-01-02'],
      partitionCount: 1,
      details: { filesDeleted: 1, bytesDeleted: 3, keys: 1 },
    })
    expect(gcRecord.requests.delete).toBeGreaterThan(0)

    const [file] = (await raw.store.list(`${ds}/symbol=AAPL/`)).objects.filter((o) => o.key.endsWith('.parquet'))
    await raw.store.put(file.key, new Uint8Array(file.size)) // same size, wrong bytes
    const v = await storage.verify(ds)
    expect(v.ok).toBe(false)
    const [verifyRecord] = await oplog.query({ dataset: ds, op: 'verify', limit: 1 })
    expect(verifyRecord).toMatchObject({
      outcome: 'error',
      error: { code: 'verify_failed' },
      partitions: ['symbol=AAPL/date=2024-01-02'],
      partitionCount: 2,
      details: { ok: false, problems: v.problems.length },
    })
    expect(printed.some((l) => l.includes(`verify ${ds} failed`) && l.includes('verify_failed'))).toBe(true)
    await storage.close()
  })

  it('the _oplog prefix is never a dataset', async () => {
    const { storage, oplog } = logged(make())
    await storage.write(uniqueDataset('listed'), bars(['AAPL'], [0], 1))
    await oplog.flush()
    expect((await (storage as LakeDataStorage).store.list('_oplog/')).objects.length).toBeGreaterThan(0)
    expect(await storage.listDatasets()).not.toContain('_oplog')
    expect((await rejection(storage.write('_oplog', bars(['AAPL'], [0], 1)))).code).toBe('validation_error')
    const app = createApp({ storage })
    expect((await app.request('/v1/datasets/_oplog')).status).toBe(400)
    await storage.close()
  })

  it('the wrapped storage passes every other member through (optional capabilities, getters)', async () => {
    const raw = make() as LakeDataStorage
    const { storage } = logged(raw)
    expect(storage.backend).toBe('local_parquet')
    expect((storage as LakeDataStorage).store).toBe(raw.store)
    expect('oplog' in storage).toBe(true)
    expect('maintain' in storage).toBe('maintain' in raw)
    expect(typeof storage.opLogStore).toBe('function')
    await storage.close()
  })

  it('settle() stores the pending batch once it is due (the Worker hands it to waitUntil)', async () => {
    const { storage, oplog } = logged(make(), {}, { flushIntervalMs: 50 })
    const ds = uniqueDataset('settle')
    await storage.write(ds, bars(['AAPL'], [0], 1))
    expect(oplog.summary().pending).toBe(1)
    await oplog.settle()
    expect(oplog.summary()).toMatchObject({ pending: 0, flushed: 1 })
    const { storage: other, oplog: log2 } = logged(make())
    expect((await log2.query({ dataset: ds, limit: 10 })).map((r) => r.op)).toEqual(['write'])
    await other.close()
    await storage.close()
  })

  it('a failed flush keeps its records for the next one', async () => {
    // A store that fails once on demand, over the real lake store: a real disk cannot be made to fail one PUT.
    const raw = make()
    const real = raw.opLogStore!()
    let failNext = true
    const oplog = new BufferedOpLog({
      store: {
        append: async (records) => {
          if (failNext) {
            failNext = false
            throw new Error('store down')
          }
          await real.append(records)
        },
        query: (q) => real.query(q),
        removeBefore: (cutoff) => real.removeBefore(cutoff),
      },
      now: clock,
      flushIntervalMs: 3_600_000,
      logger: (m) => printed.push(m),
    })
    const ds = uniqueDataset('flaky')
    oplog.record(newOpRecord('compact', { startedAt: NOW, dataset: ds }))
    await oplog.flush()
    expect(oplog.summary()).toMatchObject({ pending: 1, flushed: 0, lastError: { message: 'Error: store down' } })
    expect(printed.some((l) => l.includes('flush failed'))).toBe(true)
    expect(await oplog.query({ dataset: ds, limit: 10 })).toHaveLength(1) // still readable from memory
    await oplog.flush()
    expect(oplog.summary()).toMatchObject({ pending: 0, flushed: 1, lastError: null })
    expect(await real.query({ dataset: ds, limit: 10 })).toHaveLength(1)
    await oplog.close()
    await raw.close()
  })

  it('settle() retries a failed flush before giving up (a Worker may never run the retry timer)', async () => {
    // A store failing the first two appends, over the real lake store: a real disk cannot be made to fail one PUT.
    const raw = make()
    const real = raw.opLogStore!()
    let failures = 2
    let appends = 0
    const flaky = (failing: number) => {
      failures = failing
      return new BufferedOpLog({
        store: {
          append: async (records) => {
            appends++
            if (failures-- > 0) throw new Error('store down')
            await real.append(records)
          },
          query: (q) => real.query(q),
          removeBefore: (cutoff) => real.removeBefore(cutoff),
        },
        now: clock,
        flushIntervalMs: 20, // settle() waits until the batch is due
        settleRetriesMs: [10, 10],
        logger: (m) => printed.push(m),
      })
    }
    const ds = uniqueDataset('settle-retry')
    const oplog = flaky(2)
    oplog.record(newOpRecord('compact', { startedAt: NOW, dataset: ds }))
    await oplog.settle()
    // (the flush timer may have made one of the failed attempts: settle is what must not stop at one)
    expect(appends).toBe(3)
    expect(oplog.summary()).toMatchObject({ pending: 0, flushed: 1, lastError: null })
    expect(await real.query({ dataset: ds, limit: 10 })).toHaveLength(1)
    // a store that stays down: settle gives up after its retries, the record stays buffered
    appends = 0
    const down = flaky(10)
    down.record(newOpRecord('compact', { startedAt: NOW, dataset: ds }))
    await down.settle()
    expect(appends).toBeGreaterThanOrEqual(3)
    expect(down.summary()).toMatchObject({ pending: 1, flushed: 0, lastError: { message: 'Error: store down' } })
    await down.close()
    await oplog.close()
    await raw.close()
  })

  it('retention also runs by itself after a flush once it is due', async () => {
    const { storage, oplog } = logged(make(), { retention_days: 1 }, { retentionEveryMs: 60_000 })
    const ds = uniqueDataset('auto')
    const old = newOpRecord('compact', { startedAt: NOW - 2 * DAY, dataset: ds })
    const fresh = newOpRecord('compact', { startedAt: NOW, dataset: ds })
    oplog.record(old)
    oplog.record(fresh)
    await oplog.flush() // the first flush of this instance: retention is due
    expect(await oplog.query({ dataset: ds, limit: 10 })).toEqual([fresh])
    oplog.record(newOpRecord('compact', { startedAt: NOW - 2 * DAY, dataset: ds }))
    await oplog.flush() // within retentionEveryMs of the last run: not again
    expect(await oplog.query({ dataset: ds, limit: 10 })).toHaveLength(2)
    now = NOW + 60_000
    oplog.record(newOpRecord('compact', { startedAt: now, dataset: ds }))
    await oplog.flush() // due again
    expect((await oplog.query({ dataset: ds, limit: 10 })).map((r) => r.at)).toEqual([new Date(now).toISOString(), fresh.at])
    await storage.close()
  })
})

describe('op log retries (local lake)', () => {
  it('a write that loses a commit race to another writer records the retry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-oplog-retry-'))
    try {
      const ds = uniqueDataset('retry')
      const other = createLakeStorage({ backend: 'local_parquet', store: createLocalFsStore({ baseDir: dir }) })
      await other.write(ds, bars(['AAPL'], [0], 2))
      let raced = false
      const fs = createLocalFsStore({ baseDir: dir })
      // the first manifest commit of this instance finds another writer's commit landed just before it
      const store = new Proxy(fs, {
        get(target, prop, receiver) {
          if (prop !== 'put') return Reflect.get(target, prop, receiver)
          return async (key: string, body: Uint8Array, opts?: PutOptions) => {
            if (!raced && key.includes('/_manifest.v')) {
              raced = true
              await other.write(
                ds,
                bars(['AAPL'], [0], 3).map((r) => ({ ...r, close: 1 })),
              )
            }
            return target.put(key, body, opts)
          }
        },
      })
      const { storage, oplog } = logged(createLakeStorage({ backend: 'local_parquet', store }))
      await storage.write(
        ds,
        bars(['AAPL'], [0], 4).map((r) => ({ ...r, close: 2 })),
      )
      expect(raced).toBe(true)
      const [rec] = await oplog.query({ dataset: ds, op: 'write', limit: 1 })
      expect(rec.outcome).toBe('ok')
      expect(rec.retries).toBe(1)
      expect(storage.requestStats().retries).toBe(1)
      expect((await storage.read(ds)).length).toBe(4)
      await storage.close()
      await other.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('GET /v1/oplog validation and scope', () => {
  let dir: string
  let storage: DataStorage
  afterAll(async () => {
    await storage?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  async function app(tokens?: { token: string; scopes: ('read' | 'write' | 'admin')[] }[]) {
    dir ??= await mkdtemp(join(tmpdir(), 'friday-oplog-api-'))
    storage ??= createStorage({ storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } }, {})
    return createApp({ storage, tokens })
  }

  const cases: [string, string][] = [
    ['op=bogus', 'op'],
    ['limit=0', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=10001', 'limit'],
    ['since=yesterday', 'since'],
    ['until=2024-13-45', 'until'],
    ['since=2024-01-02&until=2024-01-01', 'until'],
    ['dataset=bad%2Fname', 'dataset'],
    ['symbol=AAPL', 'symbol'],
    ['op=write&op=read', 'op'],
  ]
  for (const [query, field] of cases) {
    it(`?${query} is a 400 naming '${field}'`, async () => {
      const res = await (await app()).request(`/v1/oplog?${query}`)
      expect(res.status).toBe(400)
      const body = await res.json()
      expect(body.error.code).toBe('validation_error')
      expect(body.error.details.issues.map((i: { field: string }) => i.field)).toContain(field)
    })
  }

  it('needs the read scope when tokens are configured', async () => {
    const a = await app([
      { token: 'reader', scopes: ['read'] },
      { token: 'writer', scopes: ['write'] },
    ])
    expect((await a.request('/v1/oplog')).status).toBe(401)
    expect((await a.request('/v1/oplog', { headers: { Authorization: 'Bearer writer' } })).status).toBe(403)
    expect((await a.request('/v1/oplog', { headers: { Authorization: 'Bearer reader' } })).status).toBe(200)
    expect((await a.request('/v1/oplog', { method: 'POST' })).status).toBe(405)
  })
})

describe('metadata_logging config', () => {
  it('has defaults, takes the env overrides, and names a bad value by its path', () => {
    expect(parseConfig({}, {}).storage.metadata_logging).toEqual({
      enabled: true,
      log_operations: true,
      log_performance: true,
      log_errors: true,
      retention_days: 90,
    })
    const env = { METADATA_LOGGING_ENABLED: 'false', METADATA_LOGGING_RETENTION_DAYS: '7' }
    expect(parseConfig({}, env).storage.metadata_logging).toMatchObject({ enabled: false, retention_days: 7 })
    const issues = (input: unknown, e = {}) => {
      try {
        parseConfig(input, e)
      } catch (err) {
        return (err as StorageError).details?.issues
      }
      throw new Error('expected a ConfigError')
    }
    expect(issues({ storage: { metadata_logging: { retention_days: 0 } } })).toEqual([
      { path: 'storage.metadata_logging.retention_days', message: 'expected a number of days > 0, got 0' },
    ])
    expect(issues({ storage: { metadata_logging: { log_operation: false } } })).toEqual([
      { path: 'storage.metadata_logging.log_operation', message: "unknown key, did you mean 'log_operations'?" },
    ])
    expect(issues({}, { METADATA_LOGGING_ENABLED: 'maybe' })).toEqual([
      {
        path: 'storage.metadata_logging.enabled',
        message: "expected 'true' | 'false' | '1' | '0', got 'maybe' (from env METADATA_LOGGING_ENABLED)",
      },
    ])
  })
})
