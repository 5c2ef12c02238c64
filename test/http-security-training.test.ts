/**
 * Read-scope work is bounded and reads are not served to strangers (issue 12 item 11), in-process
 * over a real local lake: `windows.lookback`, the symbols a training set reads and the bytes it
 * advertises have limits answered with 422/413 naming the field; the links of one description
 * reuse the built set (no rebuild per link, and still a 409 once the data changed); the Worker
 * without tokens serves reads only with PUBLIC_READS=true.
 */

import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import worker from '../functions/worker.js'
import type { DataStorage } from '../src/core/types.js'
import type { TrainingLimits } from '../src/http/config.js'
import { createApp } from '../src/http/index.js'
import { json, localLake, type TestLake } from './helpers/http.js'

const T0 = Date.UTC(2024, 0, 2, 14, 30)
const DS = 'bars'
const OPTIONS = { features: ['close'], target: 'returns', testSize: 0.2, validationSize: 0.1 }

let lake: TestLake
/** The lake's storage, counting the reads that building a training set makes. */
let storage: DataStorage
let reads = 0

beforeAll(async () => {
  lake = await localLake()
  const cols = { symbol: [] as string[], timestamp: [] as number[], close: [] as number[] }
  for (const s of ['AAA', 'BBB', 'CCC'])
    for (let k = 0; k < 120; k++) {
      cols.symbol.push(s)
      cols.timestamp.push(T0 + k * 60_000)
      cols.close.push(100 + k + s.charCodeAt(0))
    }
  await lake.storage.write(DS, cols)
  storage = Object.create(lake.storage, {
    read: {
      value: (...args: Parameters<DataStorage['read']>) => {
        reads++
        return lake.storage.read(...args)
      },
    },
  })
})
afterAll(async () => {
  await lake?.cleanup()
})

function appWith(training: Partial<TrainingLimits> = {}): Hono {
  return createApp({ storage, openWrites: true, training })
}

function post(app: Hono, body: unknown): Promise<Response> {
  return Promise.resolve(
    app.request(`/v1/datasets/${DS}/training-set`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    }),
  )
}

const spec = (body: unknown) => btoa(JSON.stringify(body)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')

describe('training-set bounds', () => {
  it('windows.lookback above the limit is a 422 naming the field, on the POST and on a crafted link', async () => {
    const app = appWith({ maxLookback: 64 })
    const res = await post(app, { ...OPTIONS, windows: { lookback: 65 } })
    const body = await json(res)
    expect(res.status).toBe(422)
    expect(body.error.code).toBe('limit_exceeded')
    expect(body.error.details.field).toBe('windows.lookback')
    expect(body.error.message).toMatch(/TRAINING_MAX_LOOKBACK/)
    expect((await post(app, { ...OPTIONS, windows: { lookback: 64 } })).status).toBe(200)
    const before = reads
    const link = await app.request(
      `/v1/datasets/${DS}/training-set/train/X.npy?spec=${spec({ ...OPTIONS, windows: { lookback: 1_000_000_000 } })}&fp=0123456789abcdef`,
    )
    const linkBody = await json(link)
    expect(link.status).toBe(422)
    expect(linkBody.error.details.field).toBe('spec.windows.lookback')
    expect(reads).toBe(before) // refused before anything was read
    // the defaults bound it too: the 307 GB link of the report
    const dflt = await post(createApp({ storage, openWrites: true }), { ...OPTIONS, windows: { lookback: 10_000_000 } })
    expect(dflt.status).toBe(422)
  })

  it('a symbols list, or a dataset read whole, above the limit is a 422 naming symbols', async () => {
    const app = appWith({ maxSymbols: 2 })
    const listed = await post(app, { ...OPTIONS, symbols: ['AAA', 'BBB', 'CCC'] })
    expect(listed.status).toBe(422)
    expect((await json(listed)).error.details).toMatchObject({ field: 'symbols', limit: 2, got: 3 })
    const before = reads
    const whole = await post(app, OPTIONS) // every symbol of the dataset: 3
    expect(whole.status).toBe(422)
    expect((await json(whole)).error.details).toMatchObject({ field: 'symbols', got: 3 })
    expect(reads).toBe(before) // counted from the partition listing, before loading
    expect((await post(app, { ...OPTIONS, symbols: ['AAA', 'BBB'] })).status).toBe(200)
  })

  it('a training set whose parts would pass TRAINING_MAX_BYTES is a 413 naming what to lower', async () => {
    const app = appWith({ maxBytes: 15_000 })
    const res = await post(app, { ...OPTIONS, windows: { lookback: 40 } }) // ~21 KB of train windows alone
    const body = await json(res)
    expect(res.status).toBe(413)
    expect(body.error.code).toBe('payload_too_large')
    expect(body.error.details.field).toBe('windows.lookback')
    expect(body.error.details.bytes).toBeGreaterThan(15_000)
    expect((await post(app, { ...OPTIONS, windows: { lookback: 2 } })).status).toBe(200)
  })
})

describe('training-set links reuse the built set', () => {
  async function downloadAll(app: Hono, out: any): Promise<Uint8Array[]> {
    const bodies: Uint8Array[] = []
    for (const s of ['train', 'validation', 'test'])
      for (const p of ['X', 'y', 'timestamps', 'symbols']) {
        const res = await app.request(out.segments[s][p].href)
        expect(res.status).toBe(200)
        bodies.push(new Uint8Array(await res.arrayBuffer()))
      }
    return bodies
  }

  it('twelve link downloads after a description read nothing more; without the cache each rebuilds', async () => {
    const body = { ...OPTIONS, windows: { lookback: 5 } }
    const cached = appWith()
    const out = await json(await post(cached, body))
    const before = reads
    const fromCache = await downloadAll(cached, out)
    expect(reads).toBe(before)

    const uncached = appWith({ cacheBytes: 0 })
    const out2 = await json(await post(uncached, body))
    const before2 = reads
    const rebuilt = await downloadAll(uncached, out2)
    expect(reads).toBeGreaterThanOrEqual(before2 + 12) // what every link cost before
    expect(fromCache).toEqual(rebuilt) // the same bytes
  })

  it('parallel downloads of a link share one build; a write since turns the cached links into 409s', async () => {
    const body = { ...OPTIONS, symbols: ['AAA', 'CCC'] }
    const app = appWith()
    const out = await json(await post(app, body))
    // a fresh app has no cache: four parallel GETs build once
    const fresh = appWith()
    const before = reads
    const hrefs = ['X', 'y', 'timestamps', 'symbols'].map((p) => out.segments.train[p].href as string)
    const results = await Promise.all(hrefs.map((h) => fresh.request(h)))
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200])
    for (const r of results) await r.body?.cancel()
    const oneBuild = reads - before
    expect(oneBuild).toBeGreaterThan(0)
    expect(oneBuild).toBeLessThanOrEqual(3) // one build: the empty read of the schema, one read per listed symbol
    await lake.storage.write(DS, { symbol: ['AAA'], timestamp: [T0 + 500 * 60_000], close: [1] })
    const stale = await app.request(hrefs[0])
    expect(stale.status).toBe(409)
    expect((await json(stale)).error.code).toBe('conflict')
  })
})

