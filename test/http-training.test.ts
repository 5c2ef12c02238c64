/**
 * `POST /v1/datasets/:dataset/training-set` and its download links, in-process over a local
 * Parquet lake: the description matches the library's `getFeatureMatrix` on the same options,
 * every link downloads a `.npy` (read by the reference reader written from the format spec) or
 * Parquet file whose values are the library's matrix or windows byte for byte, inline bodies are
 * the link bodies, a write after describing turns the links into 409s, and bad input is a 4xx
 * naming its field.
 */

import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DataStorage } from '../src/core/types.js'
import { createApp } from '../src/http/index.js'
import { decodeParquet } from '../src/parquet/index.js'
import {
  type FeatureMatrix,
  getFeatureMatrix,
  type MatrixOptionsInput,
  mulberry32,
  SEGMENTS,
  sequenceWindows,
} from '../src/training/index.js'
import { json, localLake, type TestLake, testApp } from './helpers/http.js'
import { readNpy } from './helpers/npy-reader.js'

const T0 = Date.UTC(2024, 0, 2, 14, 30)
const MIN = 60_000
const DS = 'bars'

/**
 * Three symbols of 200 one-minute bars: BBB misses minutes 100-104 (a gap for `maxGap`), CCC has
 * no volume at minute 50 (a NaN that stays in the matrix: no fill is asked for).
 */
function barColumns(symbols = ['AAA', 'BBB', 'CCC'], minutes = 200, seed = 7) {
  const rand = mulberry32(seed)
  const cols = { symbol: [] as string[], timestamp: [] as number[], close: [] as number[], volume: [] as (number | null)[] }
  symbols.forEach((s, si) => {
    let close = 100 + 10 * si
    for (let k = 0; k < minutes; k++) {
      close *= 1 + (rand() - 0.5) * 0.01
      if (s === 'BBB' && k >= 100 && k < 105) continue
      cols.symbol.push(s)
      cols.timestamp.push(T0 + k * MIN)
      cols.close.push(Math.round(close * 1e4) / 1e4)
      cols.volume.push(s === 'CCC' && k === 50 ? null : Math.round(rand() * 1000))
    }
  })
  return cols
}

const OPTIONS = { features: ['close', 'volume'], target: 'returns', testSize: 0.2, validationSize: 0.1 } as const

let lake: TestLake
let storage: DataStorage
let app: Hono

beforeAll(async () => {
  lake = await localLake()
  storage = lake.storage
  app = testApp(storage)
  await storage.write(DS, barColumns())
})

afterAll(async () => {
  await lake?.cleanup()
})

function post(body: unknown, path = `/v1/datasets/${DS}/training-set`, headers: Record<string, string> = {}, on = app) {
  return Promise.resolve(
    on.request(path, {
      method: 'POST',
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
    }),
  )
}

async function describeOk(body: unknown): Promise<any> {
  const res = await post(body)
  const out = await json(res)
  expect(res.status, JSON.stringify(out)).toBe(200)
  return out
}

async function download(href: string, headers: Record<string, string> = {}): Promise<{ res: Response; bytes: Uint8Array }> {
  const res = await app.request(href, { headers })
  const bytes = new Uint8Array(await res.arrayBuffer())
  if (res.status !== 200) throw new Error(`GET ${href}: ${res.status} ${new TextDecoder().decode(bytes)}`)
  return { res, bytes }
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
const base64Bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))

/** The fields of a 4xx body's issues. */
async function errorOf(res: Response, status: number): Promise<{ code: string; message: string; fields: string[] }> {
  const body = await json(res)
  expect(res.status, JSON.stringify(body)).toBe(status)
  const issues = (body.error.details?.issues ?? []) as { field: string }[]
  return { code: body.error.code, message: body.error.message, fields: issues.map((i) => i.field) }
}

function matrix(options: Partial<MatrixOptionsInput> = {}): Promise<FeatureMatrix> {
  return getFeatureMatrix(storage, { dataset: DS, ...OPTIONS, ...options } as MatrixOptionsInput & { dataset: string })
}

