/**
 * The runtime benchmark (issue 14): for every cell of the runtime matrix
 * (test/helpers/runtime-matrix.ts: Node 20/22/24, Bun, Deno, workerd under `wrangler dev`, each
 * over its backends) the cold start (spawn -> first /healthz 200) and the throughput of one
 * 10,000-row NDJSON POST, against DuckDB converting the same NDJSON file to partitioned Parquet,
 * interleaved run by run; workerd once more without wrangler (the Worker bundled by the pinned
 * wrangler, loaded through Miniflare); and the Worker bundle's size under both wranglers.
 */

import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { Miniflare } from 'miniflare'
import {
  type Backend,
  bundleWorker,
  devVersion,
  matrixCells,
  type RuntimeSpec,
  runtimePins,
  WRANGLERS,
  type WranglerSpec,
} from '../test/helpers/runtime-matrix.js'
import { BIN, childEnv, ROOT, type Running, s3LakeEnv, stop } from '../test/helpers/runtime-process.js'
import { createTestBucketStore, type S3TestConfig, s3TestConfig } from '../test/helpers/s3.js'
import { mulberry32 } from './data.js'
import { type Duck, openDuck } from './duckdb.js'
import { fmtMs, median, ratio, type Timing, table, timeInterleaved } from './report.js'

/** The matrix's backends this bench runs (DuckDB's reference is a Parquet conversion). */
const LAKE_BACKENDS: ReadonlySet<Backend> = new Set<Backend>(['local', 's3', 'r2'])
const run = promisify(execFile)

/** The 10,000 rows: 10 symbols x 1,000 one-minute bars, all within 2024-01-02 (UTC), symbol by symbol. */
export const INGEST = { symbols: 10, barsPerSymbol: 1_000, day: '2024-01-02', seed: 20240102 } as const
export const INGEST_ROWS = INGEST.symbols * INGEST.barsPerSymbol
/** The id of the extra workerd rows: the wrangler-bundled Worker in workerd through Miniflare. */
export const MINIFLARE_ID = 'workerd-miniflare'

export const NOTES = [
  'cold start = spawn of the entry point -> first GET /healthz answered 200, on a fresh lake each time; /healthz is polled every 100 ms (test/helpers/runtime-process.ts start), so a child process figure may be up to ~100 ms late',
  "workerd under `wrangler dev` includes wrangler's own start, its esbuild bundling of functions/worker.ts and its local proxy; the workerd-miniflare rows load the already bundled worker.js (pinned wrangler, --dry-run) into workerd through Miniflare: new Miniflare -> mf.ready -> first dispatchFetch('/healthz') 200",
  'ingest = one POST of the 10,000-row NDJSON body (admin token) to /v1/datasets/<fresh dataset>/rows, from send to the 200 answer (read in full; rowsWritten = 10,000 and 10 partitions checked), after one untimed warm-up POST; every POST goes to a new dataset, so each does the same work',
  "ours/duckdb: the HTTP path includes HTTP, NDJSON parsing, validation and the commit (manifests); DuckDB's only reading the same NDJSON file and COPY ... TO (FORMAT parquet, PARTITION_BY (symbol, date)); DuckDB runs in this process, interleaved with the cell's POSTs",
  'one machine, shared with other work: see the load average; a 2-core VM under load varies by tens of per cent from run to run (min/max columns)',
]

const TOKEN = `bench-${crypto.randomUUID()}`
const STARTUP_TIMEOUT_MS = { server: 120_000, workerd: 240_000 }
const MINUTE_MS = 60_000

export interface RuntimeBenchOptions {
  runs: number
  /** Runtime ids to run (RUNTIMES ids and MINIFLARE_ID); all when absent. */
  only?: string[]
  /** Called for every child process started, and with null when it is stopped (signal handlers). */
  onChild?: (running: Running, active: boolean) => void
}

export interface Spread {
  medianMs: number
  minMs: number
  maxMs: number
  runs: number[]
}

