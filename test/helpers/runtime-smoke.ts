/**
 * The smoke steps every runtime entry passes over every backend (issue 14; the matrix in
 * test/runtime-matrix.test.ts starts each runtime and runs them), and that scripts/smoke.ts runs
 * against a deployment: /healthz names the backend; writes without a valid token are 401s and
 * store nothing; rows written as NDJSON and CSV read back exactly as JSON and Parquet; bad rows
 * are 400s naming row and field and store nothing; a training set's `.npy` parts hold exactly the
 * rows written (targets, scaled features, leakage-safe split); a maintenance run compacts a
 * two-file partition and keeps every row; cleanup deletes what the run wrote.
 *
 * Framework-free (no vitest): steps throw Errors that say what was expected and what came back.
 * The datasets are fresh (`smoke_<8 hex>` and `<that>_train` unless a prefix is given): a step
 * refuses to write into a dataset that holds rows, and cleanup deletes only the rows of the
 * datasets this run wrote (their names stay listed, empty: a later run may reuse the prefix).
 */

import assert from 'node:assert/strict'
import { parquetMetadata, parquetReadObjects } from 'hyparquet'
import { readNpy } from './npy-reader.js'

export interface SmokeTarget {
  /** Base URL, e.g. `http://127.0.0.1:8787` (a trailing slash is dropped). */
  url: string
  /** Bearer token with the admin scope; absent: an open API (loopback Node/Bun/Deno without API_TOKENS). */
  token?: string
  /** The backend /healthz must name (`local_parquet`, `s3_parquet`, ...); absent: any. */
  backend?: string
  /** Prefix of the datasets written (`<prefix>` and `<prefix>_train`); default `smoke_<8 random hex>`. */
  dataset?: string
  /**
   * Whether the maintenance run must compact the two-file partition the steps make. Default: yes
   * on a Parquet lake (`local_parquet`, `s3_parquet`: the default `size_based` rotation merges two
   * small files), must compact nothing elsewhere (databases have rows, not files). `false` for a
   * deployment whose `file_rotation` would not compact two small files: then the report is
   * checked for the dataset, no errors and no skip, and the rows for being unchanged.
   */
  compaction?: boolean
}

/** One bar as the steps write it and a JSON read returns it. */
export interface SmokeRow {
  symbol: string
  timestamp: string
  close: number
  volume: number
}

/** What the steps share: the target, the datasets and what was written to them. */
export interface SmokeContext {
  readonly url: string
  readonly token: string | undefined
  /** `{ authorization: 'Bearer <token>' }`, or `{}` without a token. */
  readonly auth: Record<string, string>
  readonly expectedBackend: string | undefined
  readonly compaction: boolean | undefined
  /** The dataset of the ingest, read-back, 4xx and maintenance steps. */
  readonly dataset: string
  /** The dataset of the training-set step. */
  readonly trainDataset: string
  /** The backend /healthz named (set by the healthz step). */
  backend: string | undefined
  /** Datasets this run found absent or empty and then wrote to: cleanup deletes their rows. */
  readonly created: Set<string>
  /** `created` as an array, in the order written. */
  readonly datasets: readonly string[]
  /** Rows of `dataset` as a JSON read must return them, in (symbol, timestamp) order. */
  rows: SmokeRow[]
}

export interface SmokeStep {
  name: string
  /** Throws when the step fails; may return a note (e.g. why it did nothing). */
  run(ctx: SmokeContext): Promise<string | undefined>
}

export interface SmokeResult {
  name: string
  ok: boolean
  ms: number
  error?: string
  /** What a passing step wants said (e.g. `no token: the API is open`). */
  note?: string
  /** Not run because an earlier step failed (`ok` is false). */
  skipped?: boolean
}

export type SmokeStepListener = (name: string, ok: boolean, ms: number, error?: string, note?: string, skipped?: boolean) => void

/** The rows the ingest step writes (NDJSON: AAPL, CSV: MSFT). */
export const SMOKE_ROWS: readonly SmokeRow[] = [
  { symbol: 'AAPL', timestamp: '2024-01-02T14:30:00.000Z', close: 187.3, volume: 120300 },
  { symbol: 'AAPL', timestamp: '2024-01-02T14:31:00.000Z', close: 187.45, volume: 98100 },
  { symbol: 'MSFT', timestamp: '2024-01-02T14:30:00.000Z', close: 370.1, volume: 51000 },
]
/** The bar the maintenance step appends to the AAPL partition (its second data file). */
const APPENDED_ROW: SmokeRow = { symbol: 'AAPL', timestamp: '2024-01-02T14:32:00.000Z', close: 187.6, volume: 77000 }
const AAPL_PARTITION = 'symbol=AAPL/date=2024-01-02'

