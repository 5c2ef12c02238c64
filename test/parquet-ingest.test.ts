/**
 * Issue 12, Parquet ingest: files DuckDB writes with its ordinary options (made at test time),
 * POSTed to the rows route in-process. Each is stored exactly (read back and compared with
 * DuckDB reading the same file) or refused with a 4xx naming the column and its type; after
 * each, `/healthz` answers and a non-ASCII canary write reads back exactly. Then the bombs:
 * claimed rows and page sizes past the limits are refused without allocating or decompressing
 * by the claim, with the peak RSS delta and the longest `/healthz` answer printed.
 */

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DataStorage } from '../src/core/types.js'
import { decodeParquetBody } from '../src/parquet/index.js'
import { rowsOf } from './conformance/storage.case.js'
import { json, localLake, postJson, type TestLake, testApp } from './helpers/http.js'

let lake: TestLake
let storage: DataStorage
let app: Hono
let dir: string
let duck: DuckDBInstance
let con: DuckDBConnection
let seq = 0

beforeAll(async () => {
  lake = await localLake()
  storage = lake.storage
  app = testApp(storage)
  dir = await mkdtemp(join(tmpdir(), 'friday-pq-ingest-'))
  duck = await DuckDBInstance.create(':memory:')
  con = await duck.connect()
})

afterAll(async () => {
  con?.closeSync()
  duck?.closeSync()
  await lake?.cleanup()
  await rm(dir, { recursive: true, force: true })
})

/** Writes `select` with DuckDB to a fresh file; returns its path. */
async function duckFile(select: string, options = 'COMPRESSION snappy'): Promise<string> {
  const file = join(dir, `f${++seq}.parquet`)
  await con.run(`COPY (${select}) TO '${file}' (FORMAT parquet, ${options})`)
  return file
}

async function postParquet(ds: string, body: Uint8Array): Promise<Response> {
  return await app.request(`/v1/datasets/${ds}/rows`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.apache.parquet' },
    body: body as Uint8Array<ArrayBuffer>,
  })
}

/** The server still answers and writes non-ASCII text exactly. */
async function expectHealthyAndExact(): Promise<void> {
  expect((await app.request('/healthz')).status).toBe(200)
  const ds = `canary${++seq}`
  const rows = [{ symbol: 'zürich€', timestamp: 1_700_000_000_000, note: 'zürich ✓ 東京' }]
  expect((await postJson(app, `/v1/datasets/${ds}/rows`, rows)).status).toBe(200)
  const back = rowsOf(await storage.read(ds))
  expect(back).toEqual([{ symbol: 'zürich€', timestamp: 1_700_000_000_000_000, note: 'zürich ✓ 東京' }])
}

/** Columns every stored file carries, then the column under test, `v`. */
const KEY = `'S' || (i % 3)::VARCHAR AS symbol, TIMESTAMP '2024-03-01' + INTERVAL (i) SECOND AS timestamp`

/** DuckDB's reading of the same file, as our row shape (µs times, bigint integers). */
async function duckRows(file: string, v: string): Promise<Record<string, unknown>[]> {
  const reader = await con.runAndReadAll(
    `SELECT symbol, epoch_us(timestamp::TIMESTAMP) AS timestamp, ${v} AS v FROM read_parquet('${file}') ORDER BY symbol, timestamp`,
  )
  return reader.getRowObjectsJS().map((r) => ({ ...r, timestamp: Number(r.timestamp) }))
}

function sorted(rows: Record<string, unknown>[]) {
  return rows
    .map((r) => ({ symbol: r.symbol, timestamp: r.timestamp, v: r.v }))
    .sort((a, b) =>
      a.symbol === b.symbol ? Number(a.timestamp) - Number(b.timestamp) : String(a.symbol) < String(b.symbol) ? -1 : 1,
    )
}

