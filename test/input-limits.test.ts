/**
 * Issue 12, the value-range, string and limits part: one accepted time range for every input
 * form, exact to the microsecond at both edges (items 1, 14); lone UTF-16 surrogates refused
 * (item 2); symbols whose encoded path segment is too long refused up front (item 3); columns
 * per request and per dataset bounded before anything is allocated (items 4, 9). Every refusal is
 * a 4xx naming row and field and stores nothing. Over a real local lake, through the library and
 * through JSON, NDJSON and CSV HTTP bodies.
 */

import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../src/config/load.js'
import { LimitExceededError, ValidationError } from '../src/core/errors.js'
import {
  encodedSegmentBytes,
  isWellFormedByScan,
  isWellFormedString,
  MAX_SEGMENT_BYTES,
  symbolProblem,
} from '../src/core/keys.js'
import { checkTimeUs, dayOf, formatUs, MAX_TIME_US, MIN_TIME_US, parseTimeUs, US_PER_DAY } from '../src/core/time.js'
import type { DataStorage } from '../src/core/types.js'
import { parseCsvBody } from '../src/formats/csv-input.js'
import { parseJsonBody, parseNdjsonBody } from '../src/formats/json-input.js'
import { parseBody } from '../src/formats/parse-body.js'
import { encodeParquet } from '../src/parquet/index.js'
import { checkPartitionCount, DEFAULT_LIMITS, limitsFromConfig } from '../src/table/limits.js'
import { normalizeInput } from '../src/table/normalize.js'
import { uniqueDataset } from './conformance/storage.case.js'
import { json, localLake, snapshot, type TestLake, testApp } from './helpers/http.js'

const FIRST = '1700-01-01T00:00:00Z'
const LAST = '2199-12-31T23:59:59.999999Z'
const BEFORE = '1699-12-31T23:59:59.999999Z'
const AFTER = '2200-01-01T00:00:00Z'

let lake: TestLake
let storage: DataStorage
let app: Hono

beforeAll(async () => {
  lake = await localLake()
  storage = lake.storage
  app = testApp(storage)
})
afterAll(async () => {
  await lake?.cleanup()
})

/** Throws unless `fn` rejects with a ValidationError whose first issue is at `row`/`field`. */
async function expectIssue(fn: () => Promise<unknown>, row: number | undefined, field: string, message: RegExp) {
  const err = await fn().then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ValidationError)
  const issue = (err as ValidationError).issues[0]
  expect(issue.field).toBe(field)
  if (row !== undefined) expect(issue.row).toBe(row)
  expect(issue.message).toMatch(message)
}

async function post(path: string, body: string, contentType: string): Promise<Response> {
  return app.request(path, { method: 'POST', body, headers: { 'content-type': contentType } })
}