/** Training data: 3 symbols × 80 one-minute bars from a formula (two-decimal closes, integer volumes). */
const TRAIN_SYMBOLS = ['IWM', 'QQQ', 'SPY']
const TRAIN_BARS = 80
const TRAIN_T0 = Date.UTC(2024, 0, 3, 14, 30)
const MIN = 60_000
/**
 * The split of 80 distinct timestamps with testSize 0.2 and validationSize 0.1: train minutes
 * 0-55, validation 56-63, test 64-79; the last minute of each segment is purged (its `returns`
 * label lies in the next segment, or past the data), so the rows are minutes 0-54, 56-62, 64-78.
 */
const TRAIN_SEGMENTS = { train: [0, 55], validation: [56, 63], test: [64, 79] } as const
const TRAINING_REQUEST = { features: ['close', 'volume'], target: 'returns', testSize: 0.2, validationSize: 0.1, format: 'npy' }

const LAKES = new Set(['local_parquet', 's3_parquet'])
const DATASET_PREFIX = /^[A-Za-z0-9][A-Za-z0-9_-]{0,57}$/
const REQUEST_TIMEOUT_MS = 120_000

function trainBar(si: number, k: number): SmokeRow {
  return {
    symbol: TRAIN_SYMBOLS[si],
    timestamp: new Date(TRAIN_T0 + k * MIN).toISOString(),
    close: (10_000 + 2_500 * si + ((k * 37 + si * 11) % 101) - 50) / 100,
    volume: 1_000 + ((k * 53 + si * 17) % 997),
  }
}