/** [label, DuckDB expression for v over i in 0..n, DuckDB read-back expression of v, COPY options]. */
const STORED: [string, string, string, string?][] = [
  ['BIGINT', `CASE WHEN i % 5 = 0 THEN NULL ELSE i * 1000000007 - 9223372036854775 END`, 'v::BIGINT'],
  ['INTEGER', 'i::INTEGER - 50', 'v::BIGINT'],
  ['SMALLINT', '(i - 20)::SMALLINT', 'v::BIGINT'],
  ['TINYINT', '(i - 20)::TINYINT', 'v::BIGINT'],
  ['UINTEGER', '(4294967295 - i)::UINTEGER', 'v::BIGINT'],
  ['UBIGINT below 2^63', '(9223372036854775807 - i)::UBIGINT', 'v::BIGINT'],
  ['DOUBLE', `CASE WHEN i % 7 = 0 THEN NULL ELSE i / 3.0 END`, 'v::DOUBLE'],
  ['FLOAT', '(i / 4.0)::FLOAT', 'v::DOUBLE'],
  ['BOOLEAN', `CASE WHEN i % 4 = 0 THEN NULL ELSE i % 2 = 0 END`, 'v'],
  ['VARCHAR non-ASCII', `CASE WHEN i % 6 = 0 THEN NULL ELSE 'zürich ✓ ' || i END`, 'v'],
  ['TIMESTAMP_MS', `(TIMESTAMP '2020-01-01 00:00:00.123' + INTERVAL (i) MINUTE)::TIMESTAMP_MS`, 'epoch_us(v::TIMESTAMP)::DOUBLE'],
  ['TIMESTAMPTZ', `(TIMESTAMP '2020-01-01 00:00:00.123456' + INTERVAL (i) MINUTE)::TIMESTAMPTZ`, 'epoch_us(v)::DOUBLE'],
  [
    'TIMESTAMP_NS whole µs',
    `(TIMESTAMP '2020-01-01 00:00:00.123456' + INTERVAL (i) MINUTE)::TIMESTAMP_NS`,
    'epoch_us(v::TIMESTAMP)::DOUBLE',
  ],
  ['ZSTD, small row groups', 'i * 3', 'v::BIGINT', 'COMPRESSION zstd, ROW_GROUP_SIZE 16'],
  ['uncompressed', `'u' || i`, 'v', 'COMPRESSION uncompressed'],
  ['parquet v2 (DELTA_*, BYTE_STREAM_SPLIT)', '(i * 1.5)::DOUBLE', 'v::DOUBLE', 'COMPRESSION zstd, PARQUET_VERSION V2'],
  ['parquet v2 strings', `'δ' || (i % 9)`, 'v', 'COMPRESSION snappy, PARQUET_VERSION V2'],
  ['parquet v2 integers', 'i * 1000003', 'v::BIGINT', 'COMPRESSION uncompressed, PARQUET_VERSION V2'],
]

describe('Parquet ingest: DuckDB files stored exactly', () => {
  it.each(STORED)('%s', async (_label, expr, back, options) => {
    const file = await duckFile(`SELECT ${KEY}, ${expr} AS v FROM range(40) t(i)`, options)
    const ds = `stored${++seq}`
    const res = await postParquet(ds, await readFile(file))
    expect(res.status, JSON.stringify(await res.clone().json())).toBe(200)
    const stored = sorted(rowsOf(await storage.read(ds)))
    const expected = sorted(await duckRows(file, back))
    expect(stored).toEqual(expected)
    await expectHealthyAndExact()
  })
})

/** [label, select of v (or the whole select), status, words the message must hold, COPY options]. */
const REFUSED: [string, string, number, string[], string?][] = [
  ['DECIMAL(9,2) (INT32)', `(i / 4)::DECIMAL(9,2)`, 400, ["'v'", 'DECIMAL(9,2)']],
  ['DECIMAL(18,4) (INT64)', `(i / 3)::DECIMAL(18,4)`, 400, ["'v'", 'DECIMAL(18,4)']],
  ['DECIMAL(38,10) (FIXED_LEN_BYTE_ARRAY)', `(i / 3)::DECIMAL(38,10)`, 400, ["'v'", 'DECIMAL(38,10)']],
  ['UBIGINT above 2^63', `(9223372036854775808 + i)::UBIGINT`, 400, ["'v'", 'UINT64', '9223372036854775808']],
  ['DATE', `DATE '2024-01-01' + i::INTEGER`, 400, ["'v'", 'DATE']],
  ['TIME', `TIME '10:00:00' + INTERVAL (i) SECOND`, 400, ["'v'", 'TIME']],
  ['BLOB', `'\\xFF\\x00'::BLOB`, 400, ["'v'", 'binary']],
  ['UUID', `'6a5b2a6e-4c1c-4c3b-9a4e-3f9b8a7c6d5e'::UUID`, 400, ["'v'", 'FIXED_LEN_BYTE_ARRAY']],
  ['LIST', `[i, i + 1]`, 400, ["'v'", 'nested']],
  ['STRUCT', `{'a': i}`, 400, ["'v'", 'nested']],
  ['MAP', `MAP {'k': i}`, 400, ["'v'", 'nested']],
  ['NaN', `CASE WHEN i = 7 THEN 'NaN'::DOUBLE ELSE i END`, 400, ["'v'", 'NaN', 'row 7']],
  ['Infinity', `CASE WHEN i = 3 THEN 'Infinity'::DOUBLE ELSE i END`, 400, ["'v'", 'Infinity']],
  ['TIMESTAMP_NS with ns digits', `'2020-01-01 00:00:00.123456789'::TIMESTAMP_NS`, 400, ["'v'", 'NANOS']],
  ['GZIP', 'i', 415, ['GZIP'], 'COMPRESSION gzip'],
  ['BROTLI', 'i', 415, ['BROTLI'], 'COMPRESSION brotli'],
  ['LZ4_RAW', 'i', 415, ['LZ4'], 'COMPRESSION lz4_raw'],
]

