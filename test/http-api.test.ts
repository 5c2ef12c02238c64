/**
 * The HTTP API in-process (`app.request`) over real lakes: every route and body/response format
 * over both the local and the S3 lake, then auth, CORS, health, stats and config.
 */

import Papa from 'papaparse'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { StorageError } from '../src/core/errors.js'
import type { DataStorage, Table } from '../src/core/types.js'
import { createApp, HEALTH_TIMEOUT_MS, httpOptionsFromEnv, parseApiTokens, timingSafeEqual } from '../src/http/index.js'
import { decodeParquet, encodeParquet } from '../src/parquet/index.js'
import { closeOf, rowsOf, T0, tms, uniqueDataset, us } from './conformance/storage.case.js'
import { json, LAKES, localLake, postJson, type TestLake, testApp } from './helpers/http.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { requireS3OrSkip } from './helpers/s3.js'

const s3Available = (await requireS3OrSkip()) !== null
// a throwaway cluster only answers this question when DATABASE_URL is not set (CI sets it)
const pgProbe = await requirePostgresOrSkip()
const pgAvailable = pgProbe !== null
await pgProbe?.stop()

/** Rows of `bars` as row objects with ISO timestamps (what a client sends). */
function barRows(symbols: string[], days: number[], perDay: number): { symbol: string; timestamp: string; close: number }[] {
  const rows = []
  for (const symbol of symbols)
    for (const day of days)
      for (let m = 0; m < perDay; m++)
        rows.push({ symbol, timestamp: new Date(tms(day, m)).toISOString(), close: closeOf(symbol, day, m) })
  return rows
}

/** What `rowsOf(storage.read(...))` gives for `barRows` (timestamps in µs), sorted by symbol, time. */
function expected(rows: { symbol: string; timestamp: string; close: number }[]) {
  return rows
    .map((r) => ({ symbol: r.symbol, timestamp: us(Date.parse(r.timestamp)), close: r.close }))
    .sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : a.timestamp - b.timestamp))
}

/** A response body in any output format → plain rows comparable with `expected` (µs timestamps). */
async function responseRows(res: Response, format: 'json' | 'ndjson' | 'csv' | 'parquet'): Promise<Record<string, unknown>[]> {
  const normalize = (r: Record<string, unknown>) => {
    const out: Record<string, unknown> = { ...r }
    if (typeof out.timestamp === 'string') out.timestamp = us(Date.parse(out.timestamp))
    if (typeof out.close === 'string') out.close = out.close === '' ? null : Number(out.close)
    return out
  }
  if (format === 'parquet') return rowsOf(await decodeParquet(new Uint8Array(await res.arrayBuffer())))
  const text = await res.text()
  if (format === 'json') {
    const body = JSON.parse(text)
    const rows = Array.isArray(body) ? body : body.rows
    return rows.map(normalize)
  }
  if (format === 'ndjson') {
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => normalize(JSON.parse(l)))
  }
  const parsed = Papa.parse<Record<string, string>>(text.trim(), { header: true })
  return parsed.data.map(normalize)
}

function csvOf(rows: { symbol: string; timestamp: string; close: number }[]): string {
  return `symbol,timestamp,close\n${rows.map((r) => `${r.symbol},${r.timestamp},${r.close}`).join('\n')}\n`
}

function ndjsonOf(rows: unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n'
}

function parquetOf(rows: { symbol: string; timestamp: string; close: number }[]): Uint8Array {
  const table: Table = {
    length: rows.length,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'close', type: 'float64' },
    ],
    columns: {
      symbol: { type: 'string', values: rows.map((r) => r.symbol) },
      timestamp: { type: 'timestamp', values: Float64Array.from(rows, (r) => us(Date.parse(r.timestamp))) },
      close: { type: 'float64', values: Float64Array.from(rows, (r) => r.close) },
    },
  }
  return encodeParquet(table)
}

const BODIES = {
  json: { type: 'application/json', encode: (rows: ReturnType<typeof barRows>) => JSON.stringify(rows) },
  ndjson: { type: 'application/x-ndjson', encode: ndjsonOf },
  csv: { type: 'text/csv', encode: csvOf },
  parquet: { type: 'application/vnd.apache.parquet', encode: parquetOf },
} as const