export interface IngestFigures {
  /** Our POSTs (process CPU figures are the bench client's, not the server's). */
  ours: Timing
  oursRowsPerSec: number
  /** DuckDB's conversion of the same file, interleaved with the POSTs of this cell. */
  duckdb: Timing
  duckdbRowsPerSec: number
  /** ours median / DuckDB median. */
  ratio: number
}

export type CellResult = {
  runtime: string
  title: string
  backend: Backend
  loadAverage1m: number
} & (
  | { status: 'skipped'; reason: string }
  | { status: 'failed'; error: string }
  | { status: 'ok'; coldStart: Spread; coldStartIncludes: string; ingest: IngestFigures }
)

export interface BundleFigures {
  wrangler: string
  /** The Node that ran it. */
  node: string
  /** worker.js as written by `wrangler deploy --dry-run --outdir`. */
  bytes: number
  kib: number
  /** gzipSync, level 9. */
  gzipBytes: number
  gzipKib: number
  /** wrangler's own "Total Upload: X KiB / gzip: Y KiB" line, if printed. */
  wranglerSays: { totalKib: number; gzipKib: number } | null
  bundleSeconds: number
}

export interface RuntimeBenchResults {
  date: string
  environment: {
    benchNode: string
    platform: string
    cpus: number
    cpuModel: string | null
    loadAverage: { start: number[]; end: number[] }
    duckdb: string
    duckdbThreads: number
    runtimes: Record<string, string>
    dist: { built: string | null }
  }
  options: { runs: number; only: string[] | null }
  data: { rows: number; symbols: number; barsPerSymbol: number; day: string; partitions: number; ndjsonBytes: number }
  cells: CellResult[]
  bundles: (
    | BundleFigures
    | { wrangler: string; node: string; error: string }
    | { wrangler: string; node: string; skipped: string }
  )[]
  notes: string[]
  totalSeconds: number
}

/** The NDJSON body: deterministic bars (seeded random walk, prices in cents), `symbol,timestamp,open,high,low,close,volume`. */
export function ingestNdjson(): string {
  const rand = mulberry32(INGEST.seed)
  const t0 = Date.parse(`${INGEST.day}T00:00:00Z`)
  const round2 = (x: number) => Math.round(x * 100) / 100
  const lines: string[] = []
  for (let s = 0; s < INGEST.symbols; s++) {
    const symbol = `SYM${String(s).padStart(2, '0')}`
    let price = round2(20 + 10 * s + rand() * 10)
    for (let b = 0; b < INGEST.barsPerSymbol; b++) {
      const open = price
      const close = Math.max(1, round2(open * (1 + (rand() - 0.5) * 0.004)))
      price = close
      const row = {
        symbol,
        timestamp: new Date(t0 + b * MINUTE_MS).toISOString(),
        open,
        high: round2(Math.max(open, close) + rand() * 0.05),
        low: round2(Math.min(open, close) - rand() * 0.05),
        close,
        volume: Math.floor(rand() * 50_000) + 100,
      }
      lines.push(`${JSON.stringify(row)}\n`)
    }
  }
  return lines.join('')
}

const spread = (runs: number[]): Spread => ({
  medianMs: median(runs),
  minMs: Math.min(...runs),
  maxMs: Math.max(...runs),
  runs,
})

const rowsPerSec = (ms: number) => Math.round((INGEST_ROWS / ms) * 1000)

/** POSTs the body to a dataset and checks the 200 and rowsWritten; throws with the answer otherwise. */
async function postRows(url: string, dataset: string, body: string): Promise<void> {
  const res = await fetch(`${url}/v1/datasets/${dataset}/rows`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' },
    body,
    signal: AbortSignal.timeout(300_000),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`POST ${dataset}/rows: ${res.status} ${text.slice(0, 500)}`)
  const answer = JSON.parse(text) as { rowsWritten?: unknown; partitions?: unknown }
  if (answer.rowsWritten !== INGEST_ROWS)
    throw new Error(`POST ${dataset}/rows: rowsWritten ${answer.rowsWritten}, expected ${INGEST_ROWS}`)
  if (!Array.isArray(answer.partitions) || answer.partitions.length !== INGEST.symbols)
    throw new Error(
      `POST ${dataset}/rows: partitions ${JSON.stringify(answer.partitions)}, expected ${INGEST.symbols} (a symbol-day each)`,
    )
}