describe('Parquet ingest: refused with a 4xx naming the column and type, nothing stored', () => {
  it.each(REFUSED)('%s', async (_label, expr, status, words, options) => {
    const file = await duckFile(`SELECT ${KEY}, ${expr} AS v FROM range(20) t(i)`, options ?? 'COMPRESSION snappy')
    const ds = `refused${++seq}`
    const res = await postParquet(ds, await readFile(file))
    const body = await json(res)
    expect(res.status, JSON.stringify(body)).toBe(status)
    for (const word of words) expect(body.error.message).toContain(word)
    expect(await storage.describe(ds)).toBeNull()
    expect(await storage.listDatasets()).not.toContain(ds)
    await expectHealthyAndExact()
  })

  it('a damaged file is a 400, not a crash', async () => {
    const file = await duckFile(`SELECT ${KEY}, i AS v FROM range(50) t(i)`)
    const bytes = new Uint8Array(await readFile(file))
    for (const at of [4, 20, 60, Math.floor(bytes.length / 2)]) {
      const bad = bytes.slice()
      bad.fill(0xff, at, at + 12)
      const res = await postParquet(`damaged${++seq}`, bad)
      expect([200, 400]).toContain(res.status)
    }
    await expectHealthyAndExact()
  })
})

describe('Parquet ingest: a failed body changes no later result (issue 12 item 6)', () => {
  it('a refused JSON/decimal body, then a non-ASCII canary reads back exactly', async () => {
    const file = await duckFile(`SELECT ${KEY}, (i / 7)::DECIMAL(30,5) AS v, '{"a":' || i || '}' AS j FROM range(30) t(i)`)
    for (let k = 0; k < 3; k++) {
      const ds = `poison${++seq}`
      expect((await postParquet(ds, await readFile(file))).status).toBe(400)
      expect(await storage.describe(ds)).toBeNull()
    }
    await expectHealthyAndExact()
  })
})

/** The largest RSS seen and the slowest `/healthz` while `work` runs. */
async function watch(work: Promise<Response>): Promise<{ res: Response; rssDeltaMb: number; healthzMaxMs: number }> {
  const rss0 = process.memoryUsage().rss
  let peak = rss0
  let slowest = 0
  let done = false
  const settled = work.finally(() => {
    done = true
  })
  while (!done) {
    const t = performance.now()
    const h = await app.request('/healthz')
    slowest = Math.max(slowest, performance.now() - t)
    expect(h.status).toBe(200)
    peak = Math.max(peak, process.memoryUsage().rss)
    await new Promise((r) => setTimeout(r, 5))
  }
  const res = await settled
  peak = Math.max(peak, process.memoryUsage().rss)
  return { res, rssDeltaMb: (peak - rss0) / 2 ** 20, healthzMaxMs: slowest }
}

