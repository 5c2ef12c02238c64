/**
 * `storage.limits` reaches every backend through `createStorage` (issue 12, item 4): with tiny
 * configured limits, local, S3 (radosgw), PostgreSQL and MongoDB (CongoDB, or MONGODB_URL) all
 * refuse the same batches the same way (413 for partitions per write and columns per request,
 * 422 for columns per dataset), before anything is stored: no dataset, no new column.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hono } from 'hono'
import { afterAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../src/config/load.js'
import { LimitExceededError } from '../src/core/errors.js'
import type { DataStorage } from '../src/core/types.js'
import { bodyLimitsFromConfig } from '../src/http/body-limits.js'
import { createStorage } from '../src/node.js'
import { uniqueDataset } from './conformance/storage.case.js'
import { json, localLake, type TestLake, testApp } from './helpers/http.js'
import { requireMongoOrSkip } from './helpers/mongo.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection } from './helpers/s3.js'

/** Far below the defaults (1,024 columns, 5,000 partitions), so only configured limits refuse. */
const LIMITS = { max_columns_per_dataset: 4, max_columns_per_request: 4, max_partitions_per_write: 3 }
const T = Date.UTC(2024, 0, 2, 14, 30)

const pg = await requirePostgresOrSkip()
const s3 = await requireS3OrSkip()
const mongo = await requireMongoOrSkip()
const dir = await mkdtemp(join(tmpdir(), 'friday-limits-'))
const bucket = `friday-limits-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`

afterAll(async () => {
  await pg?.stop()
  await mongo?.stop()
  if (s3) await deleteTestBucket(s3, bucket).catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

const BACKENDS: { name: string; skip: boolean; storage: () => Record<string, unknown> }[] = [
  { name: 'local_parquet', skip: false, storage: () => ({ default_backend: 'local_parquet', local_parquet: { base_dir: dir } }) },
  {
    name: 's3_parquet',
    skip: !s3,
    storage: () => ({
      default_backend: 's3_parquet',
      s3_parquet: s3ParquetSection(s3!, bucket),
    }),
  },
  { name: 'postgres', skip: !pg, storage: () => ({ default_backend: 'postgres', postgres: { url: pg!.url, driver: 'pg' } }) },
  {
    name: 'mongodb',
    skip: !mongo,
    storage: () => ({ default_backend: 'mongodb', mongodb: { url: mongo!.url, database: `friday_limits_${Date.now()}` } }),
  },
]

/** The refusal `fn` ends with: a `LimitExceededError` with this status, naming this limit. */
async function refusal(fn: () => Promise<unknown>, status: number, limit: string): Promise<void> {
  const err = await fn().then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(LimitExceededError)
  expect((err as LimitExceededError).status).toBe(status)
  expect((err as LimitExceededError).details).toMatchObject({ limit })
}

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(`configured storage.limits on ${b.name}`, () => {
    let storage: DataStorage
    const open = () => (storage ??= createStorage({ storage: { ...b.storage(), limits: LIMITS } }, {}))
    afterAll(async () => {
      await storage?.close()
    })

    it('a batch touching more partitions than max_partitions_per_write is a 413 and creates no dataset', async () => {
      const s = open()
      const ds = uniqueDataset('lim_parts')
      const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ symbol: `S${i}`, timestamp: T, close: i }))
      await refusal(() => s.write(ds, rows(4)), 413, 'max_partitions_per_write')
      expect(await s.describe(ds)).toBeNull()
      expect(await s.listDatasets()).not.toContain(ds)
      // four rows of three symbols on one day: three partitions, within the limit
      const ok = [...rows(3), { symbol: 'S0', timestamp: T + 60_000, close: 9 }]
      expect((await s.write(ds, ok)).rowsWritten).toBe(4)
      expect((await s.read(ds)).length).toBe(4)
      // an existing dataset refuses the same way, and keeps its rows
      await refusal(() => s.write(ds, rows(4)), 413, 'max_partitions_per_write')
      expect((await s.read(ds)).length).toBe(4)
    }, 60_000)

    it('columns past max_columns_per_request (413) or max_columns_per_dataset (422) are refused, nothing stored', async () => {
      const s = open()
      const ds = uniqueDataset('lim_cols')
      // symbol, timestamp and three more: five columns in one write
      await refusal(() => s.write(ds, [{ symbol: 'A', timestamp: T, a: 1, b: 2, c: 3 }]), 413, 'max_columns_per_request')
      expect(await s.describe(ds)).toBeNull()
      await s.write(ds, [{ symbol: 'A', timestamp: T, a: 1, b: 2 }])
      // a fifth column, one per write: the dataset would pass four
      await refusal(() => s.write(ds, [{ symbol: 'A', timestamp: T, c: 3 }]), 422, 'max_columns_per_dataset')
      const d = await s.describe(ds)
      expect(d?.schema.map((c) => c.name).sort()).toEqual(['a', 'b', 'symbol', 'timestamp'])
      expect((await s.read(ds)).length).toBe(1)
    }, 60_000)
  })
}