/** DuckDB's side: the NDJSON file to a hive-partitioned Parquet directory (`dir` must not exist). */
function duckCopySql(file: string, dir: string): string {
  const columns =
    "{symbol: 'VARCHAR', timestamp: 'TIMESTAMPTZ', open: 'DOUBLE', high: 'DOUBLE', low: 'DOUBLE', close: 'DOUBLE', volume: 'DOUBLE'}"
  return `COPY (SELECT *, strftime(timestamp, '%Y-%m-%d') AS date FROM read_json('${file}', format = 'newline_delimited', columns = ${columns})) TO '${dir}' (FORMAT parquet, PARTITION_BY (symbol, date))`
}

async function checkDuckOutput(duck: Duck, dir: string): Promise<void> {
  const r = await duck.con.runAndReadAll(
    `SELECT count(*) AS n, count(DISTINCT symbol || date) AS p FROM read_parquet('${dir}/**/*.parquet', hive_partitioning = true)`,
  )
  const { n, p } = r.getRowObjectsJS()[0] as { n: bigint; p: bigint }
  if (Number(n) !== INGEST_ROWS || Number(p) !== INGEST.symbols)
    throw new Error(`duckdb COPY wrote ${n} rows in ${p} partitions, expected ${INGEST_ROWS} in ${INGEST.symbols}`)
}

/** A started server of either kind: a matrix child process or a Miniflare instance. */
interface Started {
  url: string
  startupMs: number
  stop: () => Promise<void>
}

interface CellPlan {
  id: string
  title: string
  backend: Backend
  missing: string | null
  startIncludes: string
  /** Starts it on a fresh directory `dir` (and the cell's bucket on s3). */
  start: (dir: string, bucket: string | undefined) => Promise<Started>
}

/** Measures one cell: `runs` cold starts, then on the last one a warm-up POST and `runs` POSTs interleaved with DuckDB. */
async function measureCell(
  plan: CellPlan,
  ctx: { runs: number; s3: S3TestConfig | null; duck: Duck; file: string; body: string; root: string },
): Promise<CellResult> {
  const head = { runtime: plan.id, title: plan.title, backend: plan.backend, loadAverage1m: loadavg()[0] }
  if (plan.missing) return { ...head, status: 'skipped', reason: plan.missing }
  if (plan.backend === 's3' && !ctx.s3)
    return { ...head, status: 'skipped', reason: 'no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)' }
  console.log(`\n${plan.title} over ${plan.backend}`)
  const dirs: string[] = []
  let bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined
  let started: Started | undefined
  try {
    if (plan.backend === 's3') bucket = await createTestBucketStore(`bench-${plan.id}`)
    const starts: number[] = []
    for (let i = 0; i < ctx.runs; i++) {
      const dir = await mkdtemp(join(ctx.root, `${plan.id}-${plan.backend}-`))
      dirs.push(dir)
      started = await plan.start(dir, bucket?.bucket)
      starts.push(started.startupMs)
      console.log(`  cold start ${i + 1}/${ctx.runs}: ${fmtMs(started.startupMs)}`)
      if (i < ctx.runs - 1) {
        const s = started
        started = undefined
        await s.stop()
      }
    }
    const url = started!.url
    await postRows(url, 'bench_warm_up', ctx.body)
    const duckDirs: string[] = []
    const [ours, duckdb] = await timeInterleaved(ctx.runs, [
      {
        label: 'POST 10k NDJSON rows',
        setup: (i: number) => `bench_ingest_${i}`,
        fn: (dataset: string) => postRows(url, dataset, ctx.body),
      },
      {
        label: 'duckdb read_json -> COPY PARTITION_BY',
        setup: (i: number) => {
          const dir = join(ctx.root, `duck-${plan.id}-${plan.backend}-${i}`)
          duckDirs.push(dir)
          return dir
        },
        fn: (dir: string) => ctx.duck.con.run(duckCopySql(ctx.file, dir)),
        check: async (_: unknown, dir: string) => {
          await checkDuckOutput(ctx.duck, dir)
          await rm(dir, { recursive: true, force: true })
        },
      },
    ])
    return {
      ...head,
      status: 'ok',
      coldStart: spread(starts),
      coldStartIncludes: plan.startIncludes,
      ingest: {
        ours,
        oursRowsPerSec: rowsPerSec(ours.medianMs),
        duckdb,
        duckdbRowsPerSec: rowsPerSec(duckdb.medianMs),
        ratio: ratio(ours.medianMs, duckdb.medianMs),
      },
    }
  } catch (err) {
    const error = (err as Error).message
    console.log(`  FAILED: ${error}`)
    return { ...head, status: 'failed', error }
  } finally {
    await started?.stop()
    await bucket?.cleanup().catch((err) => console.log(`  bucket ${bucket?.bucket} not removed: ${(err as Error).message}`))
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  }
}

