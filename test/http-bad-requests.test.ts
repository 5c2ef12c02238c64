/**
 * A corpus of bad requests against the HTTP API: each one gets the expected status and error
 * code, an error that names the offending field (and row/line where there is one), and leaves
 * the store exactly as it was (the rows of every dataset and the dataset list, compared before
 * and after each request). Runs over the local and the S3 lake.
 */

import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DataStorage } from '../src/core/types.js'
import { createApp, parseApiTokens } from '../src/http/index.js'
import { encodeParquet } from '../src/parquet/index.js'
import { tms, uniqueDataset } from './conformance/storage.case.js'
import { json, LAKES, snapshot, type TestLake } from './helpers/http.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { requireS3OrSkip } from './helpers/s3.js'

const s3Available = (await requireS3OrSkip()) !== null
// a throwaway cluster only answers this question when DATABASE_URL is not set (CI sets it)
const pgProbe = await requirePostgresOrSkip()
const pgAvailable = pgProbe !== null
await pgProbe?.stop()

const TOKENS = parseApiTokens('admin-token=admin,reader-token=read,writer-token=write')
/** The body limit of the `small` app. */
const SMALL_LIMIT = 256

interface BadRequest {
  name: string
  method?: 'GET' | 'POST' | 'DELETE'
  /** `{ds}` is replaced by the seeded dataset's name. */
  path: string
  contentType?: string
  body?: string | Uint8Array | (() => ReadableStream<Uint8Array>)
  /** Bearer token; default `admin-token`; `null` sends none. */
  token?: string | null
  headers?: Record<string, string>
  /** The app with `maxBodyBytes: SMALL_LIMIT`. */
  small?: boolean
  status: number
  code: string
  /** `details.issues[0].field` of a validation error. */
  field?: string
  row?: number
  line?: number
  /** Matched against `error.message`. */
  message?: RegExp
  /** Matched (`toMatchObject`) against `error.details`. */
  details?: Record<string, unknown>
}

const ISO = new Date(tms(0)).toISOString()
const row = (extra: Record<string, unknown> = {}) => ({ symbol: 'AAPL', timestamp: ISO, close: 1.5, venue: 'XNAS', ...extra })
const jsonBody = (rows: unknown) => JSON.stringify(rows)
const ROWS = '/v1/datasets/{ds}/rows'
const NDJSON = 'application/x-ndjson'
const CSV = 'text/csv'
const PARQUET = 'application/vnd.apache.parquet'

/** A valid Parquet file of `n` rows (to truncate, or to exceed the body limit). */
function parquetRows(n: number): Uint8Array {
  return encodeParquet({
    length: n,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'close', type: 'float64' },
    ],
    columns: {
      symbol: { type: 'string', values: Array.from({ length: n }, (_, i) => `SYM${i}`) },
      timestamp: { type: 'timestamp', values: Float64Array.from({ length: n }, (_, i) => (tms(0) + i) * 1000) },
      close: { type: 'float64', values: Float64Array.from({ length: n }, (_, i) => i) },
    },
  })
}

/**
 * NDJSON of 9,999 good lines (every 100th blank, so the row index is not the line's) and `bad`
 * on line 10,000: row 9,900.
 */
function ndjsonBadLine10000(bad: string): string {
  const lines: string[] = []
  for (let i = 1; i < 10_000; i++) {
    lines.push(i % 100 === 0 ? '' : jsonBody({ symbol: 'BULK', timestamp: tms(10) + i * 1000, volume: i }))
  }
  lines.push(bad)
  return `${lines.join('\n')}\n`
}

/** A body that arrives in chunks with no Content-Length (as chunked transfer encoding does). */
function chunked(text: string, chunkSize = 64): () => ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text)
  return () =>
    new ReadableStream({
      start(controller) {
        for (let i = 0; i < bytes.length; i += chunkSize) controller.enqueue(bytes.slice(i, i + chunkSize))
        controller.close()
      },
    })
}