describe('the rows route passes its limits to the body parsers (AppOptions.limits)', () => {
  let lake: TestLake
  afterAll(async () => {
    await lake?.cleanup()
  })
  const post = (app: Hono, ds: string, body: BodyInit, type: string) =>
    app.request(`/v1/datasets/${ds}/rows`, { method: 'POST', headers: { 'content-type': type }, body })

  it('max_columns_per_request and the Parquet claims come from the configured limits', async () => {
    lake = await localLake()
    const config = parseConfig({ storage: { limits: { max_columns_per_request: 3, parquet_max_rows: 2 } } }, {})
    const app = testApp(lake.storage, { limits: bodyLimitsFromConfig(config.storage.limits) })
    const wide = await post(app, 'wide', 'symbol,timestamp,a,b\nA,2024-01-02T00:00:00Z,1,2\n', 'text/csv')
    expect(wide.status).toBe(413)
    expect((await json(wide)).error.details).toMatchObject({ limit: 'max_columns_per_request', value: 3 })
    // a 3-row Parquet body (the API's own output) against parquet_max_rows = 2
    await lake.storage.write(
      'src',
      [0, 1, 2].map((i) => ({ symbol: 'A', timestamp: T + i, v: i })),
    )
    const pq = new Uint8Array(await (await app.request('/v1/datasets/src/rows?format=parquet')).arrayBuffer())
    const res = await post(app, 'pq', pq, 'application/vnd.apache.parquet')
    expect(res.status).toBe(413)
    expect(JSON.stringify(await json(res))).toContain('parquet_max_rows')
    expect(await lake.storage.describe('pq')).toBeNull()
    // the defaults take the same body
    expect((await post(testApp(lake.storage), 'pq', pq, 'application/vnd.apache.parquet')).status).toBe(200)
  })

  it('max_concurrent_bodies and max_queued_bodies: one body parsed, one waits, the next is a 429 with Retry-After', async () => {
    lake ??= await localLake()
    const app = testApp(lake.storage, { limits: { maxConcurrentBodies: 1, maxQueuedBodies: 1 } })
    const enc = new TextEncoder()
    let pulled!: () => void
    const reading = new Promise<void>((r) => (pulled = r))
    let push!: ReadableStreamDefaultController<Uint8Array>
    const held = new ReadableStream<Uint8Array>({
      start(c) {
        push = c
        c.enqueue(enc.encode('[{"symbol":"A","timestamp":'))
      },
      pull() {
        pulled()
      },
    })
    const first = app.request('/v1/datasets/gate/rows', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: held,
      duplex: 'half',
    } as RequestInit)
    await reading // the first body holds the only turn
    const row = (v: number) => JSON.stringify([{ symbol: 'A', timestamp: T + v, v }])
    const second = post(app, 'gate', row(1), 'application/json')
    const third = post(app, 'gate', row(2), 'application/json')
    // one of them waits for the turn, the other finds the queue full
    const refused = await Promise.race([second, third])
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect((await json(refused)).error.details).toMatchObject({ limit: 'max_queued_bodies' })
    push.enqueue(enc.encode(`${T},"v":0}]`))
    push.close()
    expect((await first).status).toBe(200)
    const statuses = [(await second).status, (await third).status].sort()
    expect(statuses).toEqual([200, 429])
    expect((await lake.storage.read('gate')).length).toBe(2)
  })
})