function matrixPlan(runtime: RuntimeSpec, backend: Backend, s3: S3TestConfig | null, options: RuntimeBenchOptions): CellPlan {
  let title: string
  let missing: string | null
  try {
    title = runtime.title()
    missing = runtime.missing()
  } catch (err) {
    title = runtime.id
    missing = (err as Error).message
  }
  const workerd = runtime.id === 'workerd'
  return {
    id: runtime.id,
    title,
    backend,
    missing,
    startIncludes: workerd
      ? 'wrangler dev: wrangler start + esbuild bundle + proxy + workerd'
      : 'process start + module load + listen',
    start: async (dir, bucket) => {
      const running = await runtime.launch({
        backend,
        dir,
        apiTokens: `${TOKEN}=admin`,
        bucket,
        s3,
        timeoutMs: workerd ? STARTUP_TIMEOUT_MS.workerd : STARTUP_TIMEOUT_MS.server,
      })
      options.onChild?.(running, true)
      return {
        url: running.url,
        startupMs: running.startupMs,
        stop: async () => {
          await stop(running)
          options.onChild?.(running, false)
        },
      }
    },
  }
}

/** `[vars]` and `compatibility_date` of wrangler.toml (flat `KEY = "value"` lines only, as it has). */
function wranglerToml(): { compatibilityDate: string; vars: Record<string, string> } {
  const text = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')
  const date = /^compatibility_date = "([^"]+)"$/m.exec(text)?.[1]
  if (!date) throw new Error('wrangler.toml: no compatibility_date')
  const vars: Record<string, string> = {}
  let inVars = false
  for (const line of text.split('\n')) {
    if (/^\[/.test(line)) inVars = line.trim() === '[vars]'
    const m = inVars ? /^([A-Z0-9_]+) = "([^"]*)"$/.exec(line) : null
    if (m) vars[m[1]] = m[2]
  }
  return { compatibilityDate: date, vars }
}