describe('POST /v1/datasets/:dataset/training-set (npy links)', () => {
  it('describes the same matrix as getFeatureMatrix, and every link is that matrix as .npy', async () => {
    const out = await describeOk(OPTIONS)
    const m = await matrix()
    expect(out.dataset).toBe(DS)
    expect(out.features).toEqual(['close', 'volume'])
    expect(out.target).toEqual({ kind: 'returns', column: 'close', horizon: 1, name: 'returns_1' })
    expect(out.split).toEqual(m.report.segments)
    expect(out.dropped).toEqual(m.report.dropped)
    expect(out.distinctTimestamps).toBe(200)
    expect(out.scaler).toEqual(m.scaler!.toJSON())
    expect(out.symbols).toEqual(m.symbols)
    expect(out.fingerprint).toMatch(/^[0-9a-f]{16}$/)
    expect(m.X.some((x) => Number.isNaN(x))).toBe(true) // CCC's missing volume is in there
    for (const s of SEGMENTS) {
      const seg = m.segments[s]
      const d = out.segments[s]
      expect(seg.rows).toBeGreaterThan(0)
      expect(d.rows).toBe(seg.rows)
      expect(d.shape).toEqual({ X: [seg.rows, 2], y: [seg.rows] })
      expect(d.dtype).toBe('<f4')
      const expected = {
        X: seg.X,
        y: seg.y,
        timestamps: BigInt64Array.from(m.timestamps.subarray(seg.offset, seg.offset + seg.rows), (t) => BigInt(t)),
        symbols: m.symbolIndex.subarray(seg.offset, seg.offset + seg.rows),
      }
      for (const [part, want] of Object.entries(expected)) {
        const href: string = d[part].href
        expect(href.startsWith(`/v1/datasets/${DS}/training-set/${s}/${part}.npy?spec=`)).toBe(true)
        expect(href).toContain(`&fp=${out.fingerprint}`)
        const { res, bytes } = await download(href)
        expect(res.headers.get('content-type')).toBe('application/octet-stream')
        expect(res.headers.get('content-length')).toBe(String(bytes.length))
        expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${DS}-${s}-${part}.npy"`)
        const file = readNpy(bytes)
        expect(file.descr).toBe({ X: '<f4', y: '<f4', timestamps: '<i8', symbols: '<u4' }[part])
        expect(file.shape).toEqual(part === 'X' ? [seg.rows, 2] : [seg.rows])
        expect(file.fortranOrder).toBe(false)
        expect(bytes.subarray(file.preamble)).toEqual(bytesOf(want))
      }
    }
  })

  it('links are stable: the same request gives the same links, whatever the key order', async () => {
    const a = await describeOk(OPTIONS)
    const b = await describeOk({ validationSize: 0.1, testSize: 0.2, target: 'returns', features: ['close', 'volume'] })
    expect(b.segments.train.X.href).toBe(a.segments.train.X.href)
    const head = await app.request(a.segments.train.X.href, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String((await download(a.segments.train.X.href)).bytes.length))
  })

  it('applies a scaler passed back in, instead of fitting one', async () => {
    const first = await describeOk(OPTIONS)
    const later = { ...OPTIONS, start: new Date(T0 + 120 * MIN).toISOString(), scaler: first.scaler }
    const out = await describeOk(later)
    expect(out.scaler).toEqual(first.scaler)
    const m = await matrix({ start: later.start, scaler: first.scaler })
    const { bytes } = await download(out.segments.train.X.href)
    const file = readNpy(bytes)
    expect(bytes.subarray(file.preamble)).toEqual(bytesOf(m.segments.train.X))
    // the refit scaler of that range would differ: the passed one really was applied
    expect((await matrix({ start: later.start })).scaler!.toJSON()).not.toEqual(first.scaler)
  })
})