const CASES: BadRequest[] = [
  // ---- JSON bodies --------------------------------------------------------------------------
  {
    name: 'malformed JSON (trailing comma)',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: '[{"symbol": "AAPL",}]',
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /invalid JSON/,
  },
  {
    name: 'truncated JSON',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row(), row()]).slice(0, 70),
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /invalid JSON/,
  },
  {
    name: 'JSON object instead of an array',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody(row()),
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /expected a JSON array/,
  },
  {
    name: 'JSON scalar body',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: '42',
    status: 400,
    code: 'validation_error',
    field: 'body',
  },
  {
    name: 'JSON array of non-objects',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: '[1, 2]',
    status: 400,
    code: 'validation_error',
    field: 'row',
    row: 0,
  },
  {
    name: 'JSON NaN literal (not JSON)',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: '[{"symbol":"AAPL","timestamp":1704205800000,"close":NaN}]',
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /invalid JSON/,
  },
  {
    name: 'JSON 1e999 (Infinity)',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: '[{"symbol":"AAPL","timestamp":1704205800000,"close":1e999}]',
    status: 400,
    code: 'validation_error',
    field: 'close',
    row: 0,
  },
  {
    name: 'string where the dataset has numbers',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row(), row({ timestamp: tms(0, 1), close: 'abc' })]),
    status: 409,
    code: 'schema_conflict',
    message: /column 'close' has type float64/,
  },
  {
    name: 'number where the dataset has strings',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ venue: 5 })]),
    status: 409,
    code: 'schema_conflict',
    message: /column 'venue'/,
  },
  {
    name: 'missing symbol',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row(), { timestamp: ISO, close: 1 }]),
    status: 400,
    code: 'validation_error',
    field: 'symbol',
    row: 1,
  },
  {
    name: 'missing time',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([{ symbol: 'AAPL', close: 1 }]),
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 0,
  },
  {
    name: 'unparseable time',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ timestamp: 'yesterday' })]),
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 0,
  },
  {
    name: 'impossible date 2024-02-30',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row(), row({ timestamp: '2024-02-30T10:00:00Z' })]),
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 1,
  },
  {
    name: "hostile symbol '../x'",
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ symbol: '../x' })]),
    status: 400,
    code: 'validation_error',
    field: 'symbol',
    row: 0,
  },
  {
    name: 'symbol with NUL',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: '[{"symbol":"AA\\u0000PL","timestamp":1704205800000}]',
    status: 400,
    code: 'validation_error',
    field: 'symbol',
    row: 0,
    message: /control character/,
  },
  {
    name: 'symbol with a newline',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row(), row({ symbol: 'AA\nPL' })]),
    status: 400,
    code: 'validation_error',
    field: 'symbol',
    row: 1,
  },
  {
    name: 'empty symbol',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ symbol: '' })]),
    status: 400,
    code: 'validation_error',
    field: 'symbol',
    row: 0,
  },
  {
    name: 'object as a value',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ close: { a: 1 } })]),
    status: 400,
    code: 'validation_error',
    field: 'close',
    row: 0,
  },
  {
    name: 'array as a value',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ venue: ['a'] })]),
    status: 400,
    code: 'validation_error',
    field: 'venue',
    row: 0,
  },
  {
    name: 'bad column name',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ 'bad col': 1 })]),
    status: 400,
    code: 'validation_error',
    field: 'bad col',
  },
  {
    name: 'path-like column name',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ '../etc': 1 })]),
    status: 400,
    code: 'validation_error',
    field: '../etc',
  },
  {
    name: 'append: the batch repeats a key',
    method: 'POST',
    path: `${ROWS}?mode=append`,
    contentType: 'application/json',
    body: jsonBody([row({ timestamp: tms(3) }), row({ timestamp: tms(3) })]),
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 1,
  },
  {
    name: 'append: a key already stored',
    method: 'POST',
    path: `${ROWS}?mode=append`,
    contentType: 'application/json',
    body: jsonBody([row({ timestamp: tms(4) }), row({ close: 999 })]),
    status: 409,
    code: 'duplicate_key',
    message: /append rejected: .*AAPL@2024-01-0[26]T14:30:00/,
  },

  // ---- NDJSON, CSV, Parquet bodies -----------------------------------------------------------
  {
    name: 'NDJSON with a bad line 3',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: `${jsonBody(row())}\n${jsonBody(row({ timestamp: tms(0, 1) }))}\n{"symbol": "AAPL", oops}\n`,
    status: 400,
    code: 'validation_error',
    field: 'body',
    row: 2,
    line: 3,
  },
  {
    name: 'NDJSON NaN text',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: '{"symbol":"AAPL","timestamp":1704205800000,"close":NaN}\n',
    status: 400,
    code: 'validation_error',
    field: 'body',
    line: 1,
  },
  {
    name: 'NDJSON line that is an array',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: `${jsonBody(row())}\n[1,2]\n`,
    status: 400,
    code: 'validation_error',
    field: 'row',
    row: 1,
    line: 2,
  },
  {
    name: 'NDJSON missing time on row 2',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: `${jsonBody(row())}\n${jsonBody({ symbol: 'AAPL' })}\n`,
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 1,
    line: 2,
  },
  {
    name: 'NDJSON int64 with a fraction on line 2',
    method: 'POST',
    path: `${ROWS}?types=volume:int64`,
    contentType: NDJSON,
    body: `${jsonBody(row({ volume: 1 }))}\n${jsonBody(row({ timestamp: tms(0, 1), volume: 2.5 }))}\n`,
    status: 400,
    code: 'validation_error',
    field: 'volume',
    row: 1,
    line: 2,
    message: /^row 1 \(line 2\), field 'volume': expected an integer \(declared int64\), got 2\.5$/,
  },
  {
    name: 'NDJSON bad value on line 2 after a blank line 1',
    method: 'POST',
    path: `${ROWS}?types=volume:int64`,
    contentType: NDJSON,
    body: `\n${jsonBody(row({ volume: 2.5 }))}\n`,
    status: 400,
    code: 'validation_error',
    field: 'volume',
    row: 0,
    line: 2,
  },
  {
    name: 'NDJSON with CRLF line endings: bad value on line 4',
    method: 'POST',
    path: `${ROWS}?types=volume:int64`,
    contentType: NDJSON,
    body: `${jsonBody(row({ volume: 1 }))}\r\n\r\n${jsonBody(row({ timestamp: tms(0, 1), volume: 2 }))}\r\n${jsonBody(row({ timestamp: tms(0, 2), volume: 2.5 }))}\r\n`,
    status: 400,
    code: 'validation_error',
    field: 'volume',
    row: 2,
    line: 4,
  },
  {
    name: 'NDJSON with CRLF line endings: invalid JSON on line 3',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: `${jsonBody(row())}\r\n\r\n{"symbol": "AAPL", oops}\r\n`,
    status: 400,
    code: 'validation_error',
    field: 'body',
    row: 1,
    line: 3,
    message: /invalid JSON/,
  },
  {
    name: 'NDJSON with a BOM: bad value on line 2',
    method: 'POST',
    path: `${ROWS}?types=volume:int64`,
    contentType: NDJSON,
    body: `\uFEFF${jsonBody(row({ volume: 1 }))}\n${jsonBody(row({ timestamp: tms(0, 1), volume: 2.5 }))}\n`,
    status: 400,
    code: 'validation_error',
    field: 'volume',
    row: 1,
    line: 2,
  },
  {
    name: 'NDJSON last line without a newline: bad value on line 3',
    method: 'POST',
    path: `${ROWS}?types=volume:int64`,
    contentType: NDJSON,
    body: `${jsonBody(row({ volume: 1 }))}\n\n${jsonBody(row({ timestamp: tms(0, 1), volume: 2.5 }))}`,
    status: 400,
    code: 'validation_error',
    field: 'volume',
    row: 1,
    line: 3,
  },
  {
    name: 'NDJSON time not storable in time_unit=ns on line 3',
    method: 'POST',
    path: `${ROWS}?time_unit=ns`,
    contentType: NDJSON,
    body: `${jsonBody(row())}\n\n${jsonBody(row({ timestamp: 1500 }))}\n`,
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 1,
    line: 3,
    message: /not a multiple of 1000/,
  },
  {
    name: 'NDJSON unparseable time on line 3 (found by the storage)',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: `${jsonBody(row())}\n\n${jsonBody(row({ timestamp: 'not-a-time' }))}\n`,
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 1,
    line: 3,
    message: /cannot parse time/,
  },
  {
    name: 'NDJSON string in a new numbers column on line 3 (found by the storage)',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: `${jsonBody(row({ qty: 1 }))}\n\n${jsonBody(row({ timestamp: tms(0, 1), qty: 'x' }))}\n`,
    status: 400,
    code: 'validation_error',
    field: 'qty',
    row: 1,
    line: 3,
  },
  {
    name: 'NDJSON string in the float64 column close on line 3: 409 with row and line',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: `${jsonBody(row())}\n\n${jsonBody(row({ timestamp: tms(0, 1), close: 'x' }))}\n`,
    status: 409,
    code: 'schema_conflict',
    message: /^column 'close' has type float64 in the dataset, the write has string \(row 1, line 3\)$/,
    details: { column: 'close', row: 1, line: 3 },
  },
  {
    name: 'NDJSON bad value on the 10,000th line of a chunked body',
    method: 'POST',
    path: `${ROWS}?types=volume:int64`,
    contentType: NDJSON,
    body: chunked(ndjsonBadLine10000(jsonBody({ symbol: 'BULK', timestamp: tms(11), volume: 2.5 })), 1000),
    status: 400,
    code: 'validation_error',
    field: 'volume',
    row: 9900,
    line: 10_000,
  },
  {
    name: 'NDJSON unparseable time on the 10,000th line (found by the storage)',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: ndjsonBadLine10000(jsonBody({ symbol: 'BULK', timestamp: 'not-a-time', volume: 1 })),
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 9900,
    line: 10_000,
  },
  {
    name: 'NDJSON invalid JSON on the 10,000th line of a chunked body',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: chunked(ndjsonBadLine10000('{"symbol": "BULK", oops}'), 777),
    status: 400,
    code: 'validation_error',
    field: 'body',
    row: 9900,
    line: 10_000,
  },
  {
    name: 'CSV ragged row',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: `symbol,timestamp,close\nAAPL,${ISO},1.5\nAAPL,${ISO}\n`,
    status: 400,
    code: 'validation_error',
    field: 'row',
    row: 1,
    line: 3,
  },
  {
    name: 'CSV row with too many cells',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: `symbol,timestamp,close\nAAPL,${ISO},1.5,9\n`,
    status: 400,
    code: 'validation_error',
    field: 'row',
    row: 0,
    line: 2,
  },
  {
    name: 'CSV bad header (duplicate column)',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: `symbol,timestamp,close,close\nAAPL,${ISO},1,2\n`,
    status: 400,
    code: 'validation_error',
    field: 'header',
    line: 1,
  },
  {
    name: 'CSV bad header (empty name)',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: `symbol,,close\nAAPL,${ISO},1\n`,
    status: 400,
    code: 'validation_error',
    field: 'header',
    line: 1,
  },
  {
    name: 'CSV without a symbol column',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: `timestamp,close\n${ISO},1\n`,
    status: 400,
    code: 'validation_error',
    field: 'symbol',
    row: 0,
    line: 2,
  },
  {
    name: "CSV 'NaN' in a float column is a string: type conflict",
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: `symbol,timestamp,close\nAAPL,${ISO},NaN\n`,
    status: 409,
    code: 'schema_conflict',
    message: /column 'close'/,
  },
  {
    name: 'CSV unparseable time',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: `symbol,timestamp,close\nAAPL,${ISO},1\nAAPL,not-a-time,2\n`,
    status: 400,
    code: 'validation_error',
    field: 'timestamp',
    row: 1,
    line: 3,
  },
  {
    name: 'CSV int64 with a fraction on line 4 (after a blank line)',
    method: 'POST',
    path: `${ROWS}?types=volume:int64`,
    contentType: CSV,
    body: `symbol,timestamp,volume\r\nAAPL,${ISO},1\r\n\r\nAAPL,${ISO},2.5\r\n`,
    status: 400,
    code: 'validation_error',
    field: 'volume',
    row: 1,
    line: 4,
  },
  {
    name: 'garbage Parquet bytes',
    method: 'POST',
    path: ROWS,
    contentType: PARQUET,
    body: new TextEncoder().encode('this is not parquet at all, just text'),
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /Parquet/,
  },
  {
    name: 'truncated Parquet',
    method: 'POST',
    path: ROWS,
    contentType: PARQUET,
    body: parquetRows(20).slice(0, 100),
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /Parquet/,
  },
  {
    name: 'invalid UTF-8 in CSV',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: Uint8Array.from([0x73, 0x79, 0x6d, 0xff, 0xfe, 0x0a]),
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /UTF-8/,
  },

  // ---- empty bodies, content types, sizes ------------------------------------------------------
  {
    name: 'empty JSON body',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: '',
    status: 400,
    code: 'validation_error',
    field: 'body',
  },
  {
    name: 'empty NDJSON body',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: '',
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /empty/,
  },
  {
    name: 'empty CSV body',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: '',
    status: 400,
    code: 'validation_error',
    field: 'body',
  },
  {
    name: 'empty Parquet body',
    method: 'POST',
    path: ROWS,
    contentType: PARQUET,
    body: '',
    status: 400,
    code: 'validation_error',
    field: 'body',
  },
  {
    name: 'no body at all',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    status: 400,
    code: 'validation_error',
    field: 'body',
    message: /empty/,
  },
  {
    name: 'text/plain content type',
    method: 'POST',
    path: ROWS,
    contentType: 'text/plain',
    body: jsonBody([row()]),
    status: 415,
    code: 'unsupported_media_type',
    message: /text\/plain/,
  },
  {
    name: 'application/xml content type',
    method: 'POST',
    path: ROWS,
    contentType: 'application/xml',
    body: '<rows/>',
    status: 415,
    code: 'unsupported_media_type',
  },
  { name: 'no content type', method: 'POST', path: ROWS, body: jsonBody([row()]), status: 415, code: 'unsupported_media_type' },
  {
    name: 'oversized body (Content-Length)',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody(Array.from({ length: 20 }, (_, i) => row({ timestamp: tms(5, i) }))),
    small: true,
    status: 413,
    code: 'payload_too_large',
    message: new RegExp(`${SMALL_LIMIT} bytes`),
  },
  {
    name: 'oversized chunked NDJSON (no Content-Length)',
    method: 'POST',
    path: ROWS,
    contentType: NDJSON,
    body: chunked(Array.from({ length: 20 }, (_, i) => jsonBody(row({ timestamp: tms(5, i) }))).join('\n')),
    small: true,
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'oversized chunked CSV (no Content-Length)',
    method: 'POST',
    path: ROWS,
    contentType: CSV,
    body: chunked(
      `symbol,timestamp,close\n${Array.from({ length: 20 }, (_, i) => `AAPL,${new Date(tms(5, i)).toISOString()},1`).join('\n')}`,
    ),
    small: true,
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'oversized Parquet',
    method: 'POST',
    path: ROWS,
    contentType: PARQUET,
    body: parquetRows(200),
    small: true,
    status: 413,
    code: 'payload_too_large',
  },

  // ---- hostile dataset names -------------------------------------------------------------------
  {
    name: "dataset '../../etc' (encoded slashes)",
    method: 'POST',
    path: '/v1/datasets/..%2F..%2Fetc/rows',
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: "dataset 'a/b'",
    method: 'POST',
    path: '/v1/datasets/a%2Fb/rows',
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: "dataset '%2e%2e' (double-encoded dots)",
    method: 'POST',
    path: '/v1/datasets/%252e%252e/rows',
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: "dataset '..' (URL dot segment: normalized away, no such route)",
    method: 'POST',
    path: '/v1/datasets/%2e%2e/rows',
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'dataset of 65 characters',
    method: 'POST',
    path: `/v1/datasets/${'a'.repeat(65)}/rows`,
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'dataset with NUL',
    method: 'POST',
    path: '/v1/datasets/a%00b/rows',
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'dataset with a newline',
    method: 'GET',
    path: '/v1/datasets/a%0Ab/rows',
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'dataset starting with _',
    method: 'POST',
    path: '/v1/datasets/_hidden/rows',
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'dataset with a dot',
    method: 'POST',
    path: '/v1/datasets/a.b/rows',
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'dataset non-ASCII',
    method: 'GET',
    path: '/v1/datasets/%E2%82%AC',
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'describe a hostile name',
    method: 'GET',
    path: '/v1/datasets/..%2Fx',
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'delete under a hostile name',
    method: 'DELETE',
    path: '/v1/datasets/a%2Fb/rows?all=true',
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },
  {
    name: 'partitions of a hostile name',
    method: 'GET',
    path: '/v1/datasets/a%5Cb/partitions',
    status: 400,
    code: 'validation_error',
    field: 'dataset',
  },

  // ---- query parameters -----------------------------------------------------------------------
  { name: 'limit=-1', path: `${ROWS}?limit=-1`, status: 400, code: 'validation_error', field: 'limit' },
  { name: 'limit=abc', path: `${ROWS}?limit=abc`, status: 400, code: 'validation_error', field: 'limit' },
  { name: 'limit=1.5', path: `${ROWS}?limit=1.5`, status: 400, code: 'validation_error', field: 'limit' },
  {
    name: 'limit over 10,000,000',
    path: `${ROWS}?limit=10000001`,
    status: 400,
    code: 'validation_error',
    field: 'limit',
    message: /at most 10000000/,
  },
  { name: 'limit empty', path: `${ROWS}?limit=`, status: 400, code: 'validation_error', field: 'limit' },
  {
    name: 'limit given twice',
    path: `${ROWS}?limit=1&limit=2`,
    status: 400,
    code: 'validation_error',
    field: 'limit',
    message: /2 times/,
  },
  {
    name: 'start=notatime',
    path: `${ROWS}?start=notatime`,
    status: 400,
    code: 'validation_error',
    field: 'start',
    message: /notatime/,
  },
  { name: 'end=2024-13-01', path: `${ROWS}?end=2024-13-01`, status: 400, code: 'validation_error', field: 'end' },
  {
    name: 'start with a bad offset',
    path: `${ROWS}?start=2024-01-02T10:00:00%2B25:00`,
    status: 400,
    code: 'validation_error',
    field: 'start',
  },
  { name: 'negative epoch start', path: `${ROWS}?start=-5`, status: 400, code: 'validation_error', field: 'start' },
  {
    name: 'end before start',
    path: `${ROWS}?start=2024-01-03&end=2024-01-02`,
    status: 400,
    code: 'validation_error',
    field: 'end',
    message: /before start/,
  },
  {
    name: 'columns=unknown',
    path: `${ROWS}?columns=close,unknown`,
    status: 400,
    code: 'validation_error',
    field: 'columns',
    message: /unknown column 'unknown'/,
  },
  { name: 'columns with a bad name', path: `${ROWS}?columns=a;b`, status: 400, code: 'validation_error', field: 'columns' },
  {
    name: 'columns with an empty entry',
    path: `${ROWS}?columns=close,,venue`,
    status: 400,
    code: 'validation_error',
    field: 'columns',
    message: /empty entry/,
  },
  { name: 'format=xml', path: `${ROWS}?format=xml`, status: 400, code: 'validation_error', field: 'format', message: /xml/ },
  {
    name: 'mode=merge',
    method: 'POST',
    path: `${ROWS}?mode=merge`,
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'mode',
    message: /merge/,
  },
  { name: 'symbols= (empty)', path: `${ROWS}?symbols=`, status: 400, code: 'validation_error', field: 'symbols' },
  {
    name: 'symbols with an empty entry',
    path: `${ROWS}?symbols=AAPL,,MSFT`,
    status: 400,
    code: 'validation_error',
    field: 'symbols',
    message: /empty entry/,
  },
  {
    name: 'symbols=../x',
    path: `${ROWS}?symbols=..%2Fx`,
    status: 400,
    code: 'validation_error',
    field: 'symbols',
    message: /\.\./,
  },
  {
    name: 'symbols with NUL',
    path: `${ROWS}?symbols=AA%00PL`,
    status: 400,
    code: 'validation_error',
    field: 'symbols',
    message: /control character/,
  },
  {
    name: "unknown query parameter 'symbol' on rows (a typo would read everything)",
    path: `${ROWS}?symbol=AAPL`,
    status: 400,
    code: 'validation_error',
    field: 'symbol',
    message: /unknown query parameter 'symbol'/,
  },
  {
    name: 'unknown query parameter on a write',
    method: 'POST',
    path: `${ROWS}?mdoe=append`,
    contentType: 'application/json',
    body: jsonBody([row()]),
    status: 400,
    code: 'validation_error',
    field: 'mdoe',
  },
  {
    name: 'DELETE without a filter',
    method: 'DELETE',
    path: ROWS,
    status: 400,
    code: 'validation_error',
    field: 'all',
    message: /all=true/,
  },
  { name: 'DELETE all=yes', method: 'DELETE', path: `${ROWS}?all=yes`, status: 400, code: 'validation_error', field: 'all' },
  {
    name: 'DELETE all=true with a filter',
    method: 'DELETE',
    path: `${ROWS}?all=true&symbols=AAPL`,
    status: 400,
    code: 'validation_error',
    field: 'all',
  },
  {
    name: 'DELETE start=bad',
    method: 'DELETE',
    path: `${ROWS}?start=bad`,
    status: 400,
    code: 'validation_error',
    field: 'start',
  },
  {
    name: 'DELETE hostile symbol',
    method: 'DELETE',
    path: `${ROWS}?symbols=a%0Ab`,
    status: 400,
    code: 'validation_error',
    field: 'symbols',
  },
  {
    name: 'partitions start=bad',
    path: '/v1/datasets/{ds}/partitions?start=bad',
    status: 400,
    code: 'validation_error',
    field: 'start',
  },
  {
    name: 'partitions unknown parameter',
    path: '/v1/datasets/{ds}/partitions?limit=3',
    status: 400,
    code: 'validation_error',
    field: 'limit',
  },
  {
    name: 'manifest with a bad date',
    path: '/v1/datasets/{ds}/partitions/AAPL/2024-1-2',
    status: 400,
    code: 'validation_error',
    field: 'date',
  },
  {
    name: "manifest with symbol '..x'",
    path: '/v1/datasets/{ds}/partitions/..x/2024-01-02',
    status: 400,
    code: 'validation_error',
    field: 'symbol',
  },
  {
    name: 'manifest with a NUL symbol',
    path: '/v1/datasets/{ds}/partitions/A%00B/2024-01-02',
    status: 400,
    code: 'validation_error',
    field: 'symbol',
  },
  {
    name: 'describe with a query parameter',
    path: '/v1/datasets/{ds}?verbose=1',
    status: 400,
    code: 'validation_error',
    field: 'verbose',
  },

  // ---- auth ------------------------------------------------------------------------------------
  {
    name: 'missing token on a write',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ timestamp: tms(6) })]),
    token: null,
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'wrong token on a write',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ timestamp: tms(6) })]),
    token: 'admin-token2',
    status: 401,
    code: 'unauthorized',
    message: /unknown bearer token/,
  },
  { name: 'missing token on a read', path: ROWS, token: null, status: 401, code: 'unauthorized' },
  {
    name: 'Basic auth instead of Bearer',
    path: ROWS,
    token: null,
    headers: { authorization: 'Basic YWRtaW46YWRtaW4=' },
    status: 401,
    code: 'unauthorized',
  },
  {
    name: "'Bearer' without a token",
    path: ROWS,
    token: null,
    headers: { authorization: 'Bearer ' },
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'read token on a write route',
    method: 'POST',
    path: ROWS,
    contentType: 'application/json',
    body: jsonBody([row({ timestamp: tms(6) })]),
    token: 'reader-token',
    status: 403,
    code: 'forbidden',
    message: /'write' scope/,
  },
  {
    name: 'read token on DELETE',
    method: 'DELETE',
    path: `${ROWS}?all=true`,
    token: 'reader-token',
    status: 403,
    code: 'forbidden',
  },
  {
    name: 'write token on a read route',
    path: ROWS,
    token: 'writer-token',
    status: 403,
    code: 'forbidden',
    message: /'read' scope/,
  },
  {
    name: 'read token on /v1/stats',
    path: '/v1/stats',
    token: 'reader-token',
    status: 403,
    code: 'forbidden',
    message: /'admin' scope/,
  },
  {
    name: 'auth comes before validation (no token, bad body)',
    method: 'POST',
    path: `${ROWS}?mode=merge`,
    contentType: 'text/plain',
    body: 'x',
    token: null,
    status: 401,
    code: 'unauthorized',
  },
]