describe('the accepted time range (items 1 and 14)', () => {
  it('has exact edges: first accepted µs, last accepted µs, one µs outside each', () => {
    expect(parseTimeUs(FIRST)).toBe(MIN_TIME_US)
    expect(parseTimeUs(LAST)).toBe(MAX_TIME_US - 1)
    expect(parseTimeUs(BEFORE)).toBe(MIN_TIME_US - 1)
    expect(parseTimeUs(AFTER)).toBe(MAX_TIME_US)
    expect(checkTimeUs(MIN_TIME_US)).toBeNull()
    expect(checkTimeUs(MAX_TIME_US - 1)).toBeNull()
    expect(checkTimeUs(MIN_TIME_US - 1)).toMatch(/outside the accepted range \[1700-01-01T00:00:00Z, 2200-01-01T00:00:00Z\)/)
    expect(checkTimeUs(MAX_TIME_US)).toMatch(/outside the accepted range/)
    expect(Number.isSafeInteger(MIN_TIME_US) && Number.isSafeInteger(MAX_TIME_US)).toBe(true)
    expect(formatUs(MIN_TIME_US)).toBe('1700-01-01T00:00:00.000Z')
    expect(formatUs(MAX_TIME_US - 1)).toBe('2199-12-31T23:59:59.999999Z')
  })

  it('formats, parses and partitions every day boundary of the range exactly (±1 µs, item 14)', () => {
    let bad = 0
    for (let d = MIN_TIME_US; d < MAX_TIME_US; d += US_PER_DAY * 8) {
      for (const u of [d - 1, d, d + 1]) {
        if (u < MIN_TIME_US || u >= MAX_TIME_US) continue
        const iso = formatUs(u)
        if (parseTimeUs(iso) !== u || dayOf(u) !== iso.slice(0, 10)) bad++
      }
    }
    expect(bad).toBe(0)
  })

  it('ISO digits below the µs: zeros accepted, anything else refused (never truncated), in every text body', async () => {
    const base = Date.UTC(2024, 0, 2, 14, 30) * 1000 + 123456
    expect(parseTimeUs('2024-01-02T14:30:00.123456000Z')).toBe(base)
    expect(parseTimeUs('2024-01-02T14:30:00.123456000+00:00')).toBe(base)
    expect(parseTimeUs('2024-01-02T14:30:00.123456789Z')).toBeNull()
    expect(parseTimeUs('2024-01-02T14:30:00.1234561+00:00')).toBeNull()
    for (const [type, body] of [
      [
        'application/json',
        '[{"symbol":"A","timestamp":"2024-01-02T14:30:00.123456000Z"},{"symbol":"A","timestamp":"2024-01-02T14:30:00.123456001Z"}]',
      ],
      ['text/csv', 'symbol,timestamp\nA,2024-01-02T14:30:00.123456000Z\nA,2024-01-02T14:30:00.123456001Z\n'],
    ]) {
      const ds = uniqueDataset('ns')
      const res = await post(`/v1/datasets/${ds}/rows`, body, type)
      expect(res.status).toBe(400)
      const issue = (await json(res)).error.details.issues[0]
      expect(issue).toMatchObject({ row: 1, field: 'timestamp' })
      expect(issue.message).toMatch(/at most microseconds/)
      expect(await storage.listDatasets()).not.toContain(ds)
    }
  })

  const outside: [string, unknown][] = [
    ['ISO 9999-12-31T23:59:59.999999Z (rounds past 2^53)', '9999-12-31T23:59:59.999999Z'],
    ['ISO one µs before the range', BEFORE],
    ['ISO the first µs after the range', AFTER],
    ['ISO year 1 with µs', '0001-01-01T00:00:00.000001Z'],
    ['epoch ms one µs before the range', (MIN_TIME_US - 1) / 1000],
    ['epoch ms at the end of the range', MAX_TIME_US / 1000],
    ['epoch ms of year 9999', Date.UTC(9999, 0, 1)],
    ['a Date before the range', new Date(Date.UTC(1699, 11, 31, 23, 59, 59, 999))],
    ['a Date at the end of the range', new Date(MAX_TIME_US / 1000)],
  ]
  it.each(outside)('library write refuses %s: 400 naming row and field, no dataset', async (_name, time) => {
    const ds = uniqueDataset('range')
    const rows = [
      { symbol: 'A', timestamp: FIRST, v: 1 },
      { symbol: 'A', timestamp: time, v: 2 },
    ]
    await expectIssue(() => storage.write(ds, rows), 1, 'timestamp', /outside the accepted range/)
    expect(await storage.listDatasets()).not.toContain(ds)
  })

  it('a Date in a data column outside the range is refused too', async () => {
    const ds = uniqueDataset('range')
    const rows = [{ symbol: 'A', timestamp: FIRST, at: new Date(Date.UTC(2300, 0, 1)) }]
    await expectIssue(() => storage.write(ds, rows), 0, 'at', /outside the accepted range/)
    expect(await storage.listDatasets()).not.toContain(ds)
  })

  it('stores both edges exactly on the local lake, in every input form (round trip to the µs)', async () => {
    const ds = uniqueDataset('edges')
    await storage.write(ds, [
      { symbol: 'iso', timestamp: FIRST, v: 1 },
      { symbol: 'iso', timestamp: LAST, v: 2 },
      { symbol: 'iso', timestamp: '2199-12-31T23:59:59.999998Z', v: 3 },
      { symbol: 'iso', timestamp: '1700-01-01T00:00:00.000001Z', v: 4 },
      { symbol: 'ms', timestamp: MIN_TIME_US / 1000, v: 5 },
      { symbol: 'ms', timestamp: (MAX_TIME_US - 1) / 1000, v: 6 },
      { symbol: 'ms', timestamp: (MIN_TIME_US + 1) / 1000, v: 7 },
      { symbol: 'date', timestamp: new Date(MIN_TIME_US / 1000), v: 8 },
      { symbol: 'date', timestamp: new Date((MAX_TIME_US - 1000) / 1000), v: 9 },
    ])
    const t = await storage.read(ds)
    const got = new Map<number, number>()
    const ts = t.columns.timestamp.values as Float64Array
    const v = t.columns.v.values as Float64Array
    for (let i = 0; i < t.length; i++) got.set(v[i], ts[i])
    expect(Object.fromEntries(got)).toEqual({
      1: MIN_TIME_US,
      2: MAX_TIME_US - 1,
      3: MAX_TIME_US - 2,
      4: MIN_TIME_US + 1,
      5: MIN_TIME_US,
      6: MAX_TIME_US - 1,
      7: MIN_TIME_US + 1,
      8: MIN_TIME_US,
      9: MAX_TIME_US - 1000,
    })
    // the rows are visible to describe too (item 1: they vanished from read, describe and verify)
    const info = await storage.describe(ds)
    expect(info?.rows).toBe(9)
    // and a read of the exact edge µs finds them
    const edge = await storage.read(ds, { symbols: ['iso'], start: LAST, end: AFTER })
    expect(edge.length).toBe(1)
  })

  const bodies: [string, string, (time: string) => string][] = [
    [
      'JSON',
      'application/json',
      (t) =>
        JSON.stringify([
          { symbol: 'A', timestamp: FIRST },
          { symbol: 'A', timestamp: t },
        ]),
    ],
    [
      'NDJSON',
      'application/x-ndjson',
      (t) => `${JSON.stringify({ symbol: 'A', timestamp: FIRST })}\n${JSON.stringify({ symbol: 'A', timestamp: t })}\n`,
    ],
    ['CSV', 'text/csv', (t) => `symbol,timestamp\nA,${FIRST}\nA,${t}\n`],
  ]
  describe.each(bodies)('through a %s body', (_name, contentType, body) => {
    it.each([BEFORE, AFTER, '9999-12-31T23:59:59.999999Z'])('refuses %s: 400 on row 1, field timestamp', async (time) => {
      const ds = uniqueDataset('http_range')
      const before = await snapshot(storage)
      const res = await post(`/v1/datasets/${ds}/rows`, body(time), contentType)
      expect(res.status).toBe(400)
      const issue = (await json(res)).error.details.issues[0]
      expect(issue).toMatchObject({ row: 1, field: 'timestamp' })
      expect(issue.message).toMatch(/\[1700-01-01T00:00:00Z, 2200-01-01T00:00:00Z\)/)
      expect(await snapshot(storage)).toBe(before)
    })
    it('stores the last accepted µs exactly', async () => {
      const ds = uniqueDataset('http_range')
      const res = await post(`/v1/datasets/${ds}/rows`, body(LAST), contentType)
      expect(res.status).toBe(200)
      const out = await json(await app.request(`/v1/datasets/${ds}/rows?format=json`))
      expect(out.map((r: { timestamp: string }) => r.timestamp)).toEqual(['1700-01-01T00:00:00.000Z', LAST])
    })
  })

  it('a Parquet body: timestamps at both edges stored exactly, one µs outside refused (400, row and field)', async () => {
    const file = (times: number[], at: number[] = times) =>
      encodeParquet({
        length: times.length,
        schema: [
          { name: 'symbol', type: 'string' },
          { name: 'timestamp', type: 'timestamp' },
          { name: 'at', type: 'timestamp' },
        ],
        columns: {
          symbol: { type: 'string', values: times.map(() => 'P') },
          timestamp: { type: 'timestamp', values: Float64Array.from(times) },
          at: { type: 'timestamp', values: Float64Array.from(at) },
        },
      })
    const send = (ds: string, bytes: Uint8Array) =>
      app.request(`/v1/datasets/${ds}/rows`, {
        method: 'POST',
        body: bytes as Uint8Array<ArrayBuffer>,
        headers: { 'content-type': 'application/vnd.apache.parquet' },
      })
    const ds = uniqueDataset('pq_range')
    for (const [times, at, field] of [
      [[MIN_TIME_US, MAX_TIME_US], [MIN_TIME_US, MIN_TIME_US], 'timestamp'],
      [[MIN_TIME_US - 1, MIN_TIME_US], [MIN_TIME_US, MIN_TIME_US], 'timestamp'],
      [[MIN_TIME_US, MIN_TIME_US + 1], [MIN_TIME_US, MAX_TIME_US + 5], 'at'],
    ] as [number[], number[], string][]) {
      const res = await send(ds, file(times, at))
      expect(res.status).toBe(400)
      const issue = (await json(res)).error.details.issues[0]
      expect(issue.field).toBe(field)
      expect(issue.message).toMatch(/accepted range/)
      expect(await storage.listDatasets()).not.toContain(ds)
    }
    const ok = await send(ds, file([MIN_TIME_US, MAX_TIME_US - 1]))
    expect(ok.status).toBe(200)
    const t = await storage.read(ds)
    expect(Array.from(t.columns.timestamp.values as Float64Array)).toEqual([MIN_TIME_US, MAX_TIME_US - 1])
    expect(Array.from(t.columns.at.values as Float64Array)).toEqual([MIN_TIME_US, MAX_TIME_US - 1])
  })

  it('epoch-ms numbers in a CSV body at the edges', async () => {
    const ds = uniqueDataset('http_range')
    const ok = await post(`/v1/datasets/${ds}/rows`, `symbol,timestamp\nA,${MIN_TIME_US / 1000}\n`, 'text/csv')
    expect(ok.status).toBe(200)
    const bad = await post(`/v1/datasets/${ds}/rows`, `symbol,timestamp\nA,${MAX_TIME_US / 1000}\n`, 'text/csv')
    expect(bad.status).toBe(400)
    expect((await json(bad)).error.details.issues[0]).toMatchObject({ row: 0, field: 'timestamp' })
  })
})