describe('windows', () => {
  const windows = { lookback: 8, stride: 2, maxGap: MIN }

  it('X is [n, lookback, features] windows and y their targets, as sequenceWindows gives them', async () => {
    const out = await describeOk({ ...OPTIONS, dtype: 'float64', windows })
    const m = await matrix({ dtype: 'float64' })
    const w = sequenceWindows(m, windows)
    expect(out.windows).toEqual(windows)
    for (const s of SEGMENTS) {
      const d = out.segments[s]
      expect(w[s].count).toBeGreaterThan(0)
      expect(d.shape).toEqual({ X: [w[s].count, 8, 2], y: [w[s].count] })
      expect(d.dtype).toBe('<f8')
      const x = await download(d.X.href)
      const fx = readNpy(x.bytes)
      expect(fx.shape).toEqual([w[s].count, 8, 2])
      expect(x.bytes.subarray(fx.preamble)).toEqual(bytesOf(w[s].materialize()))
      const y = await download(d.y.href)
      expect(y.bytes.subarray(readNpy(y.bytes).preamble)).toEqual(bytesOf(w[s].targets))
      const t = readNpy((await download(d.timestamps.href)).bytes)
      expect(t.data).toEqual(BigInt64Array.from(w[s].endTimestamps, (v) => BigInt(v)))
      const sym = readNpy((await download(d.symbols.href)).bytes)
      expect(sym.data).toEqual(w[s].symbolIndex)
    }
  })

  it('streams a windowed X.npy of more than 4096 windows in several chunks, equal to materialize()', async () => {
    const big = 'bars_long'
    await storage.write(big, barColumns(['LONG'], 6000, 11))
    const body = { features: ['close'], target: 'close', testSize: 0.1, windows: { lookback: 3 } }
    const res = await post(body, `/v1/datasets/${big}/training-set`)
    const out = await json(res)
    expect(res.status).toBe(200)
    const m = await getFeatureMatrix(storage, { dataset: big, features: ['close'], target: 'close', testSize: 0.1 })
    const w = sequenceWindows(m, { lookback: 3 }).train
    expect(w.count).toBeGreaterThan(4096)
    const dl = await app.request(out.segments.train.X.href)
    expect(dl.status).toBe(200)
    const reader = dl.body!.getReader()
    const chunks: Uint8Array[] = []
    for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value)
    // header, then ceil(count / 4096) window blocks
    expect(chunks.length).toBe(1 + Math.ceil(w.count / 4096))
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
    let at = 0
    for (const c of chunks) {
      bytes.set(c, at)
      at += c.length
    }
    expect(dl.headers.get('content-length')).toBe(String(bytes.length))
    const file = readNpy(bytes)
    expect(file.shape).toEqual([w.count, 3, 1])
    expect(bytes.subarray(file.preamble)).toEqual(bytesOf(w.materialize()))
  })

  it('windows with format parquet is a 400 naming format; a data.parquet link of a windowed spec too', async () => {
    expect((await errorOf(await post({ ...OPTIONS, windows, format: 'parquet' }), 400)).fields).toEqual(['format'])
    const out = await describeOk({ ...OPTIONS, windows })
    const href = (out.segments.train.X.href as string).replace('/X.npy?', '/data.parquet?')
    expect((await errorOf(await app.request(href), 400)).fields).toEqual(['part'])
  })
})

describe('parquet', () => {
  it('one Parquet file per segment: symbol, timestamp, the normalized features (float64) and the target', async () => {
    const out = await describeOk({ ...OPTIONS, format: 'parquet' })
    const m = await matrix({ dtype: 'float64' })
    expect(out.scaler).toEqual(m.scaler!.toJSON())
    for (const s of SEGMENTS) {
      const seg = m.segments[s]
      const d = out.segments[s]
      expect(d.rows).toBe(seg.rows)
      expect(d.columns).toEqual(['symbol', 'timestamp', 'close', 'volume', 'returns_1'])
      const { res, bytes } = await download(d.data.href)
      expect(res.headers.get('content-type')).toBe('application/vnd.apache.parquet')
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${DS}-${s}-data.parquet"`)
      const t = await decodeParquet(bytes)
      expect(t.length).toBe(seg.rows)
      expect(t.schema.map((c) => [c.name, c.type])).toEqual([
        ['symbol', 'string'],
        ['timestamp', 'timestamp'],
        ['close', 'float64'],
        ['volume', 'float64'],
        ['returns_1', 'float64'],
      ])
      expect(t.columns.symbol.values).toEqual(
        Array.from(m.symbolIndex.subarray(seg.offset, seg.offset + seg.rows), (i) => m.symbols[i]),
      )
      expect(bytesOf(t.columns.timestamp.values as Float64Array)).toEqual(
        bytesOf(m.timestamps.slice(seg.offset, seg.offset + seg.rows)),
      )
      for (const [j, f] of ['close', 'volume'].entries()) {
        const want = Float64Array.from({ length: seg.rows }, (_, k) => seg.X[k * 2 + j])
        expect(bytesOf(t.columns[f].values as Float64Array)).toEqual(bytesOf(want))
      }
      expect(bytesOf(t.columns.returns_1.values as Float64Array)).toEqual(bytesOf(seg.y.slice()))
    }
  })
})