/** A context for `target`; throws (a usage error) on a bad URL or dataset prefix. */
export function smokeContext(target: SmokeTarget): SmokeContext {
  let url: URL
  try {
    url = new URL(target.url)
  } catch {
    throw new Error(`url: expected an http(s) URL like http://127.0.0.1:8787, got ${JSON.stringify(target.url)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`url: expected http: or https:, got ${JSON.stringify(url.protocol)}`)
  }
  if (url.search || url.hash) throw new Error(`url: expected a base URL without query or fragment, got ${target.url}`)
  const prefix = target.dataset ?? `smoke_${Array.from(crypto.getRandomValues(new Uint8Array(4)), hex).join('')}`
  if (!DATASET_PREFIX.test(prefix)) {
    throw new Error(
      `dataset: expected 1-58 letters, digits, '_' or '-' starting with a letter or digit (the steps also write '<prefix>_train'), got ${JSON.stringify(prefix)}`,
    )
  }
  if (target.token !== undefined && target.token.trim() === '') throw new Error('token: empty (leave it out for an open API)')
  return {
    url: url.href.replace(/\/+$/, ''),
    token: target.token,
    auth: target.token === undefined ? {} : { authorization: `Bearer ${target.token}` },
    expectedBackend: target.backend,
    compaction: target.compaction,
    dataset: prefix,
    trainDataset: `${prefix}_train`,
    backend: undefined,
    created: new Set(),
    get datasets() {
      return [...this.created]
    },
    rows: [],
  }
}

const hex = (b: number) => b.toString(16).padStart(2, '0')

// ---------------------------------------------------------------------------------------------
// HTTP and assertions

interface Answer {
  status: number
  headers: Headers
  bytes: Uint8Array
  text: () => string
  json: () => any
}

async function call(
  ctx: SmokeContext,
  method: string,
  path: string,
  options: { body?: string; type?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers = { ...(options.headers ?? ctx.auth), ...(options.type ? { 'content-type': options.type } : {}) }
  let res: Response
  try {
    res = await fetch(`${ctx.url}${path}`, {
      method,
      headers,
      body: options.body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
  } catch (err) {
    throw new Error(`${method} ${path}: request failed: ${(err as Error).message}`)
  }
  const bytes = new Uint8Array(await res.arrayBuffer())
  const text = () => new TextDecoder().decode(bytes)
  return {
    status: res.status,
    headers: res.headers,
    bytes,
    text,
    json: () => {
      try {
        return JSON.parse(text())
      } catch {
        throw new Error(`${method} ${path}: expected a JSON body, got ${JSON.stringify(text().slice(0, 300))}`)
      }
    },
  }
}

function expectStatus(res: Answer, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what}: expected status ${status}, got ${res.status}: ${res.text().slice(0, 600)}`)
}

/** deepStrictEqual with `what` before the diff. */
function eq(actual: unknown, expected: unknown, what: string): void {
  try {
    assert.deepStrictEqual(actual, expected)
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`)
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message)
}

const rowsPath = (ds: string) => `/v1/datasets/${encodeURIComponent(ds)}/rows`

/**
 * The dataset must not exist (404) or hold no rows (a previous smoke run's, emptied by its
 * cleanup): the steps never write into data they did not write, since cleanup deletes every row.
 */
async function expectFresh(ctx: SmokeContext, ds: string, when: string): Promise<'absent' | 'empty'> {
  const path = `/v1/datasets/${encodeURIComponent(ds)}`
  const res = await call(ctx, 'GET', path)
  if (res.status === 404) return 'absent'
  expectStatus(res, 200, `GET ${path} ${when} (expected 404, or 200 with no rows)`)
  const rows = res.json().rows
  if (rows !== 0) {
    throw new Error(
      `dataset '${ds}' holds ${rows} rows ${when}: the smoke steps write to and then delete every row of their datasets, so they use only datasets that do not exist or are empty (choose another prefix)`,
    )
  }
  return 'empty'
}

async function readJson(ctx: SmokeContext, ds: string, query = ''): Promise<unknown[]> {
  const res = await call(ctx, 'GET', `${rowsPath(ds)}?format=json${query}`)
  expectStatus(res, 200, `GET ${rowsPath(ds)}?format=json${query}`)
  check(
    /^application\/json\b/.test(res.headers.get('content-type') ?? ''),
    `JSON read: content-type ${res.headers.get('content-type')}`,
  )
  return res.json()
}

async function write(ctx: SmokeContext, ds: string, type: string, body: string, rowsWritten: number): Promise<void> {
  const res = await call(ctx, 'POST', rowsPath(ds), { type, body })
  expectStatus(res, 200, `POST ${rowsPath(ds)} (${type})`)
  const out = res.json()
  eq(out.rowsWritten, rowsWritten, `POST ${rowsPath(ds)} (${type}): rowsWritten`)
}

const ndjson = (rows: readonly SmokeRow[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('')
const byKey = (a: SmokeRow, b: SmokeRow) =>
  a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0

/** A 400 validation error whose first issue is `issue` exactly, and whose message names row and field. */
function expectRowIssue(res: Answer, what: string, issue: { row: number; line?: number; field: string }): void {
  expectStatus(res, 400, what)
  const body = res.json()
  eq(body?.error?.code, 'validation_error', `${what}: error code`)
  const first = body.error.details?.issues?.[0]
  check(first !== undefined, `${what}: no details.issues in ${res.text().slice(0, 400)}`)
  const { message, ...where } = first
  eq(where, issue, `${what}: details.issues[0] (row, line, field)`)
  check(typeof message === 'string' && message.length > 0, `${what}: issue without a message`)
  const line = issue.line === undefined ? '' : ` (line ${issue.line})`
  const named = `row ${issue.row}${line}, field '${issue.field}'`
  check(
    body.error.message.startsWith(named),
    `${what}: message ${JSON.stringify(body.error.message)} does not start with "${named}"`,
  )
}

// ---------------------------------------------------------------------------------------------
// The steps

const healthz: SmokeStep = {
  name: 'healthz',
  async run(ctx) {
    const res = await call(ctx, 'GET', '/healthz', { headers: {} })
    expectStatus(res, 200, 'GET /healthz')
    const body = res.json()
    check(body?.ok === true, `GET /healthz: expected ok: true, got ${res.text()}`)
    check(typeof body.backend === 'string' && body.backend !== '', `GET /healthz: no backend named in ${res.text()}`)
    if (ctx.expectedBackend !== undefined && body.backend !== ctx.expectedBackend) {
      throw new Error(`GET /healthz: expected backend '${ctx.expectedBackend}', the server runs '${body.backend}'`)
    }
    ctx.backend = body.backend
    return `backend ${body.backend}`
  },
}

const authStep: SmokeStep = {
  name: 'auth',
  async run(ctx) {
    if (ctx.token === undefined) return 'no token given: the API is open, nothing to check'
    const before = await expectFresh(ctx, ctx.dataset, 'before the writes without a valid token')
    ctx.created.add(ctx.dataset) // fresh: cleanup may delete what a wrongly accepted write stored
    const body = JSON.stringify(SMOKE_ROWS)
    const wrong = `wrong-${Array.from(crypto.getRandomValues(new Uint8Array(12)), hex).join('')}`
    for (const [label, headers] of [
      ['without a token', {}],
      ['with a wrong token', { authorization: `Bearer ${wrong}` }],
    ] as const) {
      const res = await call(ctx, 'POST', rowsPath(ctx.dataset), { type: 'application/json', body, headers })
      const what = `POST ${rowsPath(ctx.dataset)} ${label}`
      expectStatus(res, 401, what)
      eq(res.json()?.error?.code, 'unauthorized', `${what}: error code`)
    }
    eq(
      await expectFresh(ctx, ctx.dataset, 'after the writes without a valid token'),
      before,
      `dataset '${ctx.dataset}' after the refused writes`,
    )
    return undefined
  },
}

const ingest: SmokeStep = {
  name: 'ingest NDJSON and CSV',
  async run(ctx) {
    await expectFresh(ctx, ctx.dataset, 'before the first write')
    ctx.created.add(ctx.dataset)
    const [a1, a2, m1] = SMOKE_ROWS
    await write(ctx, ctx.dataset, 'application/x-ndjson', ndjson([a1, a2]), 2)
    const csv = `symbol,timestamp,close,volume\n${m1.symbol},${m1.timestamp},${m1.close},${m1.volume}\n`
    await write(ctx, ctx.dataset, 'text/csv', csv, 1)
    ctx.rows = [...SMOKE_ROWS]
    return undefined
  },
}

const readBack: SmokeStep = {
  name: 'read back JSON and Parquet',
  async run(ctx) {
    eq(await readJson(ctx, ctx.dataset), ctx.rows, 'JSON read of the rows written')
    const path = `${rowsPath(ctx.dataset)}?format=parquet`
    const res = await call(ctx, 'GET', path)
    expectStatus(res, 200, `GET ${path}`)
    eq(res.headers.get('content-type'), 'application/vnd.apache.parquet', `GET ${path}: content-type`)
    const file = res.bytes.buffer.slice(res.bytes.byteOffset, res.bytes.byteOffset + res.bytes.byteLength) as ArrayBuffer
    const ts = parquetMetadata(file).schema.find((s) => s.name === 'timestamp')
    eq(
      { type: ts?.type, logical: ts?.logical_type },
      { type: 'INT64', logical: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } },
      'Parquet timestamp column (INT64 TIMESTAMP(MICROS, UTC))',
    )
    const rows = await parquetReadObjects({ file })
    // hyparquet gives TIMESTAMP(MICROS) as a Date: exact here, the bars are whole milliseconds.
    const got = rows.map((r) => {
      check(r.timestamp instanceof Date, `Parquet timestamp: expected a Date from hyparquet, got ${typeof r.timestamp}`)
      return { symbol: r.symbol, timestamp: (r.timestamp as Date).toISOString(), close: r.close, volume: r.volume }
    })
    eq(got, ctx.rows, 'Parquet read of the rows written (symbol, timestamp, close, volume)')
    return undefined
  },
}

const badRows: SmokeStep = {
  name: '4xx: bad rows refused, nothing stored',
  async run(ctx) {
    const good = { symbol: 'NVDA', timestamp: '2024-01-02T14:30:00.000Z', close: 495.22, volume: 30100 }
    const badTime = await call(ctx, 'POST', rowsPath(ctx.dataset), {
      type: 'application/json',
      body: JSON.stringify([good, { ...good, timestamp: 'not a time' }]),
    })
    expectRowIssue(badTime, 'a JSON batch whose row 1 has timestamp "not a time"', { row: 1, field: 'timestamp' })
    // a declared float64 column: 400 naming row, CSV line and field
    const csv = `symbol,timestamp,close,volume\n${good.symbol},${good.timestamp},${good.close},${good.volume}\nNVDA,2024-01-02T14:31:00.000Z,abc,30200\n`
    const badCsv = await call(ctx, 'POST', `${rowsPath(ctx.dataset)}?types=close:float64`, { type: 'text/csv', body: csv })
    expectRowIssue(badCsv, 'a CSV batch (types=close:float64) whose line 3 has close "abc"', { row: 1, line: 3, field: 'close' })
    // undeclared: the dataset's float64 column conflicts with the batch's strings: 409 naming column, row and line
    const badNdjson = await call(ctx, 'POST', rowsPath(ctx.dataset), {
      type: 'application/x-ndjson',
      body: ndjson([good, { ...good, timestamp: '2024-01-02T14:31:00.000Z', close: 'abc' as unknown as number }]),
    })
    const what = 'an NDJSON batch whose row 1 has close "abc"'
    expectStatus(badNdjson, 409, what)
    const conflict = badNdjson.json()?.error
    eq(
      { code: conflict?.code, details: conflict?.details },
      { code: 'schema_conflict', details: { column: 'close', expected: 'float64', got: 'string', row: 1, line: 2 } },
      what,
    )
    eq(await readJson(ctx, ctx.dataset, '&symbols=NVDA'), [], 'rows of NVDA (only in the refused batches)')
    eq(await readJson(ctx, ctx.dataset), ctx.rows, 'the rows after the refused batches')
    return undefined
  },
}

async function npyPart(ctx: SmokeContext, href: string, descr: string, shape: number[], what: string) {
  check(typeof href === 'string' && href.startsWith('/'), `${what}: expected a link, got ${JSON.stringify(href)}`)
  const res = await call(ctx, 'GET', href)
  expectStatus(res, 200, `GET ${what}`)
  const file = readNpy(res.bytes)
  eq({ descr: file.descr, shape: file.shape, fortranOrder: file.fortranOrder }, { descr, shape, fortranOrder: false }, what)
  return file.data
}

const training: SmokeStep = {
  name: 'training-set .npy',
  async run(ctx) {
    const ds = ctx.trainDataset
    await expectFresh(ctx, ds, 'before the first write')
    ctx.created.add(ds)
    const bars = TRAIN_SYMBOLS.flatMap((_, si) => Array.from({ length: TRAIN_BARS }, (_, k) => trainBar(si, k)))
    await write(ctx, ds, 'application/x-ndjson', ndjson(bars), bars.length)
    const barAt = new Map(bars.map((b) => [`${b.symbol}@${Date.parse(b.timestamp)}`, b]))

    const res = await call(ctx, 'POST', `/v1/datasets/${ds}/training-set`, {
      type: 'application/json',
      body: JSON.stringify(TRAINING_REQUEST),
    })
    expectStatus(res, 200, `POST /v1/datasets/${ds}/training-set`)
    const answer = res.json()
    eq(answer.features, ['close', 'volume'], 'training set: features')
    eq(answer.target, { kind: 'returns', column: 'close', horizon: 1, name: 'returns_1' }, 'training set: target')
    eq(answer.distinctTimestamps, TRAIN_BARS, 'training set: distinctTimestamps')
    eq([...answer.symbols].sort(), TRAIN_SYMBOLS, 'training set: symbols')
    const scaler = answer.scaler
    eq(
      { type: scaler?.type, featureNames: scaler?.featureNames },
      { type: 'standard', featureNames: ['close', 'volume'] },
      'training set: scaler',
    )

    const segTimes: Record<string, number[]> = {}
    const trainValues: number[][] = [[], []]
    for (const [segment, [first, last]] of Object.entries(TRAIN_SEGMENTS)) {
      const d = answer.segments?.[segment]
      const what = `training set ${segment}`
      // rows in (symbol, timestamp) order: each symbol's minutes first..last-1 (minute `last` is purged)
      const want = TRAIN_SYMBOLS.flatMap((_, si) => Array.from({ length: last - first }, (_, j) => trainBar(si, first + j)))
      const n = want.length
      eq({ rows: d?.rows, shape: d?.shape, dtype: d?.dtype }, { rows: n, shape: { X: [n, 2], y: [n] }, dtype: '<f4' }, what)
      const X = await npyPart(ctx, d.X.href, '<f4', [n, 2], `${what} X.npy`)
      const y = await npyPart(ctx, d.y.href, '<f4', [n], `${what} y.npy`)
      const ts = (await npyPart(ctx, d.timestamps.href, '<i8', [n], `${what} timestamps.npy`)) as BigInt64Array
      const sym = (await npyPart(ctx, d.symbols.href, '<u4', [n], `${what} symbols.npy`)) as Uint32Array
      const rowsGot = Array.from({ length: n }, (_, i) => `${answer.symbols[sym[i]]}@${ts[i] / 1000n}`)
      eq(
        rowsGot,
        want.map((b) => `${b.symbol}@${Date.parse(b.timestamp)}`),
        `${what}: rows (symbols.npy @ timestamps.npy in ms)`,
      )
      for (let i = 0; i < n; i++) {
        check(ts[i] % 1000n === 0n, `${what}: timestamps.npy[${i}] = ${ts[i]} µs is not a whole millisecond`)
        const bar = barAt.get(rowsGot[i])!
        const next = barAt.get(`${bar.symbol}@${Date.parse(bar.timestamp) + MIN}`)!
        const wantY = Math.fround(next.close / bar.close - 1)
        check(
          Object.is(y[i], wantY),
          `${what}: y.npy[${i}] (${rowsGot[i]}) = ${y[i]}, expected fround(${next.close}/${bar.close} - 1) = ${wantY}`,
        )
        const values = [bar.close, bar.volume]
        for (let j = 0; j < 2; j++) {
          const wantX = Math.fround((values[j] - scaler.center[j]) / scaler.scale[j])
          check(
            Object.is(X[i * 2 + j], wantX),
            `${what}: X.npy[${i}, ${j}] (${rowsGot[i]} ${answer.features[j]} ${values[j]}) = ${X[i * 2 + j]}, expected fround((x - center) / scale) = ${wantX}`,
          )
          if (segment === 'train') trainValues[j].push(values[j])
        }
      }
      segTimes[segment] = Array.from(ts, Number) // epoch µs: exact as numbers (< 2^53)
    }
    check(
      Math.max(...segTimes.train) < Math.min(...segTimes.validation),
      'split leaks: a train timestamp is not before every validation timestamp',
    )
    check(
      Math.max(...segTimes.validation) < Math.min(...segTimes.test),
      'split leaks: a validation timestamp is not before every test timestamp',
    )
    // the scaler was fitted on the training rows only: mean and population standard deviation
    for (let j = 0; j < 2; j++) {
      const v = trainValues[j]
      const mean = v.reduce((s, x) => s + x, 0) / v.length
      const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length)
      const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b))
      check(
        close(scaler.center[j], mean) && close(scaler.scale[j], std) && scaler.counts[j] === v.length,
        `training set: scaler for ${answer.features[j]} is center ${scaler.center[j]}, scale ${scaler.scale[j]}, count ${scaler.counts[j]}; the training rows give mean ${mean}, std ${std}, count ${v.length}`,
      )
    }
    return undefined
  },
}

const maintenance: SmokeStep = {
  name: 'maintenance run',
  async run(ctx) {
    await write(ctx, ctx.dataset, 'application/json', JSON.stringify([APPENDED_ROW]), 1)
    ctx.rows = [...ctx.rows, APPENDED_ROW].sort(byKey)
    const describe = async () => {
      const res = await call(ctx, 'GET', `/v1/datasets/${ctx.dataset}`)
      expectStatus(res, 200, `GET /v1/datasets/${ctx.dataset}`)
      return res.json()
    }
    const before = await describe()
    eq({ rows: before.rows, partitions: before.partitions }, { rows: 4, partitions: 2 }, 'the dataset before maintenance')
    const path = `/v1/maintenance/run?dataset=${ctx.dataset}`
    const res = await call(ctx, 'POST', path)
    expectStatus(res, 200, `POST ${path}`)
    const report = res.json()
    eq({ backend: report.backend, dryRun: report.dryRun }, { backend: ctx.backend, dryRun: false }, 'maintenance report')
    eq(
      (report.datasets ?? []).map((d: any) => d.dataset),
      [ctx.dataset],
      'maintenance report: datasets (the run was for one dataset)',
    )
    const d = report.datasets[0]
    eq({ skipped: d.skipped, errors: d.errors }, { skipped: null, errors: [] }, `maintenance report for ${ctx.dataset}`)
    const expectCompaction = ctx.compaction ?? LAKES.has(ctx.backend ?? '')
    let note: string
    if (expectCompaction) {
      // the default size_based rotation: two files under half of max_file_size_mb are merged into one
      eq(
        d.compacted.map((c: any) => ({
          partition: c.partition,
          filesBefore: c.filesBefore,
          filesAfter: c.filesAfter,
          rows: c.rows,
        })),
        [{ partition: AAPL_PARTITION, filesBefore: 2, filesAfter: 1, rows: 3 }],
        'maintenance report: compacted (the AAPL partition had two files)',
      )
      eq(
        {
          partitionsCompacted: report.totals.partitionsCompacted,
          filesMerged: report.totals.filesMerged,
          filesWritten: report.totals.filesWritten,
        },
        { partitionsCompacted: 1, filesMerged: 2, filesWritten: 1 },
        'maintenance report: totals',
      )
      eq(d.partitionsChecked, 2, 'maintenance report: partitionsChecked')
      eq((await describe()).files, before.files - 1, 'files of the dataset after compaction (two merged into one)')
      note = `compacted ${AAPL_PARTITION}: ${d.compacted[0].reason}`
    } else if (ctx.compaction === undefined) {
      eq(d.compacted, [], `maintenance report: compacted (backend ${ctx.backend} has no files to compact)`)
      note = `nothing to compact on ${ctx.backend}`
    } else {
      note = `compaction not required: compacted ${d.compacted.length} partition(s)`
    }
    eq(await readJson(ctx, ctx.dataset), ctx.rows, 'the rows after maintenance')
    return note
  },
}

/** Statuses that say DELETE is not allowed to this token or deployment: cleanup notes them and passes. */
const NOT_ALLOWED = new Set([401, 403, 405])

const cleanup: SmokeStep = {
  name: 'cleanup',
  async run(ctx) {
    if (ctx.created.size === 0) return 'nothing written'
    const notes: string[] = []
    for (const ds of ctx.created) {
      const res = await call(ctx, 'DELETE', `${rowsPath(ds)}?all=true`)
      if (NOT_ALLOWED.has(res.status)) {
        notes.push(`${ds}: not deleted (${res.status} ${res.json()?.error?.message ?? ''})`)
        continue
      }
      if (res.status === 404) {
        notes.push(`${ds}: nothing stored`)
        continue
      }
      expectStatus(res, 200, `DELETE ${rowsPath(ds)}?all=true`)
      const deleted = res.json().rowsDeleted
      check(Number.isInteger(deleted) && deleted > 0, `DELETE ${rowsPath(ds)}?all=true: rowsDeleted ${deleted}`)
      eq(await readJson(ctx, ds), [], `the rows of ${ds} after DELETE ?all=true`)
      notes.push(`${ds}: ${deleted} rows deleted`)
    }
    return notes.join('; ')
  },
}

/** The steps in order; each depends on the ones before it (cleanup runs whatever happened). */
export const SMOKE_STEPS: readonly SmokeStep[] = [healthz, authStep, ingest, readBack, badRows, training, maintenance, cleanup]

/**
 * Runs the steps in order against `target`. After the first failure the remaining steps are not
 * run (they depend on it: `skipped`, `ok: false`), except cleanup, which always runs so a
 * deployed store keeps nothing of a failed run.
 */
export async function runSmoke(target: SmokeTarget | SmokeContext, onStep?: SmokeStepListener): Promise<SmokeResult[]> {
  const ctx = 'created' in target ? target : smokeContext(target)
  const results: SmokeResult[] = []
  let failed: string | undefined
  for (const step of SMOKE_STEPS) {
    let result: SmokeResult
    if (failed !== undefined && step !== cleanup) {
      result = { name: step.name, ok: false, ms: 0, skipped: true, error: `not run: step '${failed}' failed` }
    } else {
      const t0 = performance.now()
      try {
        const note = await step.run(ctx)
        result = { name: step.name, ok: true, ms: Math.round(performance.now() - t0), ...(note ? { note } : {}) }
      } catch (err) {
        result = { name: step.name, ok: false, ms: Math.round(performance.now() - t0), error: (err as Error).message }
        failed ??= step.name
      }
    }
    results.push(result)
    onStep?.(result.name, result.ok, result.ms, result.error, result.note, result.skipped)
  }
  return results
}