describe('lone UTF-16 surrogates (item 2)', () => {
  it('isWellFormedString finds lone high and low surrogates, accepts pairs', () => {
    expect(isWellFormedString('X\ud83d\ude00')).toBe(true)
    expect(isWellFormedString('zürich')).toBe(true)
    for (const s of ['X\ud800', '\udfffX', 'a\ud800b', '\ude00\ud83d', 'ok\ud83d']) expect(isWellFormedString(s)).toBe(false)
    // the regex scan (runtimes without String.prototype.isWellFormed) agrees with the native check
    const units = ['a', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00', 'é']
    for (const a of units)
      for (const b of units)
        for (const c of units) {
          const s = a + b + c
          expect(isWellFormedByScan(s), JSON.stringify(s)).toBe(isWellFormedString(s))
        }
  })

  it.each([
    ['a symbol', { symbol: 'X\ud800', timestamp: FIRST }, 'symbol'],
    ['a low surrogate symbol', { symbol: 'X\udfff', timestamp: FIRST }, 'symbol'],
    ['a string value', { symbol: 'X', timestamp: FIRST, venue: 'a\udc00' }, 'venue'],
  ])('library write refuses %s, names row and field, stores nothing', async (_name, row, field) => {
    const ds = uniqueDataset('utf16')
    await expectIssue(() => storage.write(ds, [{ symbol: 'OK', timestamp: FIRST }, row]), 1, field, /lone UTF-16 surrogate/)
    expect(await storage.listDatasets()).not.toContain(ds)
  })

  it('repeated upserts of a surrogate symbol cannot add rows (item 2 regression)', async () => {
    const ds = uniqueDataset('utf16')
    await storage.write(ds, [{ symbol: 'X', timestamp: FIRST, v: 1 }])
    for (let k = 0; k < 2; k++) {
      await expect(storage.write(ds, [{ symbol: 'X\ud800', timestamp: FIRST, v: 2 }])).rejects.toBeInstanceOf(ValidationError)
    }
    expect((await storage.read(ds)).length).toBe(1)
  })

  it('a JSON body with an escaped lone surrogate gets a 400 naming row and field', async () => {
    const ds = uniqueDataset('utf16')
    const body =
      '[{"symbol":"A","timestamp":"2024-01-02T00:00:00Z","note":"ok"},{"symbol":"A","timestamp":"2024-01-03T00:00:00Z","note":"x\\ud800"}]'
    const res = await post(`/v1/datasets/${ds}/rows`, body, 'application/json')
    expect(res.status).toBe(400)
    expect((await json(res)).error.details.issues[0]).toMatchObject({ row: 1, field: 'note' })
    expect(await storage.listDatasets()).not.toContain(ds)
  })

  it('a Table input (e.g. from Parquet) with an ill-formed string column is refused', async () => {
    const ds = uniqueDataset('utf16')
    const table = {
      length: 1,
      schema: [
        { name: 'symbol', type: 'string' as const },
        { name: 'timestamp', type: 'timestamp' as const },
        { name: 'note', type: 'string' as const },
      ],
      columns: {
        symbol: { type: 'string' as const, values: ['A'] },
        timestamp: { type: 'timestamp' as const, values: new Float64Array([MIN_TIME_US]) },
        note: { type: 'string' as const, values: ['\ud800'] },
      },
    }
    await expectIssue(() => storage.write(ds, table), 0, 'note', /lone UTF-16 surrogate/)
    table.columns.note.values = ['ok']
    table.columns.timestamp.values = new Float64Array([MAX_TIME_US])
    await expectIssue(() => storage.write(ds, table), 0, 'timestamp', /outside the accepted range/)
    expect(await storage.listDatasets()).not.toContain(ds)
  })
})

describe('symbols whose path segment is too long (item 3)', () => {
  it('40 x "€" (within 128 characters) encodes past 255 bytes and is refused', () => {
    const symbol = '€'.repeat(40)
    expect(encodedSegmentBytes(symbol)).toBe(7 + 40 * 9)
    expect(symbolProblem(symbol)).toMatch(/367 bytes, more than 255/)
    expect(symbolProblem('€'.repeat(27))).toBeNull() // 7 + 243 = 250 bytes
    expect(symbolProblem('€'.repeat(28))).toMatch(/259 bytes/)
    expect(symbolProblem('A'.repeat(128))).toBeNull()
    expect(encodedSegmentBytes('A'.repeat(128))).toBeLessThanOrEqual(MAX_SEGMENT_BYTES)
  })

  it('a batch with one such symbol: 400, nothing stored, no dataset created (HTTP)', async () => {
    const ds = uniqueDataset('longsym')
    const before = await snapshot(storage)
    const rows = [
      { symbol: 'AAPL', timestamp: FIRST, v: 1 },
      { symbol: '€'.repeat(40), timestamp: FIRST, v: 2 },
    ]
    const res = await post(`/v1/datasets/${ds}/rows`, JSON.stringify(rows), 'application/json')
    expect(res.status).toBe(400)
    expect((await json(res)).error.details.issues[0]).toMatchObject({ row: 1, field: 'symbol' })
    expect(await snapshot(storage)).toBe(before)
  })
})

describe('column limits (items 4 and 9)', () => {
  it('a CSV with 100,000 columns is refused with 413 before the columns are allocated', async () => {
    const ds = uniqueDataset('wide')
    const names = Array.from({ length: 100_000 }, (_, i) => `c${i}`)
    const body = `symbol,timestamp,${names.join(',')}\nA,${FIRST},${names.map(() => '1').join(',')}\n`
    const before = process.memoryUsage().heapUsed
    const res = await post(`/v1/datasets/${ds}/rows`, body, 'text/csv')
    expect(res.status).toBe(413)
    const err = await json(res)
    expect(err.error).toMatchObject({ code: 'limit_exceeded', details: { limit: 'max_columns_per_request', value: 1024 } })
    // 100,000 columns at 8 KiB each would be ~800 MB; generous bound on a shared machine
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(200 * 1024 * 1024)
    expect(await storage.listDatasets()).not.toContain(ds)
  })

  it.each([
    ['JSON', 'application/json'],
    ['NDJSON', 'application/x-ndjson'],
  ])('a %s body one column wider than the limit is refused (413), one at the limit is parsed', async (_n, type) => {
    const row = (width: number) => {
      const r: Record<string, unknown> = { symbol: 'A', timestamp: FIRST }
      for (let i = 2; i < width; i++) r[`c${i}`] = i
      return r
    }
    const text = (width: number) =>
      type === 'application/json' ? JSON.stringify([row(width)]) : `${JSON.stringify(row(width))}\n`
    const stream = (s: string) => new Response(s).body
    const parse = type === 'application/json' ? parseJsonBody : parseNdjsonBody
    const ok = await parse(stream(text(8)), { maxBytes: 1e6 }, 8)
    expect(Object.keys(ok)).toHaveLength(8)
    const err = await parse(stream(text(9)), { maxBytes: 1e6 }, 8).catch((e) => e)
    expect(err).toBeInstanceOf(LimitExceededError)
    expect(err.status).toBe(413)
  })

  it('a sparse NDJSON body (each late row naming a new key) is refused before its nulls are made', async () => {
    const lines: string[] = []
    // epoch ms after 1973: smaller numbers are refused as probably seconds (no time_unit)
    const T = 1_700_000_000_000
    for (let i = 0; i < 100_000; i++) lines.push(`{"symbol":"A","timestamp":${T + i}}`)
    for (let k = 0; k < 1000; k++) lines.push(`{"symbol":"A","timestamp":${T + 100_000 + k},"k${k}":1}`)
    const before = process.memoryUsage().heapUsed
    const err = await parseNdjsonBody(new Response(lines.join('\n')).body, { maxBytes: 1e8 }).catch((e) => e)
    expect(err).toBeInstanceOf(LimitExceededError)
    expect(err.status).toBe(413)
    expect(err.details.limit).toBe('sparse_body')
    // 1,000 columns x 101,000 rows of nulls would be ~800 MB; generous bound on a shared machine
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(300 * 1024 * 1024)
    // ordinary sparseness (optional keys) is fine
    const mixed = Array.from({ length: 50_000 }, (_, i) => `{"symbol":"A","timestamp":${T + i},"o${i % 4}":${i}}`)
    const ok = await parseNdjsonBody(new Response(mixed.join('\n')).body, { maxBytes: 1e8 })
    expect(Object.keys(ok).sort()).toEqual(['o0', 'o1', 'o2', 'o3', 'symbol', 'timestamp'])
  })

  it('columns per dataset: a write that would pass the limit is a 422 and adds nothing', async () => {
    const ds = uniqueDataset('cols')
    const limits = { maxColumnsPerDataset: 5, maxColumnsPerRequest: 100 }
    const schema = normalizeInput([{ symbol: 'A', timestamp: FIRST, a: 1, b: 2, c: 3 }], null, limits).table.schema
    expect(schema).toHaveLength(5)
    const err = (() => {
      try {
        normalizeInput([{ symbol: 'A', timestamp: FIRST, d: 4 }], schema, limits)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(LimitExceededError)
    expect((err as LimitExceededError).status).toBe(422)
    // an existing column is no growth
    expect(() => normalizeInput([{ symbol: 'A', timestamp: FIRST, a: 4 }], schema, limits)).not.toThrow()
    // the storage applies the default (1,024) through its own normalize
    const wide: Record<string, unknown> = { symbol: 'A', timestamp: FIRST }
    for (let i = 0; i < 1100; i++) wide[`c${i}`] = i
    const res = await storage.write(ds, [wide]).catch((e) => e)
    expect(res).toBeInstanceOf(LimitExceededError)
    expect(await storage.listDatasets()).not.toContain(ds)
  })
})

describe('storage.limits config', () => {
  it('defaults to DEFAULT_LIMITS, takes overrides, refuses nonsense', () => {
    expect(limitsFromConfig(parseConfig().storage.limits)).toEqual(DEFAULT_LIMITS)
    const c = parseConfig({ storage: { limits: { max_columns_per_dataset: 64, max_body_read_seconds: 5 } } })
    expect(limitsFromConfig(c.storage.limits)).toMatchObject({ maxColumnsPerDataset: 64, maxBodyReadSeconds: 5 })
    expect(() => parseConfig({ storage: { limits: { max_partitions_per_write: 0 } } })).toThrow(/max_partitions_per_write/)
    expect(() => parseConfig({ storage: { limits: { max_columns_per_request: 1.5 } } })).toThrow(/max_columns_per_request/)
  })

  it('checkPartitionCount: 413 past the limit', () => {
    expect(() => checkPartitionCount(5000)).not.toThrow()
    const err = (() => {
      try {
        checkPartitionCount(5001)
      } catch (e) {
        return e as LimitExceededError
      }
    })()
    expect(err?.status).toBe(413)
    expect(err?.details).toMatchObject({ limit: 'max_partitions_per_write', value: 5000 })
  })
})

describe('the body read deadline (item 4)', () => {
  it('a body trickling past max_body_read_seconds gets a 408 and its stream is cancelled', async () => {
    let cancelled = false
    let pulls = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        pulls++
        await new Promise((r) => setTimeout(r, 50))
        controller.enqueue(new TextEncoder().encode(pulls === 1 ? '[' : ' '))
      },
      cancel() {
        cancelled = true
      },
    })
    const err = await parseJsonBody(body, { maxBytes: 1e6, maxReadSeconds: 0.3 }).catch((e) => e)
    expect(err).toBeInstanceOf(LimitExceededError)
    expect(err.status).toBe(408)
    expect(err.details).toMatchObject({ limit: 'max_body_read_seconds', value: 0.3 })
    expect(cancelled).toBe(true)
  })

  it('parseBody passes the deadline and the column limit to every text format', async () => {
    const trickle = () =>
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((r) => setTimeout(r, 50))
          controller.enqueue(new TextEncoder().encode(' '))
        },
      })
    for (const format of ['json', 'ndjson', 'csv'] as const) {
      const late = await parseBody(trickle(), format, { maxBytes: 1e6, maxReadSeconds: 0.2 }).catch((e) => e)
      expect(late, format).toBeInstanceOf(LimitExceededError)
      expect(late.status).toBe(408)
    }
    const wide = await parseBody(new Response('symbol,timestamp,a,b\n').body, 'csv', { maxBytes: 1e6, maxColumns: 3 }).catch(
      (e) => e,
    )
    expect(wide).toBeInstanceOf(LimitExceededError)
    expect(wide.status).toBe(413)
  })

  it('a body that arrives in time is read as before (no deadline left running)', async () => {
    const out = await parseCsvBody(new Response(`symbol,timestamp\nA,${FIRST}\n`).body, { maxBytes: 1e6, maxReadSeconds: 5 })
    expect(out.symbol).toEqual(['A'])
  })
})
