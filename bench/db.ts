/**
 * The DB section of `npm run bench` (run in a child process by bench/db-main.ts): bulk upsert of
 * the benchmark's minute bars into PostgreSQL through the Neon serverless driver (over the
 * WebSocket relay of the tests) and through `pg`, symbol-day and symbol-year reads; as anchors,
 * plain bulk loads on the same server (`COPY ... FROM STDIN` and `INSERT ... SELECT FROM unnest`);
 * MongoDB (CongoDB, an emulator, unless MONGODB_URL is set) on a smaller load; and the local lake
 * on the same data as the reference.
 */

import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type pg from 'pg'
import ws from 'ws'
import { createMongoStorage } from '../src/backends/mongodb/index.js'
import { createNeonPool, createPostgresStorage, type PgPoolLike } from '../src/backends/postgres/index.js'
import { createPgPool } from '../src/backends/postgres/node.js'
import type { DataStorage, Table } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { requireMongoOrSkip } from '../test/helpers/mongo.js'
import { requirePostgresOrSkip } from '../test/helpers/postgres.js'
import { startWsRelay } from '../test/helpers/ws-relay.js'
import { type Bars, type BarsSpec, generateBars } from './data.js'
import { fmtMs, median, table, verdict } from './report.js'

export const TARGET_NEON_UPSERT_ROWS_PER_SEC = 200_000
const DATASET = 'bars_1m'
const DAY_MS = 86_400_000
const READ_RUNS = 5
const ANCHOR_CHUNK_ROWS = 100_000

export interface LoadResult {
  backend: string
  load: string
  rows: number
  seconds: number
  rowsPerSec: number
  /** Only on the Neon-driver upserts. */
  target?: number
  verdict?: string
}

export interface ReadResult {
  backend: string
  what: 'symbol-day' | 'symbol-year'
  symbol: string
  days: number
  rows: number
  medianMs: number
  runs: number[]
}

export type DbResults =
  | {
      skipped?: false
      data: { rows: number; symbols: number; days: number; mongoRows: number; mongoSymbols: number; mongoDays: number }
      postgres: { url: string; version: string } | { skipped: true; reason: string }
      mongodb: { kind: string } | { skipped: true; reason: string }
      loads: LoadResult[]
      reads: ReadResult[]
      notes: string[]
      totalSeconds: number
    }
  | { skipped: true; reason: string }

const log = (msg: string) => process.stderr.write(`${msg}\n`)

/** Times one load; `rows` is what the load reports as written, checked against `expect`. */
async function timeLoad(
  backend: string,
  load: string,
  expect: number,
  fn: () => Promise<number>,
  target?: number,
): Promise<LoadResult> {
  const t0 = performance.now()
  const rows = await fn()
  const ms = performance.now() - t0
  if (rows !== expect) throw new Error(`${backend} ${load}: ${rows} rows, expected ${expect}`)
  const rowsPerSec = Math.round((rows / ms) * 1000)
  const r: LoadResult = { backend, load, rows, seconds: Math.round(ms) / 1000, rowsPerSec }
  if (target !== undefined) {
    r.target = target
    r.verdict = verdict(rowsPerSec >= target)
  }
  log(`  ${backend} ${load}: ${rows.toLocaleString('en-US')} rows in ${fmtMs(ms)} = ${Math.round(rowsPerSec / 1000)}k rows/s`)
  return r
}