describe('inline', () => {
  it('base64 bodies equal what the links download (npy, with windows, and parquet)', async () => {
    for (const extra of [{}, { windows: { lookback: 4 } }, { format: 'parquet' }]) {
      const links = await describeOk({ ...OPTIONS, ...extra })
      const inline = await describeOk({ ...OPTIONS, ...extra, inline: true })
      expect(inline.scaler).toEqual(links.scaler)
      for (const s of SEGMENTS) {
        const parts = 'format' in extra ? ['data'] : ['X', 'y', 'timestamps', 'symbols']
        for (const p of parts) {
          expect(inline.segments[s][p].href).toBeUndefined()
          const { bytes } = await download(links.segments[s][p].href)
          expect(base64Bytes(inline.segments[s][p].base64)).toEqual(bytes)
        }
      }
    }
  })

  it('refuses with 413 payload_too_large when the inline bodies would exceed the cap', async () => {
    const small = createApp({ storage, maxInlineBytes: 4096 })
    const err = await errorOf(await post({ ...OPTIONS, inline: true }, undefined, {}, small), 413)
    expect(err.code).toBe('payload_too_large')
    expect(err.message).toMatch(/links/)
    expect((await post({ ...OPTIONS }, undefined, {}, small)).status).toBe(200)
  })
})

describe('links after a write', () => {
  it('a write to a symbol read turns the links into 409 conflict; other symbols do not', async () => {
    const ds = 'bars_changing'
    await storage.write(ds, barColumns())
    const body = { ...OPTIONS, symbols: ['AAA', 'BBB'] }
    const res = await post(body, `/v1/datasets/${ds}/training-set`)
    const desc = await json(res)
    expect(res.status).toBe(200)
    const href: string = desc.segments.train.X.href
    expect((await app.request(href)).status).toBe(200)
    await storage.write(ds, { symbol: ['CCC'], timestamp: [T0 + 500 * MIN], close: [1], volume: [1] })
    expect((await app.request(href)).status).toBe(200) // CCC is not read
    await storage.write(ds, { symbol: ['AAA'], timestamp: [T0 + 3 * MIN], close: [99], volume: [1] })
    const err = await errorOf(await app.request(href), 409)
    expect(err.code).toBe('conflict')
    expect(err.message).toMatch(/changed since the training set was described/)
    // describing again gives working links
    const again = await json(await post(body, `/v1/datasets/${ds}/training-set`))
    expect(again.fingerprint).not.toBe(desc.fingerprint)
    expect((await app.request(again.segments.train.X.href)).status).toBe(200)
  })
})