/** The wrangler-bundled worker.js in workerd through Miniflare (devDependency), with wrangler.toml's vars. */
function miniflarePlan(backend: Backend, workerJs: string | null, why: string, s3: S3TestConfig | null): CellPlan {
  return {
    id: MINIFLARE_ID,
    title: `workerd ${devWorkerdVersion()} (Miniflare ${devVersion('miniflare')}, worker.js of wrangler ${runtimePins().wrangler.version})`,
    backend,
    missing: workerJs ? null : why,
    startIncludes: 'new Miniflare -> mf.ready -> first dispatchFetch(/healthz) 200 (bundle prebuilt)',
    start: async (dir, bucket) => {
      const { compatibilityDate, vars } = wranglerToml()
      const storage =
        backend === 'r2' ? { AWS_ENDPOINT_URL: 'http://127.0.0.1:9' } : s3LakeEnv(s3!, bucket!) /* s3: the cell's bucket */
      const t0 = performance.now()
      const mf = new Miniflare({
        modules: true,
        modulesRoot: dirname(workerJs!),
        scriptPath: workerJs!,
        compatibilityDate,
        bindings: { ...vars, ...storage, API_TOKENS: `${TOKEN}=admin` },
        ...(backend === 'r2' ? { r2Buckets: { R2_BUCKET: 'market-data' }, r2Persist: join(dir, 'r2') } : {}),
      })
      try {
        const url = await mf.ready
        const res = await mf.dispatchFetch(new URL('/healthz', url))
        const text = await res.text()
        if (res.status !== 200) throw new Error(`Miniflare /healthz: ${res.status} ${text.slice(0, 500)}`)
        const startupMs = Math.round(performance.now() - t0)
        return { url: url.href.replace(/\/$/, ''), startupMs, stop: () => mf.dispose() }
      } catch (err) {
        await mf.dispose()
        throw err
      }
    },
  }
}

const versionOf = (packageJsonPath: string) => {
  try {
    return (JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}
const devWorkerdVersion = () => versionOf(join(ROOT, 'node_modules', 'workerd', 'package.json'))
/** The pinned wrangler's node_modules (…/node_modules/wrangler/bin/wrangler.js -> …/node_modules). */
const pinnedWranglerModules = () => dirname(dirname(dirname(runtimePins().wrangler.js)))

/** The pinned or the devDependency wrangler's bundle of functions/worker.ts (`bundleWorker`), in a temp dir, and its figures. */
async function bundle(wrangler: WranglerSpec, root: string): Promise<{ figures: BundleFigures; workerJs: string }> {
  const dir = await mkdtemp(join(root, `bundle-${wrangler.version}-`))
  const t0 = performance.now()
  const { status, output, outDir } = await bundleWorker(wrangler, dir)
  if (status !== 0) throw new Error(`wrangler exited ${status}:\n${output}`)
  const bundleSeconds = Math.round((performance.now() - t0) / 100) / 10
  const workerJs = join(outDir, 'worker.js')
  const bytes = (await stat(workerJs)).size
  const gzipBytes = gzipSync(await readFile(workerJs), { level: 9 }).length
  const m = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(output)
  const kib = (b: number) => Math.round((b / 1024) * 100) / 100
  return {
    workerJs,
    figures: {
      wrangler: wrangler.version,
      node: wrangler.node().version,
      bytes,
      kib: kib(bytes),
      gzipBytes,
      gzipKib: kib(gzipBytes),
      wranglerSays: m ? { totalKib: Number(m[1]), gzipKib: Number(m[2]) } : null,
      bundleSeconds,
    },
  }
}

async function versionLine(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, { timeout: 60_000, env: childEnv({ WRANGLER_SEND_METRICS: 'false' }) })
    return stdout.trim().split('\n')[0]
  } catch (err) {
    return `unavailable (${(err as Error).message.split('\n')[0]})`
  }
}

async function runtimeVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const n of runtimePins().node) out[`node${n.version.split('.')[0]}`] = n.version
  out.bun = await versionLine(join(BIN, 'bun'), ['--version'])
  out.deno = await versionLine(join(BIN, 'deno'), ['--version'])
  out.wranglerPinned = runtimePins().wrangler.version
  out.workerdOfPinnedWrangler = versionOf(join(pinnedWranglerModules(), 'workerd', 'package.json'))
  out.wranglerDev = versionOf(join(ROOT, 'node_modules', 'wrangler', 'package.json'))
  out.miniflare = versionOf(join(ROOT, 'node_modules', 'miniflare', 'package.json'))
  out.workerdOfMiniflare = devWorkerdVersion()
  return out
}

async function distBuilt(): Promise<string | null> {
  try {
    return (await stat(join(ROOT, 'dist', 'index.js'))).mtime.toISOString()
  } catch {
    return null
  }
}