describe('Parquet ingest: bombs (issue 12 item 8)', () => {
  it('a body claiming 20M rows is a 413 before anything is allocated', async () => {
    const file = await duckFile(
      `SELECT 'A' AS symbol, TIMESTAMP '2024-01-01' AS timestamp, 1.0::DOUBLE AS v FROM range(20000000)`,
      'COMPRESSION zstd, ROW_GROUP_SIZE 20000000',
    )
    const bytes = new Uint8Array(await readFile(file))
    const { res, rssDeltaMb, healthzMaxMs } = await watch(postParquet(`bomb${++seq}`, bytes))
    const body = await json(res)
    console.log(
      `rows bomb (${bytes.length} bytes claiming 20M rows): status ${res.status}, peak RSS +${rssDeltaMb.toFixed(1)} MB, slowest /healthz ${healthzMaxMs.toFixed(0)} ms`,
    )
    expect(res.status).toBe(413)
    expect(body.error.message).toContain('parquet_max_rows')
    expect(rssDeltaMb).toBeLessThan(200)
    await expectHealthyAndExact()
  })

  it('a zstd page claiming 64 MiB is a 413 without being decompressed', async () => {
    const file = await duckFile(
      `SELECT 'A' AS symbol, TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND AS timestamp, repeat('a', 64 * 1024 * 1024) AS v FROM range(2) t(i)`,
      'COMPRESSION zstd',
    )
    const bytes = new Uint8Array(await readFile(file))
    expect(bytes.length).toBeLessThan(200_000)
    const { res, rssDeltaMb, healthzMaxMs } = await watch(postParquet(`bomb${++seq}`, bytes))
    const body = await json(res)
    console.log(
      `page bomb (${bytes.length} bytes, zstd pages of 64 MiB): status ${res.status}, peak RSS +${rssDeltaMb.toFixed(1)} MB, slowest /healthz ${healthzMaxMs.toFixed(0)} ms`,
    )
    expect(res.status).toBe(413)
    expect(body.error.message).toContain('parquet_max_page_bytes')
    expect(rssDeltaMb).toBeLessThan(200)
    await expectHealthyAndExact()
  })

  it('pages within the page limit but past the decoded-bytes limit are refused before any is decompressed', async () => {
    const file = await duckFile(
      `SELECT 'A' AS symbol, TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND AS timestamp, repeat('b', 4 * 1024 * 1024) || i AS v FROM range(8) t(i)`,
      'COMPRESSION zstd',
    )
    const bytes = new Uint8Array(await readFile(file))
    const refused = decodeParquetBody(bytes, { maxPageBytes: 256 * 1024 * 1024, maxDecodedBytes: 16 * 1024 * 1024 })
    await expect(refused).rejects.toThrow(/parquet_max_decoded_bytes/)
    await expect(refused).rejects.toMatchObject({ status: 413 })
    // within the limits the same file decodes exactly
    const table = await decodeParquetBody(bytes, { maxPageBytes: 256 * 1024 * 1024 })
    expect(table.length).toBe(8)
    expect((table.columns.v.values as string[])[3]).toBe(`${'b'.repeat(4 * 1024 * 1024)}3`)
  })

  it('configured row and cell limits are honoured', async () => {
    const file = await duckFile(`SELECT ${KEY}, i AS v FROM range(100) t(i)`)
    const bytes = new Uint8Array(await readFile(file))
    await expect(decodeParquetBody(bytes, { maxRows: 99 })).rejects.toMatchObject({ status: 413 })
    await expect(decodeParquetBody(bytes, { maxCells: 299 })).rejects.toMatchObject({ status: 413 })
    expect((await decodeParquetBody(bytes, { maxRows: 100, maxCells: 300 })).length).toBe(100)
  })
})

describe('Parquet ingest: regressions found by the corpus (test/parquet-corpus.test.ts)', () => {
  const fixture = (path: string) => readFile(new URL(`./fixtures/parquet-corpus/${path}`, import.meta.url))

  it('a file with an empty row group decodes to an empty table, not "lies outside the file"', async () => {
    // writers leave an empty chunk's offsets at 0 (arrow-rs) or past the data (pyarrow)
    for (const path of ['parquet-testing/data__column_chunk_key_value_metadata.parquet', 'pyarrow/stored_empty.parquet']) {
      const table = await decodeParquetBody(new Uint8Array(await fixture(path)))
      expect(table.length, path).toBe(0)
      expect(table.schema.length, path).toBeGreaterThan(1)
    }
  })

  it('a logical type unknown to the reader is a 400 naming the column, not its raw values', async () => {
    const refused = decodeParquetBody(new Uint8Array(await fixture('parquet-testing/data__unknown-logical-type.parquet')))
    await expect(refused).rejects.toMatchObject({ status: 400 })
    await expect(refused).rejects.toThrow(/'column with unknown type' has type BYTE_ARRAY \(an unknown logical type\)/)
  })

  it('a damaged schema, a negative snappy literal length and a dictionary-encoded page without a dictionary are 400s, not TypeErrors (500) or a spin', async () => {
    const cases: [string, RegExp][] = [
      ['crafted/schema-damaged.parquet', /not a valid Parquet file: the schema is damaged/],
      // was hyparquet's snappy decoder stepping backwards for ~10 s, then "cannot copy from before start of buffer"
      ['crafted/snappy-literal-length.parquet', /'timestamp' \(INT64 TIMESTAMP\(MICROS\)\): a snappy literal runs past its page/],
      ['crafted/dictionary-page-missing.parquet', /'i64' \(INT64\): a dictionary-encoded page comes before any dictionary page/],
    ]
    for (const [path, message] of cases) {
      const refused = decodeParquetBody(new Uint8Array(await fixture(path)))
      await expect(refused, path).rejects.toMatchObject({ status: 400 })
      await expect(refused, path).rejects.toThrow(message)
    }
  })

  it('an RLE run longer than its page is a 400, not a fatal V8 error that ends the process', async () => {
    const refused = decodeParquetBody(new Uint8Array(await fixture('crafted/rle-run-past-page.parquet')))
    await expect(refused).rejects.toMatchObject({ status: 400 })
    await expect(refused).rejects.toThrow(/'flag' \(BOOLEAN\): definition levels: an RLE run claims 1995299775 values/)
    await expectHealthyAndExact()
  })
})