describe.each(LAKES)('bad requests over the $name lake', ({ name, open }) => {
  const skip = (name === 's3' && !s3Available) || (name === 'postgres' && !pgAvailable)
  let lake: TestLake
  let storage: DataStorage
  let app: Hono
  let small: Hono
  const ds = uniqueDataset('seed')

  beforeAll(async () => {
    if (skip) return
    lake = (await open())!
    storage = lake.storage
    app = createApp({ storage, tokens: TOKENS })
    small = createApp({ storage, tokens: TOKENS, maxBodyBytes: SMALL_LIMIT })
    // seed: float64 `close`, string `venue`, two symbols over two days
    await storage.write(ds, [
      row(),
      row({ timestamp: tms(0, 1), close: 2.5 }),
      row({ symbol: 'MSFT', timestamp: tms(1), venue: 'XNYS' }),
      row({ timestamp: tms(4) }),
    ])
  })
  afterAll(async () => {
    await lake?.cleanup()
  })

  it('has at least 50 cases, each with a unique name', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(50)
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length)
  })

  it.skipIf(skip).each(CASES)('$name → $status $code', async (c) => {
    const before = await snapshot(storage)
    const headers: Record<string, string> = { ...c.headers }
    const token = c.token === undefined ? 'admin-token' : c.token
    if (token) headers.authorization = `Bearer ${token}`
    if (c.contentType) headers['content-type'] = c.contentType
    const body = typeof c.body === 'function' ? c.body() : c.body
    const init: RequestInit & { duplex?: 'half' } = { method: c.method ?? 'GET', headers, body: body as BodyInit | undefined }
    if (body instanceof ReadableStream) init.duplex = 'half'
    const res = await (c.small ? small : app).request(c.path.replaceAll('{ds}', ds), init)

    const payload = await json(res)
    expect(res.status, JSON.stringify(payload)).toBe(c.status)
    expect(Object.keys(payload)).toEqual(['error'])
    expect(payload.error.code).toBe(c.code)
    expect(typeof payload.error.message).toBe('string')
    expect(payload.error.details).toBeTypeOf('object')
    if (c.field !== undefined) {
      const issue = payload.error.details.issues?.[0]
      expect(issue, JSON.stringify(payload)).toBeDefined()
      expect(issue.field).toBe(c.field)
      expect(payload.error.message).toContain(`'${c.field}'`)
      if (c.row !== undefined) {
        expect(issue.row).toBe(c.row)
        expect(payload.error.message).toContain(`row ${c.row}`)
      }
      if (c.line !== undefined) {
        expect(issue.line).toBe(c.line)
        expect(payload.error.message).toContain(`line ${c.line}`)
      }
    }
    if (c.message) expect(payload.error.message).toMatch(c.message)
    if (c.details) expect(payload.error.details).toMatchObject(c.details)
    if (c.status === 401) expect(res.headers.get('www-authenticate')).toBe('Bearer')
    expect(await snapshot(storage)).toBe(before)
  })

  it.skipIf(skip)('the seeded rows are all still there', async () => {
    expect((await storage.read(ds)).length).toBe(4)
    expect(await storage.listDatasets()).toEqual([ds])
  })
})