export async function runRuntimeBench(options: RuntimeBenchOptions): Promise<RuntimeBenchResults> {
  const startedAt = Date.now()
  const loadStart = loadavg()
  const only = options.only ?? null
  const wanted = (id: string) => !only || only.includes(id)
  const built = await distBuilt()
  if (!built) throw new Error('dist/ is missing: the Node and Deno entries run the compiled code (npm run build)')
  const s3 = await s3TestConfig()
  const body = ingestNdjson()
  const root = await mkdtemp(join(tmpdir(), 'friday-bench-runtimes-'))
  const duck = await openDuck(availableParallelism())
  try {
    const file = join(root, 'bars-10k.ndjson')
    await writeFile(file, body)
    console.log(
      `runtime bench: ${INGEST_ROWS.toLocaleString('en-US')} rows (${INGEST.symbols} symbols x ${INGEST.barsPerSymbol} minute bars on ${INGEST.day}), ${(body.length / 1024).toFixed(0)} KiB of NDJSON; ${options.runs} runs per step; dist/ built ${built}`,
    )
    // DuckDB warm-up (untimed), and a check of what it writes
    const warmDir = join(root, 'duck-warm-up')
    await duck.con.run(duckCopySql(file, warmDir))
    await checkDuckOutput(duck, warmDir)
    await rm(warmDir, { recursive: true, force: true })

    // ---- bundles (first: the pinned one's worker.js is what Miniflare loads) ---------------------
    const bundles: RuntimeBenchResults['bundles'] = []
    let workerJs: string | null = null
    let noBundle = 'not bundled'
    console.log('\nworker bundle (wrangler deploy --dry-run --outdir)')
    // the pinned wrangler first: its worker.js is what the Miniflare cells load
    for (const b of WRANGLERS) {
      const pinned = b.id === 'pinned'
      const skipped = b.missing()
      if (skipped) {
        bundles.push({ wrangler: b.version, node: b.node().version, skipped })
        if (pinned) noBundle = `no worker.js of the pinned wrangler: ${skipped}`
        console.log(`  wrangler ${b.version}: skipped (${skipped})`)
        continue
      }
      try {
        const { figures, workerJs: js } = await bundle(b, root)
        bundles.push(figures)
        if (pinned) workerJs = js
        console.log(`  wrangler ${b.version}: ${figures.bytes} bytes, gzip -9 ${figures.gzipBytes} bytes`)
      } catch (err) {
        const error = (err as Error).message
        bundles.push({ wrangler: b.version, node: b.node().version, error })
        if (pinned) noBundle = `the pinned wrangler did not bundle functions/worker.ts: ${error.split('\n')[0]}`
        console.log(`  wrangler ${b.version} FAILED: ${error}`)
      }
    }

    // ---- the matrix, then workerd through Miniflare --------------------------------------------
    const plans: CellPlan[] = []
    // the lake cells (the database cells of the matrix measure the database, not the runtime)
    for (const { runtime, backend } of matrixCells())
      if (wanted(runtime.id) && LAKE_BACKENDS.has(backend)) plans.push(matrixPlan(runtime, backend, s3, options))
    if (wanted(MINIFLARE_ID))
      for (const backend of ['s3', 'r2'] as const) plans.push(miniflarePlan(backend, workerJs, noBundle, s3))
    const cells: CellResult[] = []
    for (const plan of plans) {
      const cell = await measureCell(plan, { runs: options.runs, s3, duck, file, body, root })
      if (cell.status === 'skipped') console.log(`\n${plan.title} over ${plan.backend}: skipped (${cell.reason})`)
      cells.push(cell)
    }
    return {
      date: new Date().toISOString(),
      environment: {
        benchNode: process.version,
        platform: `${process.platform} ${process.arch}`,
        cpus: availableParallelism(),
        cpuModel: cpus()[0]?.model ?? null,
        loadAverage: { start: loadStart, end: loadavg() },
        duckdb: duck.version,
        duckdbThreads: duck.threads,
        runtimes: await runtimeVersions(),
        dist: { built },
      },
      options: { runs: options.runs, only },
      data: {
        rows: INGEST_ROWS,
        symbols: INGEST.symbols,
        barsPerSymbol: INGEST.barsPerSymbol,
        day: INGEST.day,
        partitions: INGEST.symbols,
        ndjsonBytes: Buffer.byteLength(body),
      },
      cells,
      bundles,
      notes: NOTES,
      totalSeconds: Math.round((Date.now() - startedAt) / 100) / 10,
    }
  } finally {
    duck.close()
    await rm(root, { recursive: true, force: true })
  }
}