describe.each(LAKES)('HTTP API over the $name lake', ({ name, open }) => {
  const skip = (name === 's3' && !s3Available) || (name === 'postgres' && !pgAvailable)
  let lake: TestLake
  let app: ReturnType<typeof createApp>
  let storage: DataStorage

  beforeAll(async () => {
    if (skip) return
    lake = (await open())!
    storage = lake.storage
    app = testApp(storage)
  })
  afterAll(async () => {
    await lake?.cleanup()
  })

  describe.skipIf(skip)('routes', () => {
    it.each(Object.keys(BODIES) as (keyof typeof BODIES)[])('POST %s rows stores exactly those rows', async (format) => {
      const ds = uniqueDataset(`in_${format}`)
      const rows = barRows(['AAPL', 'MSFT'], [0, 1], 3)
      const { type, encode } = BODIES[format]
      const res = await app.request(`/v1/datasets/${ds}/rows`, {
        method: 'POST',
        body: encode(rows) as BodyInit,
        headers: { 'content-type': type },
      })
      expect(res.status).toBe(200)
      const body = await json(res)
      expect(body.rowsWritten).toBe(12)
      expect(body.partitions.map((p: { path: string }) => p.path).sort()).toEqual([
        'symbol=AAPL/date=2024-01-02',
        'symbol=AAPL/date=2024-01-03',
        'symbol=MSFT/date=2024-01-02',
        'symbol=MSFT/date=2024-01-03',
      ])
      expect(body.partitions[0].values).toHaveProperty('symbol')
      expect(rowsOf(await storage.read(ds))).toEqual(expected(rows))
    })

    it.each(['json', 'ndjson', 'csv', 'parquet'] as const)('GET rows ?format=%s returns the rows', async (format) => {
      const ds = uniqueDataset(`out_${format}`)
      const rows = barRows(['AAPL', 'EUR/USD'], [0, 1], 4)
      expect((await postJson(app, `/v1/datasets/${ds}/rows`, rows)).status).toBe(200)
      const res = await app.request(`/v1/datasets/${ds}/rows?format=${format}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toContain(
        { json: 'application/json', ndjson: 'application/x-ndjson', csv: 'text/csv', parquet: 'application/vnd.apache.parquet' }[
          format
        ],
      )
      expect(await responseRows(res, format)).toEqual(expected(rows))
    })

    it('negotiates the response format from Accept; ?format= wins over Accept', async () => {
      const ds = uniqueDataset('accept')
      const rows = barRows(['AAPL'], [0], 3)
      await postJson(app, `/v1/datasets/${ds}/rows`, rows)
      const cases: [Record<string, string>, string, string, 'json' | 'ndjson' | 'csv' | 'parquet'][] = [
        [{}, '', 'application/json', 'json'],
        [{ accept: 'text/csv' }, '', 'text/csv', 'csv'],
        [{ accept: 'application/x-ndjson' }, '', 'application/x-ndjson', 'ndjson'],
        [{ accept: 'application/vnd.apache.parquet' }, '', 'application/vnd.apache.parquet', 'parquet'],
        [{ accept: 'text/csv;q=0.5, application/x-ndjson' }, '', 'application/x-ndjson', 'ndjson'],
        [{ accept: 'text/csv' }, '?format=json', 'application/json', 'json'],
      ]
      for (const [headers, qs, type, format] of cases) {
        const res = await app.request(`/v1/datasets/${ds}/rows${qs}`, { headers })
        expect(res.status, JSON.stringify(headers)).toBe(200)
        expect(res.headers.get('content-type'), JSON.stringify(headers)).toContain(type)
        expect(await responseRows(res, format)).toEqual(expected(rows))
      }
    })

    it('filters rows by symbols, start/end (ISO and epoch ms), columns and limit', async () => {
      const ds = uniqueDataset('filters')
      const rows = barRows(['AAPL', 'MSFT', 'NVDA'], [0, 1, 2], 5).map((r, i) => ({ ...r, volume: i }))
      expect((await postJson(app, `/v1/datasets/${ds}/rows`, rows)).status).toBe(200)
      const get = async (qs: string) => {
        const res = await app.request(`/v1/datasets/${ds}/rows?format=ndjson&${qs}`)
        expect(res.status, qs).toBe(200)
        return responseRows(res, 'ndjson')
      }
      const inDay1 = (r: { timestamp: string }) => Date.parse(r.timestamp) >= tms(1) && Date.parse(r.timestamp) < tms(2)
      const want = (filter: (r: (typeof rows)[number]) => boolean) =>
        expected(rows.filter(filter)).map((r) => ({
          ...r,
          volume: rows.find((x) => us(Date.parse(x.timestamp)) === r.timestamp && x.symbol === r.symbol)!.volume,
        }))

      expect(await get('symbols=MSFT,NVDA')).toEqual(want((r) => r.symbol !== 'AAPL'))
      expect(await get('symbols=MSFT&symbols=NVDA')).toEqual(want((r) => r.symbol !== 'AAPL'))
      expect(await get(`start=${new Date(tms(1)).toISOString()}&end=${new Date(tms(2)).toISOString()}`)).toEqual(want(inDay1))
      expect(await get(`start=${tms(1)}&end=${tms(2)}`)).toEqual(want(inDay1))
      const cols = await get('columns=close&symbols=AAPL')
      expect(cols).toEqual(expected(rows.filter((r) => r.symbol === 'AAPL')))
      expect(Object.keys(cols[0]).sort()).toEqual(['close', 'symbol', 'timestamp'])
      expect(await get('limit=4')).toEqual(want((r) => r.symbol === 'AAPL').slice(0, 4))
      expect(await get('limit=0')).toEqual([])
      expect(await get(`start=${tms(9)}`)).toEqual([])
    })

    it('an empty result still carries the columns (CSV header); an unknown dataset is 404', async () => {
      const ds = uniqueDataset('empty')
      await postJson(app, `/v1/datasets/${ds}/rows`, barRows(['AAPL'], [0], 2))
      const res = await app.request(`/v1/datasets/${ds}/rows?format=csv&start=${tms(5)}`)
      expect(res.status).toBe(200)
      expect((await res.text()).trim().split('\n')[0].split(',')).toEqual(['symbol', 'timestamp', 'close'])
      const parquet = await app.request(`/v1/datasets/${ds}/rows?format=parquet&symbols=NONE`)
      expect(parquet.status).toBe(200)
      const t = await decodeParquet(new Uint8Array(await parquet.arrayBuffer()))
      expect(t.length).toBe(0)

      for (const path of ['rows', '', 'partitions', 'partitions/AAPL/2024-01-02']) {
        const r = await app.request(`/v1/datasets/nope_${ds}${path ? `/${path}` : ''}`)
        expect(r.status, path).toBe(404)
        expect((await json(r)).error.code).toBe('not_found')
      }
      const del = await app.request(`/v1/datasets/nope_${ds}/rows?symbols=AAPL`, { method: 'DELETE' })
      expect(del.status).toBe(404)
    })

    it('upsert replaces rows by key, append refuses existing keys (409, nothing written), replace clears the range', async () => {
      const ds = uniqueDataset('modes')
      const path = `/v1/datasets/${ds}/rows`
      const rows = barRows(['AAPL'], [0], 5)
      expect((await postJson(app, path, rows)).status).toBe(200)

      // upsert (default and explicit): same keys, new values → the new values, no duplicates
      const changed = rows.slice(0, 2).map((r) => ({ ...r, close: r.close + 100 }))
      expect((await postJson(app, `${path}?mode=upsert`, changed)).status).toBe(200)
      let now = rowsOf(await storage.read(ds))
      expect(now).toHaveLength(5)
      expect(now.slice(0, 2).map((r) => r.close)).toEqual(changed.map((r) => r.close))

      // append: one existing key with another value in the batch → 409 duplicate_key, the new row is not written
      const fresh = { symbol: 'AAPL', timestamp: new Date(tms(0, 30)).toISOString(), close: 1 }
      const dup = await postJson(app, `${path}?mode=append`, [fresh, { ...rows[4], close: rows[4].close + 1 }])
      expect(dup.status).toBe(409)
      expect((await json(dup)).error.code).toBe('duplicate_key')
      expect(rowsOf(await storage.read(ds))).toEqual(now)
      const ok = await postJson(app, `${path}?mode=append`, [fresh])
      expect(ok.status).toBe(200)
      expect((await json(ok)).rowsWritten).toBe(1)

      // replace: rows between the batch's min and max time are replaced by the batch
      const replacement = [rows[1], rows[3]].map((r) => ({ ...r, close: 7 }))
      expect((await postJson(app, `${path}?mode=replace`, replacement)).status).toBe(200)
      now = rowsOf(await storage.read(ds))
      expect(now.map((r) => r.timestamp)).toEqual(
        [rows[0], rows[1], rows[3], rows[4], fresh].map((r) => us(Date.parse(r.timestamp))),
      )
      expect(now.map((r) => r.close)).toEqual([changed[0].close, 7, 7, rows[4].close, 1])
    })

    it('DELETE rows by filter; deleting everything takes all=true', async () => {
      const ds = uniqueDataset('delete')
      const path = `/v1/datasets/${ds}/rows`
      await postJson(app, path, barRows(['AAPL', 'MSFT'], [0, 1], 3))
      let res = await app.request(`${path}?symbols=MSFT&start=${tms(1)}`, { method: 'DELETE' })
      expect(res.status).toBe(200)
      let body = await json(res)
      expect(body.rowsDeleted).toBe(3)
      expect(body.partitions.map((p: { path: string }) => p.path)).toEqual(['symbol=MSFT/date=2024-01-03'])
      expect((await storage.read(ds)).length).toBe(9)

      res = await app.request(path, { method: 'DELETE' })
      expect(res.status).toBe(400)
      expect((await json(res)).error.details.issues[0].field).toBe('all')
      expect((await storage.read(ds)).length).toBe(9)

      res = await app.request(`${path}?all=true`, { method: 'DELETE' })
      expect(res.status).toBe(200)
      body = await json(res)
      expect(body.rowsDeleted).toBe(9)
      expect((await storage.read(ds)).length).toBe(0)
      // the dataset still exists (empty): a filtered delete now deletes nothing, 200
      res = await app.request(`${path}?symbols=AAPL`, { method: 'DELETE' })
      expect(res.status).toBe(200)
      expect((await json(res)).rowsDeleted).toBe(0)
    })

    it('lists and describes datasets', async () => {
      const ds = uniqueDataset('catalog')
      await postJson(app, `/v1/datasets/${ds}/rows`, barRows(['AAPL', 'MSFT'], [0], 2))
      const list = await json(await app.request('/v1/datasets'))
      expect(list.datasets).toContain(ds)
      expect(list.datasets).toEqual([...list.datasets].sort())
      const res = await app.request(`/v1/datasets/${ds}`)
      expect(res.status).toBe(200)
      const d = await json(res)
      expect(d).toMatchObject({ name: ds, rows: 4, partitions: 2, symbols: ['AAPL', 'MSFT'], partitionBy: ['symbol', 'date'] })
      expect(d.schema).toEqual([
        { name: 'symbol', type: 'string' },
        { name: 'timestamp', type: 'timestamp' },
        { name: 'close', type: 'float64' },
      ])
      expect(d.firstTimestamp).toBe(new Date(T0).toISOString())
      expect(d).not.toHaveProperty('start')
      expect(d).not.toHaveProperty('end')
    })

    it('lists partitions and serves manifests, symbols like EUR/USD and ^GSPC percent-encoded', async () => {
      const ds = uniqueDataset('parts')
      const rows = barRows(['EUR/USD', '^GSPC', 'AAPL'], [0, 1], 2)
      await postJson(app, `/v1/datasets/${ds}/rows`, rows)
      let body = await json(await app.request(`/v1/datasets/${ds}/partitions`))
      expect(body.partitions).toHaveLength(6)
      expect(body.partitions.map((p: { path: string }) => p.path)).toContain('symbol=EUR%2FUSD/date=2024-01-02')

      body = await json(
        await app.request(`/v1/datasets/${ds}/partitions?symbol=${encodeURIComponent('EUR/USD')}&start=${tms(1)}`),
      )
      expect(body.partitions).toEqual([
        expect.objectContaining({ values: { symbol: 'EUR/USD', date: '2024-01-03' }, rows: 2, files: 1, version: 1 }),
      ])
      body = await json(
        await app.request(`/v1/datasets/${ds}/partitions?symbols=AAPL,${encodeURIComponent('^GSPC')}&end=2024-01-03`),
      )
      expect(body.partitions.map((p: { values: { symbol: string } }) => p.values.symbol)).toEqual(['^GSPC', 'AAPL']) // by path: %5EGSPC < AAPL

      for (const symbol of ['EUR/USD', '^GSPC']) {
        const res = await app.request(`/v1/datasets/${ds}/partitions/${encodeURIComponent(symbol)}/2024-01-02`)
        expect(res.status, symbol).toBe(200)
        const m = await json(res)
        expect(m).toMatchObject({ format: 'friday.partition-manifest', dataset: ds, rows: 2, version: 1 })
        expect(m.partition.values).toEqual({ symbol, date: '2024-01-02' })
        expect(m.files[0].symbols).toEqual([symbol])
      }
      const missing = await app.request(`/v1/datasets/${ds}/partitions/AAPL/2024-01-09`)
      expect(missing.status).toBe(404)
      expect((await json(missing)).error.code).toBe('not_found')
    })

    it('counts requests in /v1/stats: operations, errors by code, bytes, storage requests', async () => {
      const own = testApp(storage)
      const ds = uniqueDataset('stats')
      const payload = JSON.stringify(barRows(['AAPL'], [0], 3))
      await own.request(`/v1/datasets/${ds}/rows`, {
        method: 'POST',
        body: payload,
        headers: { 'content-type': 'application/json' },
      })
      const out = await (await own.request(`/v1/datasets/${ds}/rows?format=csv`)).text()
      await own.request(`/v1/datasets/${ds}/rows?limit=-1`)
      await own.request('/v1/nothing-here')
      const res = await own.request('/v1/stats')
      expect(res.status).toBe(200)
      const s = await json(res)
      expect(s.requests.total).toBe(4)
      expect(s.requests.errors).toBe(2)
      expect(s.operations['rows.write']).toMatchObject({ count: 1, errors: 0 })
      expect(s.operations['rows.read']).toMatchObject({ count: 2, errors: 1 })
      expect(s.operations.not_found).toMatchObject({ count: 1, errors: 1 })
      expect(s.operations['rows.read'].p50Ms).toBeGreaterThanOrEqual(0)
      expect(s.requests.p99Ms).toBeGreaterThanOrEqual(s.requests.p50Ms)
      expect(s.errors).toEqual({ not_found: 1, validation_error: 1 })
      expect(s.statuses).toEqual({ '200': 2, '400': 1, '404': 1 })
      expect(s.bytes.in).toBe(new TextEncoder().encode(payload).byteLength)
      expect(s.bytes.out).toBeGreaterThanOrEqual(new TextEncoder().encode(out).byteLength)
      expect(s.storage).toMatchObject({ get: expect.any(Number), put: expect.any(Number), list: expect.any(Number) })
      expect(s.storage.put).toBeGreaterThan(0)
    })

    it('GET /healthz checks the backend', async () => {
      const res = await app.request('/healthz')
      expect(res.status).toBe(200)
      const body = await json(res)
      expect(body).toEqual({
        ok: true,
        backend: { local: 'local_parquet', s3: 's3_parquet', postgres: 'postgres' }[name],
        checkedMs: expect.any(Number),
      })
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Backend-independent behaviour, on the local lake

describe('HTTP API: auth, CORS, health, routing, config', () => {
  let lake: TestLake
  let storage: DataStorage
  const tokens = parseApiTokens('reader-token=read,writer-token=write,ops-token=admin,both-token=read+write')
  const seeded = uniqueDataset('auth')

  beforeAll(async () => {
    lake = await localLake()
    storage = lake.storage
    await storage.write(seeded, barRows(['AAPL'], [0], 2))
  })
  afterAll(async () => {
    await lake?.cleanup()
  })

  const auth = (token?: string): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {})

  it('timingSafeEqual gives the right answer for equal, unequal and different-length strings', async () => {
    expect(await timingSafeEqual('secret-token', 'secret-token')).toBe(true)
    expect(await timingSafeEqual('secret-token', 'secret-tokem')).toBe(false)
    expect(await timingSafeEqual('secret-token', 'Secret-token')).toBe(false)
    expect(await timingSafeEqual('secret-token', 'secret-token-longer')).toBe(false)
    expect(await timingSafeEqual('short', 'shor')).toBe(false)
    expect(await timingSafeEqual('', '')).toBe(true)
    expect(await timingSafeEqual('', 'x')).toBe(false)
    expect(await timingSafeEqual('ünïcødé', 'ünïcødé')).toBe(true)
  })

  it('401 without or with an unknown token (WWW-Authenticate: Bearer), 403 without the scope, 200 with it', async () => {
    const app = createApp({ storage, tokens })
    const read = `/v1/datasets/${seeded}/rows`
    const write = (token?: string) =>
      app.request(`/v1/datasets/${seeded}/rows`, {
        method: 'POST',
        body: JSON.stringify(barRows(['AAPL'], [0], 1)),
        headers: { 'content-type': 'application/json', ...auth(token) },
      })
    const del = (token?: string) =>
      app.request(`/v1/datasets/${seeded}/rows?symbols=ZZZ`, { method: 'DELETE', headers: auth(token) })
    const stats = (token?: string) => app.request('/v1/stats', { headers: auth(token) })
    const get = (path: string, token?: string) => app.request(path, { headers: auth(token) })

    const expectStatus = async (res: Response | Promise<Response>, status: number, code?: string) => {
      const r = await res
      expect(r.status).toBe(status)
      if (code) expect((await json(r)).error.code).toBe(code)
      return r
    }
    const r401 = await expectStatus(get(read), 401, 'unauthorized')
    expect(r401.headers.get('www-authenticate')).toBe('Bearer')
    await expectStatus(get(read, 'not-a-token'), 401, 'unauthorized')
    await expectStatus(app.request(read, { headers: { authorization: 'Basic cmVhZGVyOnRva2Vu' } }), 401, 'unauthorized')
    await expectStatus(app.request(read, { headers: { authorization: 'Bearer reader-token-x' } }), 401)
    await expectStatus(write(), 401)
    await expectStatus(stats(), 401)

    // read token: reads only
    for (const path of [read, '/v1/datasets', `/v1/datasets/${seeded}`, `/v1/datasets/${seeded}/partitions`]) {
      await expectStatus(get(path, 'reader-token'), 200)
    }
    const w403 = await expectStatus(write('reader-token'), 403)
    expect((await json(w403)).error).toMatchObject({ code: 'forbidden', details: { scope: 'write' } })
    await expectStatus(del('reader-token'), 403, 'forbidden')
    await expectStatus(stats('reader-token'), 403, 'forbidden')

    // write token: writes only
    await expectStatus(write('writer-token'), 200)
    await expectStatus(del('writer-token'), 200)
    await expectStatus(get(read, 'writer-token'), 403, 'forbidden')
    await expectStatus(stats('writer-token'), 403)

    // read+write
    await expectStatus(get(read, 'both-token'), 200)
    await expectStatus(write('both-token'), 200)
    await expectStatus(stats('both-token'), 403)

    // admin implies read and write
    await expectStatus(get(read, 'ops-token'), 200)
    await expectStatus(write('ops-token'), 200)
    await expectStatus(del('ops-token'), 200)
    await expectStatus(stats('ops-token'), 200)

    // health needs no token
    await expectStatus(app.request('/healthz'), 200)
  })

  it('without tokens and openWrites=false, writes and deletes are refused (403) and reads work', async () => {
    const app = createApp({ storage })
    const before = rowsOf(await storage.read(seeded))
    const post = await app.request(`/v1/datasets/${seeded}/rows`, {
      method: 'POST',
      body: JSON.stringify(barRows(['ZZZ'], [0], 1)),
      headers: { 'content-type': 'application/json' },
    })
    expect(post.status).toBe(403)
    expect((await json(post)).error).toMatchObject({ code: 'forbidden', message: 'writes disabled: configure API_TOKENS' })
    const del = await app.request(`/v1/datasets/${seeded}/rows?all=true`, { method: 'DELETE' })
    expect(del.status).toBe(403)
    expect(rowsOf(await storage.read(seeded))).toEqual(before)
    expect((await app.request(`/v1/datasets/${seeded}/rows`)).status).toBe(200)
    // admin routes are closed as well on a public server without tokens
    const stats = await app.request('/v1/stats')
    expect(stats.status).toBe(403)
    expect((await json(stats)).error).toMatchObject({ code: 'forbidden', message: 'admin routes disabled: configure API_TOKENS' })
    // openWrites=true lets them through
    const open = createApp({ storage, openWrites: true })
    expect((await open.request('/v1/stats')).status).toBe(200)
    expect((await open.request(`/v1/datasets/${seeded}/rows?symbols=ZZZ`, { method: 'DELETE' })).status).toBe(200)
  })

  it('CORS: preflight passes without a token; responses carry the allowed origin; none when not configured', async () => {
    const app = createApp({ storage, tokens, cors: { origins: ['https://app.example.com'] } })
    const pre = await app.request(`/v1/datasets/${seeded}/rows`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST')
    expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization')

    const ok = await app.request(`/v1/datasets/${seeded}`, {
      headers: { origin: 'https://app.example.com', ...auth('reader-token') },
    })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    const denied = await app.request(`/v1/datasets/${seeded}`, { headers: { origin: 'https://app.example.com' } })
    expect(denied.status).toBe(401)
    expect(denied.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    const other = await app.request(`/v1/datasets/${seeded}`, {
      headers: { origin: 'https://evil.example', ...auth('reader-token') },
    })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()

    const star = createApp({ storage, cors: { origins: ['*'] } })
    const s = await star.request('/v1/datasets', { headers: { origin: 'https://anything.example' } })
    expect(s.headers.get('access-control-allow-origin')).toBe('*')

    const none = createApp({ storage })
    const n = await none.request('/v1/datasets', { headers: { origin: 'https://app.example.com' } })
    expect(n.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('healthz: 503 with the error when the backend fails', async () => {
    /** The real storage with `listDatasets` failing, as an unreachable backend would. */
    const failingListDatasets: DataStorage = Object.create(storage, {
      listDatasets: {
        value: async () =>
          Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:9000'), { code: 'ECONNREFUSED' })),
      },
    })
    const app = createApp({ storage: failingListDatasets })
    const errors: unknown[] = []
    const original = console.error
    console.error = (...args: unknown[]) => errors.push(args)
    try {
      const res = await app.request('/healthz')
      expect(res.status).toBe(503)
      const body = await json(res)
      expect(body.error.code).toBe('unhealthy')
      expect(body.error.message).toBe('backend local_parquet check failed: ECONNREFUSED')
      expect(JSON.stringify(body)).not.toContain('10.0.0.1') // the raw message (hosts) goes to the log only
      expect(body.error.details).toMatchObject({ ok: false, backend: 'local_parquet', checkedMs: expect.any(Number) })
    } finally {
      console.error = original
    }
    expect(errors).toHaveLength(1)

    /** The real storage with `listDatasets` failing as a typed storage error. */
    const storeErrorListDatasets: DataStorage = Object.create(storage, {
      listDatasets: { value: async () => Promise.reject(new StorageError(502, 'store_error', 'GET / returned 500')) },
    })
    console.error = (...args: unknown[]) => errors.push(args)
    try {
      const res2 = await createApp({ storage: storeErrorListDatasets }).request('/healthz')
      expect(res2.status).toBe(503)
      expect((await json(res2)).error.message).toBe('backend local_parquet check failed: store_error: GET / returned 500')
    } finally {
      console.error = original
    }
    expect(errors).toHaveLength(2)
  })

  it('healthz: 503 when the backend does not answer within HEALTH_TIMEOUT_MS', async () => {
    /** The real storage with `listDatasets` hanging, as a black-holed endpoint would. */
    const hangingListDatasets: DataStorage = Object.create(storage, { listDatasets: { value: () => new Promise(() => {}) } })
    const original = console.error
    console.error = () => {}
    vi.useFakeTimers()
    try {
      const pending = Promise.resolve(createApp({ storage: hangingListDatasets }).request('/healthz'))
      await vi.advanceTimersByTimeAsync(HEALTH_TIMEOUT_MS)
      const res = await pending
      expect(res.status).toBe(503)
      expect((await json(res)).error.message).toBe(`backend local_parquet check failed: timed out after ${HEALTH_TIMEOUT_MS} ms`)
    } finally {
      vi.useRealTimers()
      console.error = original
    }
  })

  it('unknown routes are 404 JSON, wrong methods 405 JSON with Allow; internal errors do not leak', async () => {
    const app = createApp({ storage, openWrites: true })
    for (const path of ['/', '/v1', '/v2/datasets', `/v1/datasets/${seeded}/rows/extra`, '/v1/datasets/x/partitions/a']) {
      const res = await app.request(path)
      expect(res.status, path).toBe(404)
      expect((await json(res)).error).toMatchObject({ code: 'not_found', details: {} })
    }
    const cases: [string, string, string][] = [
      ['PUT', `/v1/datasets/${seeded}/rows`, 'GET, HEAD, POST, DELETE'],
      ['PATCH', `/v1/datasets/${seeded}/rows`, 'GET, HEAD, POST, DELETE'],
      ['POST', '/v1/datasets', 'GET, HEAD'],
      ['DELETE', `/v1/datasets/${seeded}`, 'GET, HEAD'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', `/v1/datasets/${seeded}/partitions/AAPL/2024-01-02`, 'GET, HEAD'],
    ]
    for (const [method, path, allow] of cases) {
      const res = await app.request(path, { method })
      expect(res.status, `${method} ${path}`).toBe(405)
      expect(res.headers.get('allow')).toBe(allow)
      expect((await json(res)).error.code).toBe('method_not_allowed')
    }

    /** The real storage with `describe` throwing a plain (non-storage) error. */
    const brokenDescribe: DataStorage = Object.create(storage, {
      describe: { value: async () => Promise.reject(new TypeError('secret internals at /srv/x')) },
    })
    const errors: unknown[] = []
    const original = console.error
    console.error = (...args: unknown[]) => errors.push(args)
    try {
      const res = await createApp({ storage: brokenDescribe }).request(`/v1/datasets/${seeded}`)
      expect(res.status).toBe(500)
      const body = await json(res)
      expect(body).toEqual({ error: { code: 'internal_error', message: 'internal error', details: {} } })
      expect(JSON.stringify(body)).not.toContain('secret')
    } finally {
      console.error = original
    }
    expect(errors).toHaveLength(1)
  })

  it('parseApiTokens: token=scope+scope entries; bad syntax names API_TOKENS and the entry without the secret', () => {
    expect(parseApiTokens(undefined)).toEqual([])
    expect(parseApiTokens('  ')).toEqual([])
    expect(parseApiTokens('ingest-secret=write, train-secret=read,ops-secret=admin,b64tok==read+write')).toEqual([
      { token: 'ingest-secret', scopes: ['write'] },
      { token: 'train-secret', scopes: ['read'] },
      { token: 'ops-secret', scopes: ['admin'] },
      { token: 'b64tok=', scopes: ['read', 'write'] },
    ])
    const bad: [string, RegExp][] = [
      ['ingest-secret', /API_TOKENS\[0\].*without '=scope'/],
      ['ok-token=read,supersecret=wrte', /API_TOKENS\[1\].*unknown scope "wrte"/],
      ['ok-token=read,,x=read', /API_TOKENS\[1\].*empty entry/],
      ['=read', /API_TOKENS\[0\]/],
      ['tok en=read', /API_TOKENS\[0\].*printable ASCII/],
      ['same-token=read,same-token=write', /API_TOKENS\[1\].*twice/],
      ['tok=', /API_TOKENS\[0\].*unknown scope ""/],
    ]
    for (const [value, message] of bad) {
      let err: any
      try {
        parseApiTokens(value)
      } catch (e) {
        err = e
      }
      expect(err?.code, value).toBe('config_error')
      expect(err.message, value).toMatch(message)
      expect(err.message).not.toContain('supersecret')
    }
  })

  it('httpOptionsFromEnv reads API_TOKENS, CORS_ORIGINS and MAX_BODY_BYTES, naming a bad variable', () => {
    expect(httpOptionsFromEnv({})).toEqual({ tokens: [] })
    expect(
      httpOptionsFromEnv({
        API_TOKENS: 'a-token=read',
        CORS_ORIGINS: 'https://a.example, http://localhost:5173',
        MAX_BODY_BYTES: '1048576',
      }),
    ).toEqual({
      tokens: [{ token: 'a-token', scopes: ['read'] }],
      cors: { origins: ['https://a.example', 'http://localhost:5173'] },
      maxBodyBytes: 1_048_576,
    })
    expect(httpOptionsFromEnv({ CORS_ORIGINS: '*' }).cors).toEqual({ origins: ['*'] })
    const bad: [Record<string, string>, RegExp][] = [
      [{ MAX_BODY_BYTES: '64MB' }, /MAX_BODY_BYTES.*positive integer/],
      [{ MAX_BODY_BYTES: '0' }, /MAX_BODY_BYTES.*at least 1/],
      [{ CORS_ORIGINS: 'app.example.com' }, /CORS_ORIGINS.*origin/],
      [{ CORS_ORIGINS: '*,https://a.example' }, /CORS_ORIGINS.*'\*' cannot be combined/],
      [{ API_TOKENS: 'x=root' }, /API_TOKENS/],
    ]
    for (const [env, message] of bad) {
      let err: any
      try {
        httpOptionsFromEnv(env)
      } catch (e) {
        err = e
      }
      expect(err?.code, JSON.stringify(env)).toBe('config_error')
      expect(err.message).toMatch(message)
    }
  })
})
