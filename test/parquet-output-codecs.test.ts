/**
 * The Parquet written outside the lakes uses the codecs it is given, never process-wide ones:
 * `createApp({ codecs })` for `GET .../rows?format=parquet` and the training-set Parquet parts,
 * `friday query` (native Snappy unless told otherwise), and the row-retention archives of
 * `createStorageWith(..., { codecs })` and of `mongodbFactory(..., { archiveCodecs })`; the Node/Bun server (`prepareServer`) passes native Snappy. A counting Snappy compressor (the pure-JS one, counted)
 * proves which codecs wrote the pages; the files read back exactly. The lakes' own codecs (the
 * Node entry's native ones) never reach the counter.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mongodbFactory } from '../src/backends/mongodb/index.js'
import { query } from '../src/cli/query.js'
import { createStorageWith } from '../src/config/factory.js'
import { parseConfig } from '../src/config/load.js'
import { createDataStorage } from '../src/core/front.js'
import { rowArchiveRoot } from '../src/core/layout.js'
import type { DataStorage, Table } from '../src/core/types.js'
import { localParquetFactory, nativeCodecs } from '../src/node.js'
import { decodeParquet, jsCodecs, type ParquetCodecs } from '../src/parquet/index.js'
import { prepareServer } from '../src/server/node-server.js'
import { json, localLake, type TestLake, testApp } from './helpers/http.js'
import { requireMongoOrSkip } from './helpers/mongo.js'
import { createTestBucketStore, requireS3OrSkip, type S3TestConfig } from './helpers/s3.js'

const T0 = Date.UTC(2024, 0, 2, 14, 30)
const MIN = 60_000
const DS = 'bars'

/** Pure-JS Snappy, counting the pages it compresses. */
function countingSnappy(): { codecs: ParquetCodecs; pages: () => number } {
  const js = jsCodecs().snappy!.compress!
  let pages = 0
  const compress = (input: Uint8Array) => {
    pages++
    return js(input)
  }
  return { codecs: { snappy: { compress } }, pages: () => pages }
}

/** Two symbols of `minutes` bars, sorted by symbol then time (the order reads return). */
function bars(minutes: number, t0 = T0) {
  const cols = { symbol: [] as string[], timestamp: [] as number[], close: [] as number[] }
  for (const [si, s] of ['AAPL', 'MSFT'].entries()) {
    for (let k = 0; k < minutes; k++) {
      cols.symbol.push(s)
      cols.timestamp.push(t0 + k * MIN)
      cols.close.push(100 + si * 50 + Math.round(Math.sin(k / 5) * 1e4) / 1e4)
    }
  }
  return cols
}

/** The table holds exactly `cols` (timestamps as epoch µs). */
function expectRows(t: Table, cols: ReturnType<typeof bars>): void {
  expect(t.schema.map((c) => [c.name, c.type])).toEqual([
    ['symbol', 'string'],
    ['timestamp', 'timestamp'],
    ['close', 'float64'],
  ])
  expect(t.columns.symbol.values).toEqual(cols.symbol)
  expect(Array.from(t.columns.timestamp.values as Float64Array)).toEqual(cols.timestamp.map((ms) => ms * 1000))
  expect(Array.from(t.columns.close.values as Float64Array)).toEqual(cols.close)
}

let lake: TestLake
let storage: DataStorage
const written = bars(120)

beforeAll(async () => {
  lake = await localLake() // the Node entry: its lake compresses with native Snappy, not the counter
  storage = lake.storage
  await storage.write(DS, written)
})

afterAll(async () => {
  await lake?.cleanup()
})