describe('the Worker without tokens', () => {
  it('serves no reads (403) unless public reads are enabled, and never writes', async () => {
    const privateApp = createApp({ storage, publicReads: false })
    for (const path of ['/v1/datasets', '/v1/oplog', `/v1/datasets/${DS}/rows`, '/v1/cache/stats']) {
      const res = await privateApp.request(path)
      const body = await json(res)
      expect(res.status, path).toBe(403)
      expect(body.error.message).toMatch(/reads disabled/)
    }
    expect((await post(privateApp, OPTIONS)).status).toBe(403)
    expect((await privateApp.request('/healthz')).status).toBe(200)
    const publicApp = createApp({ storage, publicReads: true })
    expect((await publicApp.request('/v1/datasets')).status).toBe(200)
    const write = await publicApp.request(`/v1/datasets/${DS}/rows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '[]',
    })
    expect(write.status).toBe(403)
  })

  it('functions/worker.ts: weak tokens and CORS without tokens are config errors; no tokens and no PUBLIC_READS: reads 403', async () => {
    const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as never
    const s3 = {
      S3_BUCKET: 'friday-never-used',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    }
    const weak = await worker.fetch(new Request('http://w.example/v1/datasets'), { ...s3, API_TOKENS: 'a=admin' }, ctx)
    expect(weak.status).toBe(500)
    expect((await weak.json()).error.message).toMatch(/API_TOKENS\[0\].*too weak/)
    const cors = await worker.fetch(new Request('http://w.example/v1/datasets'), { ...s3, CORS_ORIGINS: '*' }, ctx)
    expect((await cors.json()).error.message).toMatch(/CORS_ORIGINS/)
    const res = await worker.fetch(new Request('http://w.example/v1/datasets'), s3, ctx)
    expect(res.status).toBe(403)
    expect((await res.json()).error.message).toMatch(/reads disabled: configure API_TOKENS \(or PUBLIC_READS=true/)
  })
})

describe('the training-set body has the rows route deadline', () => {
  it('a body that never finishes arriving is a 408 once max_body_read_seconds passed', async () => {
    const app = createApp({ storage, openWrites: true, limits: { maxBodyReadSeconds: 1 } })
    const enc = new TextEncoder()
    let cancelled = false
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(enc.encode('{"features":')) // and then nothing more
      },
      cancel() {
        cancelled = true
      },
    })
    const started = Date.now()
    const res = await app.request(`/v1/datasets/${DS}/training-set`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit)
    expect(res.status).toBe(408)
    expect((await json(res)).error.code).toBe('limit_exceeded')
    expect(Date.now() - started).toBeLessThan(20_000)
    expect(cancelled).toBe(true)
  })
})