describe('bad requests', () => {
  const bad = async (body: unknown, status = 400) => errorOf(await post(body), status)

  it('names the offending field of the body', async () => {
    expect((await bad({ ...OPTIONS, bogus: 1 })).fields).toEqual(['bogus'])
    expect((await bad({ ...OPTIONS, testSize: 'x' })).fields).toEqual(['testSize'])
    expect((await bad({ ...OPTIONS, features: ['close', 'nope'] })).fields).toEqual(['features[1]'])
    expect((await bad({ ...OPTIONS, features: ['close', 7] })).fields).toEqual(['features[1]'])
    expect((await bad({ ...OPTIONS, windows: { lookback: 0 } })).fields).toEqual(['windows.lookback'])
    expect((await bad({ ...OPTIONS, windows: { lookback: 2, step: 1 } })).fields).toEqual(['windows.step'])
    expect((await bad({ ...OPTIONS, format: 'csv' })).fields).toEqual(['format'])
    expect((await bad({ ...OPTIONS, inline: 'yes' })).fields).toEqual(['inline'])
    expect((await bad({ features: ['close'], target: 'returns' })).fields).toEqual(['testSize'])
    expect((await bad({ ...OPTIONS, scaler: { format: 'x' } })).fields).toContain('scaler.format')
    const fitted = (await describeOk(OPTIONS)).scaler
    expect((await bad({ ...OPTIONS, features: ['volume', 'close'], scaler: fitted })).fields).toEqual(['scaler'])
    expect((await bad({ ...OPTIONS, scaler: { ...fitted, center: [0] } })).fields).toEqual(['scaler.center'])
    expect((await bad({ ...OPTIONS, normalize: false, scaler: fitted })).fields).toEqual(['scaler'])
    expect((await bad([OPTIONS])).fields).toEqual(['body'])
    expect((await bad('{"features": [')).fields).toEqual(['body'])
  })

  it('an empty training segment is a 400', async () => {
    // one training timestamp, whose label (the next bar) lies in validation: purged
    const err = await bad({ ...OPTIONS, testSize: 0.5, validationSize: 0.495 })
    expect(err.fields).toEqual(['testSize'])
    expect(err.message).toMatch(/no training rows remain/)
  })

  it('unknown dataset 404, unknown query parameter 400, non-JSON body 415, wrong method 405', async () => {
    expect((await errorOf(await post(OPTIONS, '/v1/datasets/nope/training-set'), 404)).code).toBe('not_found')
    expect((await errorOf(await post(OPTIONS, `/v1/datasets/${DS}/training-set?x=1`), 400)).fields).toEqual(['x'])
    const text = await post(OPTIONS, undefined, { 'content-type': 'text/plain' })
    expect((await errorOf(text, 415)).code).toBe('unsupported_media_type')
    const get = await app.request(`/v1/datasets/${DS}/training-set`)
    expect(get.status).toBe(405)
    expect(get.headers.get('allow')).toBe('POST')
  })

  it('links: bad segment, part, spec or fingerprint, and unknown query parameters, are 400s naming them', async () => {
    const out = await describeOk(OPTIONS)
    const href: string = out.segments.train.X.href
    const get = async (h: string) => (await errorOf(await app.request(h), 400)).fields
    expect(await get(href.replace('/train/', '/training/'))).toEqual(['segment'])
    expect(await get(href.replace('/X.npy', '/Z.npy'))).toEqual(['part'])
    expect(await get(href.replace(/fp=[0-9a-f]+/, 'fp=zz'))).toEqual(['fp'])
    expect(await get(href.replace(/&fp=[0-9a-f]+/, ''))).toEqual(['fp'])
    expect(await get(href.replace(/spec=[^&]+/, 'spec=bm90LWpzb24'))).toEqual(['spec'])
    const notOptions = btoa(JSON.stringify({ ...OPTIONS, testSize: 2 })).replace(/=+$/, '')
    expect(await get(href.replace(/spec=[^&]+/, `spec=${notOptions}`))).toEqual(['spec.testSize'])
    expect(await get(`${href}&extra=1`)).toEqual(['extra'])
    expect((await app.request(href, { method: 'POST' })).status).toBe(405)
  })
})

describe('auth', () => {
  it('both routes need the read scope when tokens are configured', async () => {
    const secured = createApp({
      storage,
      tokens: [
        { token: 'reader', scopes: ['read'] },
        { token: 'writer', scopes: ['write'] },
      ],
    })
    const auth = (t: string) => ({ authorization: `Bearer ${t}` })
    expect((await post(OPTIONS, undefined, {}, secured)).status).toBe(401)
    expect((await post(OPTIONS, undefined, auth('writer'), secured)).status).toBe(403)
    const res = await post(OPTIONS, undefined, auth('reader'), secured)
    expect(res.status).toBe(200)
    const href = (await json(res)).segments.test.y.href
    expect((await secured.request(href)).status).toBe(401)
    expect((await secured.request(href, { headers: auth('writer') })).status).toBe(403)
    expect((await secured.request(href, { headers: auth('reader') })).status).toBe(200)
  })
})