describe('createApp({ codecs })', () => {
  it('GET rows ?format=parquet compresses its pages with the app codecs; without them, with the pure-JS default', async () => {
    const counting = countingSnappy()
    const res = await testApp(storage, { codecs: counting.codecs }).request(`/v1/datasets/${DS}/rows?format=parquet`)
    expect(res.status).toBe(200)
    const bytes = new Uint8Array(await res.arrayBuffer())
    expect(counting.pages()).toBeGreaterThan(0)
    expectRows(await decodeParquet(bytes), written)

    // the Accept header picks Parquet too, through the same encoder
    const before = counting.pages()
    const viaAccept = await testApp(storage, { codecs: counting.codecs }).request(`/v1/datasets/${DS}/rows`, {
      headers: { accept: 'application/vnd.apache.parquet' },
    })
    expect(viaAccept.status).toBe(200)
    expectRows(await decodeParquet(new Uint8Array(await viaAccept.arrayBuffer())), written)
    expect(counting.pages()).toBeGreaterThan(before)

    // another app, without codecs, never reaches the first one's: pure JS (the same bytes as the
    // counted JS compressor), not the native Snappy the Node entry gave the lake
    const counted = counting.pages()
    const plain = await testApp(storage).request(`/v1/datasets/${DS}/rows?format=parquet`)
    expect(plain.status).toBe(200)
    expect(new Uint8Array(await plain.arrayBuffer())).toEqual(bytes)
    expect(counting.pages()).toBe(counted)
    const native = await testApp(storage, { codecs: nativeCodecs() }).request(`/v1/datasets/${DS}/rows?format=parquet`)
    const nativeBytes = new Uint8Array(await native.arrayBuffer())
    expect(nativeBytes).not.toEqual(bytes) // native and JS Snappy compress these pages differently
    expectRows(await decodeParquet(nativeBytes), written)
    expect(counting.pages()).toBe(counted)
  })

  it('training-set Parquet parts (links and inline) are written with the app codecs', async () => {
    const counting = countingSnappy()
    const app = testApp(storage, { codecs: counting.codecs })
    const body = { features: ['close'], target: 'returns', testSize: 0.2, validationSize: 0.1, format: 'parquet' }
    const post = (b: unknown) =>
      app.request(`/v1/datasets/${DS}/training-set`, {
        method: 'POST',
        body: JSON.stringify(b),
        headers: { 'content-type': 'application/json' },
      })

    const described = await json(await post(body))
    expect(counting.pages()).toBe(0) // links only: nothing encoded yet
    const link = await app.request(described.segments.train.data.href)
    expect(link.status).toBe(200)
    const fromLink = new Uint8Array(await link.arrayBuffer())
    const afterLink = counting.pages()
    expect(afterLink).toBeGreaterThan(0)
    expect((await decodeParquet(fromLink)).length).toBe(described.segments.train.rows)

    const inline = await json(await post({ ...body, inline: true }))
    expect(counting.pages()).toBeGreaterThan(afterLink)
    const b64 = inline.segments.train.data.base64 as string
    expect(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))).toEqual(fromLink)
  })
})