/** Symbol-day and symbol-year reads, each run on a fresh storage instance from `open`. */
async function timeReads(backend: string, bars: Bars, open: () => DataStorage, runs = READ_RUNS): Promise<ReadResult[]> {
  const symbol = bars.symbols[Math.min(7, bars.symbols.length - 1)]
  const dayIdx = bars.days.length >> 1
  const cases = [
    {
      what: 'symbol-day' as const,
      days: 1,
      opts: { symbols: [symbol], start: bars.dayStartMs[dayIdx], end: bars.dayStartMs[dayIdx] + DAY_MS },
      expect: bars.spec.barsPerDay,
    },
    {
      what: 'symbol-year' as const,
      days: bars.days.length,
      opts: { symbols: [symbol] },
      expect: bars.spec.barsPerDay * bars.days.length,
    },
  ]
  const out: ReadResult[] = []
  for (const c of cases) {
    const times: number[] = []
    for (let i = 0; i < runs; i++) {
      const s = open()
      try {
        const t0 = performance.now()
        const t: Table = await s.read(DATASET, c.opts)
        times.push(performance.now() - t0)
        if (t.length !== c.expect) throw new Error(`${backend} ${c.what} read: ${t.length} rows, expected ${c.expect}`)
      } finally {
        await s.close()
      }
    }
    const r = { backend, what: c.what, symbol, days: c.days, rows: c.expect, medianMs: median(times), runs: times }
    log(`  ${backend} read ${c.what} (${r.rows} rows): median ${fmtMs(r.medianMs)} of ${times.map((x) => fmtMs(x)).join(' / ')}`)
    out.push(r)
  }
  return out
}

// ---- COPY FROM STDIN with node-postgres, without pg-copy-streams --------------------------

/** The parts of pg's internal Connection a submittable query drives. */
interface PgConnection {
  query(text: string): void
  sendCopyFromChunk(chunk: Buffer): void
  endCopyFrom(): void
  sendCopyFail(msg: string): void
  stream: NodeJS.WritableStream & { writableNeedDrain?: boolean }
}

/**
 * A "submittable" for `client.query()`: the same protocol hook pg-copy-streams uses. Sends the
 * COPY statement, then on CopyInResponse streams `chunks` as CopyData (respecting back-pressure)
 * and CopyDone; resolves with the row count from CommandComplete.
 */