/** The results as text tables (cells, then bundles), why a cell or bundle has no figures, and the notes. */
export function formatRuntimes(r: RuntimeBenchResults): string {
  const k = (n: number) => `${(n / 1000).toFixed(1)}k`
  const range = (xs: number[]) => `${fmtMs(Math.min(...xs))} - ${fmtMs(Math.max(...xs))}`
  const why: string[] = []
  const rows = r.cells.map((c) => {
    const name = `${c.runtime} ${c.backend}`
    if (c.status !== 'ok') {
      why.push(`  ${name} ${c.status}: ${c.status === 'skipped' ? c.reason : c.error.split('\n')[0]}`)
      return [name, c.status === 'skipped' ? 'skipped' : 'FAILED', '', '', '', '', '', '', '']
    }
    const i = c.ingest
    return [
      name,
      fmtMs(c.coldStart.medianMs),
      range(c.coldStart.runs),
      fmtMs(i.ours.medianMs),
      range(i.ours.runs),
      k(i.oursRowsPerSec),
      fmtMs(i.duckdb.medianMs),
      k(i.duckdbRowsPerSec),
      `${i.ratio.toFixed(2)}x`,
    ]
  })
  const titles = [...new Map(r.cells.map((c) => [c.runtime, c.title])).entries()].map(([id, t]) => `  ${id}: ${t}`)
  const bundleRows = r.bundles.map((b) => {
    const name = `wrangler ${b.wrangler}`
    if ('error' in b || 'skipped' in b) {
      why.push(`  bundle of ${name} ${'error' in b ? `FAILED: ${b.error.split('\n')[0]}` : `skipped: ${b.skipped}`}`)
      return [name, b.node, 'error' in b ? 'FAILED' : 'skipped', '', '', '']
    }
    const says = b.wranglerSays ? `${b.wranglerSays.totalKib} KiB / gzip ${b.wranglerSays.gzipKib} KiB` : '(not printed)'
    return [name, b.node, `${b.bytes.toLocaleString('en-US')} B`, `${b.kib.toFixed(1)} KiB`, `${b.gzipKib.toFixed(1)} KiB`, says]
  })
  const [l1s, l1e] = [r.environment.loadAverage.start[0], r.environment.loadAverage.end[0]]
  return [
    `=== runtimes: cold start and 10k-row NDJSON ingest (median of ${r.options.runs}; DuckDB ${r.environment.duckdb} on the same file, interleaved) ===`,
    table(['cell', 'cold start', 'min - max', 'ingest', 'min - max', 'rows/s', 'duckdb', 'duckdb rows/s', 'ours/duckdb'], rows),
    ...titles,
    '',
    '=== Worker bundle (wrangler deploy --dry-run --outdir; functions/worker.ts) ===',
    table(['bundler', 'node', 'worker.js', 'KiB', 'gzip -9', "wrangler's Total Upload"], bundleRows),
    ...(why.length ? ['', 'without figures:', ...why] : []),
    '',
    ...r.notes.map((x) => `note: ${x}`),
    `load average (1 min): ${l1s.toFixed(1)} at start, ${l1e.toFixed(1)} at end, on ${r.environment.cpus} cpus; total ${r.totalSeconds} s`,
  ].join('\n')
}