describe('the Node/Bun server (prepareServer)', () => {
  it('answers rows ?format=parquet with native Snappy pages', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-server-codecs-'))
    const server = prepareServer({
      port: 8787, // prepared, not listening: the app checks the Host header's port
      config: { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } },
      env: {},
    })
    try {
      await server.storage.write(DS, written)
      const get = (app: { request: (url: string) => Response | Promise<Response> }) =>
        Promise.resolve(app.request(`http://127.0.0.1:8787/v1/datasets/${DS}/rows?format=parquet`))
      const res = await get(server.app)
      expect(res.status).toBe(200)
      const bytes = new Uint8Array(await res.arrayBuffer())
      expectRows(await decodeParquet(bytes), written)
      const native = new Uint8Array(await (await get(testApp(server.storage, { codecs: nativeCodecs() }))).arrayBuffer())
      const js = new Uint8Array(await (await get(testApp(server.storage))).arrayBuffer())
      expect(native).not.toEqual(js)
      expect(bytes).toEqual(native)
    } finally {
      await server.storage.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('friday query --out x.parquet', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-query-codecs-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('writes with the codecs given, and with native Snappy by default', async () => {
    const counting = countingSnappy()
    const out = (name: string) => join(dir, `${name}.parquet`)
    await query(storage, { dataset: DS, out: out('counted'), codecs: counting.codecs })
    expect(counting.pages()).toBeGreaterThan(0)
    const counted = new Uint8Array(await readFile(out('counted')))
    expectRows(await decodeParquet(counted), written)

    await query(storage, { dataset: DS, out: out('default') })
    await query(storage, { dataset: DS, out: out('native'), codecs: nativeCodecs() })
    await query(storage, { dataset: DS, out: out('js'), codecs: jsCodecs() })
    const [byDefault, native, js] = await Promise.all(['default', 'native', 'js'].map((n) => readFile(out(n))))
    expectRows(await decodeParquet(new Uint8Array(byDefault)), written)
    // native and JS Snappy compress these pages to different bytes: the default is the native one
    expect(native.equals(js)).toBe(false)
    expect(byDefault.equals(native)).toBe(true)
    expect(new Uint8Array(js)).toEqual(counted) // the counter wraps the JS compressor
  })
})

describe('row-retention archives of createStorageWith(..., { codecs })', () => {
  let s3: S3TestConfig | null = null
  let bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined
  let dir: string
  beforeAll(async () => {
    s3 = await requireS3OrSkip()
    if (s3) bucket = await createTestBucketStore('codecs-archive')
    dir = await mkdtemp(join(tmpdir(), 'friday-archive-codecs-'))
  })
  afterAll(async () => {
    await bucket?.cleanup()
    await rm(dir, { recursive: true, force: true })
  })

  /** Retention after 1 day, archives (gzip) to the test bucket. */
  const configOf = (backend: 'local_parquet' | 'mongodb', db = '') =>
    parseConfig(
      {
        storage: {
          default_backend: backend,
          mongodb: { url: 'mongodb://unused', database: db || 'unused' },
          local_parquet: { base_dir: dir },
          read_cache: { enabled: false },
          file_rotation: { row_retention_days: 1 },
          s3_parquet: {
            bucket: bucket!.bucket,
            endpoint: s3!.endpoint,
            region: s3!.region,
            access_key_id: s3!.accessKeyId,
            secret_access_key: s3!.secretAccessKey,
            force_path_style: true,
          },
        },
      },
      {},
    )

  async function archivedTables(): Promise<Table[]> {
    const { objects } = await bucket!.store.list(rowArchiveRoot(DS))
    const out: Table[] = []
    for (const o of objects.sort((a, b) => a.key.localeCompare(b.key))) {
      out.push(await decodeParquet(gunzipSync((await bucket!.store.get(o.key))!.body)))
      await bucket!.store.delete([o.key])
    }
    return out
  }

  it('archives expired rows with the codecs passed to createStorageWith', async (ctx) => {
    if (!s3 || !bucket) return ctx.skip()
    const config = configOf('local_parquet')
    const counting = countingSnappy()
    // a storage without a maintain() of its own gets the database backends' row retention
    const db = createStorageWith(
      {
        local_parquet: (c) => {
          const s = localParquetFactory(c, { codecs: jsCodecs() })
          Object.defineProperty(s, 'maintain', { value: undefined, writable: true, configurable: true })
          return s
        },
      },
      config,
      { codecs: counting.codecs },
    )
    try {
      const old = bars(30)
      const recent = bars(30, T0 + 10 * 86_400_000)
      await db.write(DS, old)
      await db.write(DS, recent)
      expect(counting.pages()).toBe(0) // the lake's own files use the lake's codecs
      const report = await db.maintain!({ dataset: DS, now: () => T0 + 10 * 86_400_000 })
      expect(report.totals.rowsExpired).toBe(60)
      expect(counting.pages()).toBeGreaterThan(0)
      const archived = await archivedTables()
      expect(archived).toHaveLength(1)
      expectRows(archived[0], old)
      const left = await db.read(DS)
      expect(left.length).toBe(60)
      expect(Array.from(left.columns.timestamp.values as Float64Array)).toEqual(recent.timestamp.map((ms) => ms * 1000))
    } finally {
      await db.close()
    }
  })

  it('mongodb archives expired rows with the archiveCodecs passed to mongodbFactory', async (ctx) => {
    if (!s3 || !bucket) return ctx.skip()
    const server = await requireMongoOrSkip()
    if (!server) return ctx.skip()
    const client = server.client()
    const dbName = `friday_codecs_${Date.now().toString(36)}`
    const counting = countingSnappy()
    // the factory gives the driver: fronted as createStorageWith would
    const db = createDataStorage(mongodbFactory(configOf('mongodb', dbName), { client, archiveCodecs: counting.codecs }))
    try {
      const old = bars(30)
      await db.write(DS, old)
      await db.write(DS, bars(30, T0 + 10 * 86_400_000))
      const report = await db.maintain!({ dataset: DS, now: () => T0 + 10 * 86_400_000 })
      expect(report.totals.rowsExpired).toBe(60)
      expect(counting.pages()).toBeGreaterThan(0)
      const archived = await archivedTables()
      expect(archived).toHaveLength(1)
      expectRows(archived[0], old)
    } finally {
      await db.close()
      await client
        .db(dbName)
        .dropDatabase()
        .catch(() => {})
      await client.close()
      await server.stop()
    }
  })
})