class CopyIn {
  callback?: (err: Error | null, rows?: number) => void
  private error: Error | null = null
  private rowCount = 0
  constructor(
    readonly text: string,
    private readonly chunks: Iterable<Buffer>,
  ) {}
  submit(connection: PgConnection): void {
    connection.query(this.text)
  }
  async handleCopyInResponse(connection: PgConnection): Promise<void> {
    try {
      for (const chunk of this.chunks) {
        if (this.error) break
        connection.sendCopyFromChunk(chunk)
        if (connection.stream.writableNeedDrain) await once(connection.stream, 'drain')
      }
      if (this.error) connection.sendCopyFail('aborted')
      else connection.endCopyFrom()
    } catch (err) {
      connection.sendCopyFail(String(err))
    }
  }
  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = Number(/(\d+)$/.exec(msg.text ?? '')?.[1] ?? 0)
  }
  handleError(err: Error): void {
    this.error = err
  }
  handleReadyForQuery(): void {
    this.callback?.(this.error, this.rowCount)
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

function copyIn(client: pg.PoolClient, text: string, chunks: Iterable<Buffer>): Promise<number> {
  const q = new CopyIn(text, chunks)
  return new Promise((resolve, reject) => {
    q.callback = (err, rows) => (err ? reject(err) : resolve(rows ?? 0))
    client.query(q as unknown as pg.QueryConfig)
  })
}

/** The bars as COPY text-format rows, in chunks of about 1 MB. */
function* copyText(bars: Bars): Generator<Buffer> {
  const c = bars.columns
  const iso = new Map<number, string>()
  let buf = ''
  for (let i = 0; i < bars.rows; i++) {
    const t = c.timestamp[i]
    let ts = iso.get(t)
    if (ts === undefined) {
      ts = new Date(t).toISOString()
      iso.set(t, ts)
    }
    buf += `${c.symbol[i]}\t${ts}\t${c.open[i]}\t${c.high[i]}\t${c.low[i]}\t${c.close[i]}\t${c.volume[i]}\n`
    if (buf.length >= 1 << 20) {
      yield Buffer.from(buf)
      buf = ''
    }
  }
  if (buf) yield Buffer.from(buf)
}

const ANCHOR_COLUMNS = `symbol text COLLATE "C" NOT NULL, "timestamp" timestamptz NOT NULL, open double precision,
  high double precision, low double precision, close double precision, volume double precision`

/** INSERT ... SELECT FROM unnest(...) of all bars, `ANCHOR_CHUNK_ROWS` per statement, one transaction. */
async function unnestInsert(client: pg.PoolClient, tableName: string, bars: Bars): Promise<number> {
  const c = bars.columns
  let n = 0
  await client.query('BEGIN')
  for (let off = 0; off < bars.rows; off += ANCHOR_CHUNK_ROWS) {
    const end = Math.min(bars.rows, off + ANCHOR_CHUNK_ROWS)
    const ts = new Array<string>(end - off)
    for (let i = off; i < end; i++) ts[i - off] = new Date(c.timestamp[i]).toISOString()
    const f = (a: Float64Array) => Array.from(a.subarray(off, end))
    const res = await client.query(
      `INSERT INTO ${tableName} SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[])`,
      [c.symbol.slice(off, end), ts, f(c.open), f(c.high), f(c.low), f(c.close), f(c.volume)],
    )
    n += res.rowCount ?? 0
  }
  await client.query('COMMIT')
  return n
}

// ---- the section -----------------------------------------------------------------------------

export async function runDbBench(options: { quick: boolean }): Promise<DbResults> {
  const started = Date.now()
  const spec: BarsSpec = { symbols: 20, days: options.quick ? 13 : 128, barsPerDay: 390, order: 'symbol', seed: 20240102 }
  // CongoDB scans every document per operation (a load costs O(n^2)): a small one, 2 symbols x 13 days = 10,140
  // bars (about 25 s here; 20k bars took about 4x that); quick: 1 symbol x 7 days
  const mongoSpec: BarsSpec = { ...spec, symbols: options.quick ? 1 : 2, days: options.quick ? 7 : 13 }
  const bars = generateBars(spec)
  const mongoBars = generateBars(mongoSpec)
  log(
    `db: ${bars.rows.toLocaleString('en-US')} bars (${spec.symbols} symbols x ${spec.days} days); mongodb ${mongoBars.rows.toLocaleString('en-US')} bars`,
  )
  const loads: LoadResult[] = []
  const reads: ReadResult[] = []
  const notes: string[] = []
  const run = `${process.pid}_${Date.now().toString(36)}`

  // ---- local lake (reference) --------------------------------------------------------------
  const root = await mkdtemp(join(tmpdir(), 'friday-bench-db-'))
  try {
    const lake = () => createStorage({ storage: { default_backend: 'local_parquet', local_parquet: { base_dir: root } } }, {})
    log('local lake')
    const s = lake()
    loads.push(
      await timeLoad(
        'local lake',
        'storage.write (fresh dir)',
        bars.rows,
        async () => (await s.write(DATASET, bars.columns)).rowsWritten,
      ),
    )
    await s.close()
    reads.push(...(await timeReads('local lake', bars, lake)))
  } finally {
    await rm(root, { recursive: true, force: true })
  }

  // ---- postgres ----------------------------------------------------------------------------
  let postgres: { url: string; version: string } | { skipped: true; reason: string }
  const server = await requirePostgresOrSkip()
  if (!server) postgres = { skipped: true, reason: 'no PostgreSQL (set DATABASE_URL or install PostgreSQL)' }
  else {
    const relay = await startWsRelay()
    const neonPool = createNeonPool(server.url, {
      max: 10,
      webSocketConstructor: ws,
      wsProxy: (host, p) => `127.0.0.1:${relay.port}/v1?address=${host}:${p}`,
      useSecureWebSocket: false,
      pipelineConnect: false,
    })
    const pgPool = createPgPool(server.url, { max: 10 })
    const schemas = { neon: `friday_bench_${run}_neon`, pg: `friday_bench_${run}_pg`, anchor: `friday_bench_${run}_anchor` }
    try {
      const version = String((await pgPool.query('SHOW server_version')).rows[0].server_version)
      postgres = { url: server.url.replace(/:[^:@/]*@/, ':***@'), version }
      log(`postgres ${version} at ${server.host}:${server.port}; neon driver through the ws relay on :${relay.port}`)

      // neon driver: fresh upsert, the same upsert again (every row a conflict, none changed), once more with
      // every row changed, then reads
      const neon = (): DataStorage => createPostgresStorage({ pool: neonPool as PgPoolLike, schema: schemas.neon })
      const ns = neon()
      loads.push(
        await timeLoad(
          'postgres (neon driver)',
          'upsert, fresh dataset',
          bars.rows,
          async () => (await ns.write(DATASET, bars.columns)).rowsWritten,
          TARGET_NEON_UPSERT_ROWS_PER_SEC,
        ),
      )
      loads.push(
        await timeLoad(
          'postgres (neon driver)',
          'upsert again, all conflicts',
          bars.rows,
          async () => (await ns.write(DATASET, bars.columns)).rowsWritten,
          TARGET_NEON_UPSERT_ROWS_PER_SEC,
        ),
      )
      // the same keys once more, every row's close changed: unchanged rows are skipped above, not here
      const changed = { ...bars.columns, close: bars.columns.close.map((x) => x + 0.01) }
      loads.push(
        await timeLoad(
          'postgres (neon driver)',
          'upsert again, every row changed',
          bars.rows,
          async () => (await ns.write(DATASET, changed)).rowsWritten,
        ),
      )
      await ns.close()
      reads.push(...(await timeReads('postgres (neon driver)', bars, neon)))

      // pg: the same fresh upsert, and reads
      const pgs = (): DataStorage => createPostgresStorage({ pool: pgPool as PgPoolLike, schema: schemas.pg })
      const ps = pgs()
      loads.push(
        await timeLoad(
          'postgres (pg)',
          'upsert, fresh dataset',
          bars.rows,
          async () => (await ps.write(DATASET, bars.columns)).rowsWritten,
        ),
      )
      await ps.close()
      reads.push(...(await timeReads('postgres (pg)', bars, pgs)))

      // anchors: plain bulk loads with pg on the same server
      const client = await (pgPool as pg.Pool).connect()
      try {
        const a = schemas.anchor
        await client.query(`CREATE SCHEMA ${a}`)
        await client.query(`CREATE TABLE ${a}.copy_nopk (${ANCHOR_COLUMNS})`)
        await client.query(`CREATE TABLE ${a}.copy_pk (${ANCHOR_COLUMNS}, PRIMARY KEY (symbol, "timestamp"))`)
        await client.query(`CREATE TABLE ${a}.unnest_nopk (${ANCHOR_COLUMNS})`)
        loads.push(
          await timeLoad('anchor: pg', 'COPY FROM STDIN, no PK', bars.rows, () =>
            copyIn(client, `COPY ${a}.copy_nopk FROM STDIN`, copyText(bars)),
          ),
        )
        loads.push(
          await timeLoad('anchor: pg', 'COPY FROM STDIN, PK (symbol, timestamp)', bars.rows, () =>
            copyIn(client, `COPY ${a}.copy_pk FROM STDIN`, copyText(bars)),
          ),
        )
        loads.push(
          await timeLoad('anchor: pg', `INSERT ... unnest, no PK, ${ANCHOR_CHUNK_ROWS / 1000}k-row statements`, bars.rows, () =>
            unnestInsert(client, `${a}.unnest_nopk`, bars),
          ),
        )
      } finally {
        client.release()
      }
    } finally {
      for (const s of Object.values(schemas)) await pgPool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`).catch(() => undefined)
      await neonPool.end().catch(() => undefined)
      await pgPool.end().catch(() => undefined)
      await relay.close()
      await server.stop()
    }
  }

  // ---- mongodb -----------------------------------------------------------------------------
  let mongodb: { kind: string } | { skipped: true; reason: string }
  const mongo = await requireMongoOrSkip()
  if (!mongo) mongodb = { skipped: true, reason: 'CongoDB could not be started and MONGODB_URL is not set' }
  else {
    const name = mongo.kind === 'congodb' ? 'mongodb (CongoDB emulator)' : 'mongodb'
    mongodb = { kind: mongo.kind }
    log(`${name} at ${mongo.url}`)
    const client = mongo.client()
    const db = `friday_bench_${run}`
    try {
      await client.connect()
      const open = () => createMongoStorage({ client, db, closeClient: false })
      const ms = open()
      loads.push(
        await timeLoad(
          name,
          'upsert, fresh dataset',
          mongoBars.rows,
          async () => (await ms.write(DATASET, mongoBars.columns)).rowsWritten,
        ),
      )
      await ms.close()
      reads.push(...(await timeReads(name, mongoBars, open)))
    } finally {
      await client
        .db(db)
        .dropDatabase()
        .catch(() => undefined)
      await client.close()
      await mongo.stop()
    }
  }

  notes.push(
    'postgres: one server, fsync=off (the throwaway test cluster, or DATABASE_URL); neon driver = @neondatabase/serverless over the test WebSocket-to-TCP relay on localhost',
    'anchor COPY = real COPY ... FROM STDIN through node-postgres (a small "submittable" query object, the protocol hook pg-copy-streams uses; no extra package), text format, timing includes encoding the rows',
    `reads: median of ${READ_RUNS}, each on a fresh storage instance sharing one pool / client (no connection set-up in the time)`,
  )
  if (!('skipped' in mongodb) && mongodb.kind === 'congodb')
    notes.push(
      `mongodb: CongoDB is a MongoDB wire-protocol emulator in a child process (full scan per query, O(n) per upsert), not representative of real MongoDB speed; its load is ${mongoBars.rows.toLocaleString('en-US')} bars (${mongoSpec.symbols} symbol(s) x ${mongoSpec.days} days), not the full data`,
    )
  return {
    data: {
      rows: bars.rows,
      symbols: spec.symbols,
      days: spec.days,
      mongoRows: mongoBars.rows,
      mongoSymbols: mongoSpec.symbols,
      mongoDays: mongoSpec.days,
    },
    postgres,
    mongodb,
    loads,
    reads,
    notes,
    totalSeconds: Math.round((Date.now() - started) / 100) / 10,
  }
}

/** The results as a text table (loads with their backend's read latencies) and notes. */
export function formatDb(r: DbResults): string {
  if (r.skipped) return `=== DB: skipped (${r.reason}) ===`
  const readOf = (backend: string, what: ReadResult['what']) => {
    const x = r.reads.find((y) => y.backend === backend && y.what === what)
    return x ? `${fmtMs(x.medianMs)} (${x.rows.toLocaleString('en-US')} rows)` : ''
  }
  const seen = new Set<string>()
  const rows = r.loads.map((l) => {
    const first = !seen.has(l.backend)
    seen.add(l.backend)
    return [
      l.backend,
      l.load,
      l.rows.toLocaleString('en-US'),
      l.seconds.toFixed(2),
      l.rowsPerSec >= 10_000 ? `${Math.round(l.rowsPerSec / 1000).toLocaleString('en-US')}k` : String(l.rowsPerSec),
      l.target !== undefined ? `>=${l.target / 1000}k ${l.verdict}` : '',
      first ? readOf(l.backend, 'symbol-day') : '',
      first ? readOf(l.backend, 'symbol-year') : '',
    ]
  })
  const lines = [
    `=== DB: bulk upsert and reads (${r.data.rows.toLocaleString('en-US')} bars, ${r.data.symbols} symbols x ${r.data.days} days; mongodb ${r.data.mongoRows.toLocaleString('en-US')}) ===`,
    table(['backend', 'load', 'rows', 'seconds', 'rows/s', 'target', 'symbol-day read', 'symbol-year read'], rows),
  ]
  if ('skipped' in r.postgres) lines.push(`postgres: skipped (${r.postgres.reason})`)
  else lines.push(`postgres ${r.postgres.version}`)
  if ('skipped' in r.mongodb) lines.push(`mongodb: skipped (${r.mongodb.reason})`)
  for (const n of r.notes) lines.push(`note: ${n}`)
  lines.push(`db section: ${r.totalSeconds} s`)
  return lines.join('\n')
}
