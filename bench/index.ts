/**
 * `npm run bench`: our partitioned Parquet lake against DuckDB on the same ~1M minute bars
 * (write, full read), then cold reads on S3 (radosgw) with request counts. Prints a table and
 * writes every figure to bench/results/latest.json. Options: `--quick` (~100k rows),
 * `--order=time` (rows interleaved across symbols), `--runs=N`, `--skip-s3`, `--skip-http`, `--skip-db`, `--skip-maintenance`, `--skip-training`,
 * `--skip-runtimes` (the runtime matrix section: bench/runtimes-main.ts, also `npm run bench:runtimes`),
 * `--keep` (keep the temp lakes and the bucket).
 */

import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { DataStorage, Table, WriteResult } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { type BarsSpec, generateBars } from './data.js'
import { type DbResults, formatDb } from './db.js'
import { copyPartitioned, hiveSource, loadBars, materialize, materializeToJs, openDuck } from './duckdb.js'
import type { HttpResults } from './http.js'
import { formatMaintenance, type MaintenanceBenchResults, runMaintenanceBench } from './maintenance.js'
import { fmtMs, ratio, type Timing, table, timeInterleaved, verdict, writeJson } from './report.js'
import type { RuntimeBenchResults } from './runtimes.js'
import { runS3, type S3Results } from './s3.js'
import { formatTraining, runTrainingBench, type TrainingBenchResults } from './training.js'

const DATASET = 'bars_1m'
/** What the figures do not show by themselves. */
const NOTES = [
  'neither side fsyncs (ours: local_parquet.fsync defaults to false; DuckDB COPY issues none, checked with strace); a sync runs untimed before every timed run',
  'duckdb "native" = result materialized in DuckDB chunks (no JS values); "-> JS arrays" also copies every value into JS typed arrays / string[]',
  'ours returns rows sorted by (symbol, timestamp); plain DuckDB SELECT * has no order guarantee (see the ORDER BY row)',
]
const TARGET_RATIO = 1.5
const TARGET_SYMBOL_DAY_REQUESTS = 3
const TARGET_HTTP_ROWS_PER_SEC = 300_000
const TARGET_HTTP_P50_MS = 10

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    order: { type: 'string', default: 'symbol' },
    runs: { type: 'string', default: '5' },
    'skip-s3': { type: 'boolean', default: false },
    'skip-http': { type: 'boolean', default: false },
    'skip-db': { type: 'boolean', default: false },
    'skip-maintenance': { type: 'boolean', default: false },
    'skip-training': { type: 'boolean', default: false },
    'skip-runtimes': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
})
if (args.order !== 'symbol' && args.order !== 'time') throw new Error(`--order: expected symbol or time, got ${args.order}`)
const RUNS = Number(args.runs)
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: expected a positive integer, got ${args.runs}`)

const spec: BarsSpec = {
  symbols: 20,
  days: args.quick ? 13 : 128,
  barsPerDay: 390,
  order: args.order,
  seed: 20240102,
}

// The engine against DuckDB, which has no result cache: the read cache (on by default) is off
// here; its own section below measures it.
const localStorage = (dir: string): DataStorage =>
  createStorage(
    { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir }, read_cache: { enabled: false } } },
    {},
  )

/** Parquet files and their bytes under `dir`. */
async function parquetSize(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0
  let bytes = 0
  for (const name of await readdir(dir, { recursive: true })) {
    if (!name.endsWith('.parquet')) continue
    files++
    bytes += (await stat(join(dir, name))).size
  }
  return { files, bytes }
}

function sumColumn(t: Table, name: string): number {
  const v = t.columns[name].values as Float64Array
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i]
  return s
}

async function main() {
  const started = Date.now()
  const loadBefore = loadavg()
  const threads = availableParallelism()
  console.log(
    `friday bench: node ${process.version}, ${threads} cpus (${cpus()[0]?.model ?? '?'}), ${args.quick ? 'QUICK' : 'full'} run, ${RUNS} runs per step`,
  )

  const g0 = performance.now()
  const bars = generateBars(spec)
  const expectedPartitions = spec.symbols * spec.days
  console.log(
    `data: ${bars.rows.toLocaleString('en-US')} bars, ${spec.symbols} symbols x ${spec.days} days x ${spec.barsPerDay}, ${expectedPartitions} symbol-day partitions, order=${spec.order} (generated in ${fmtMs(performance.now() - g0)})`,
  )

  const duck = await openDuck(threads)
  const l0 = performance.now()
  await loadBars(duck, bars)
  console.log(
    `duckdb ${duck.version}, threads=${duck.threads}; bars loaded (appender, untimed) in ${fmtMs(performance.now() - l0)}`,
  )

  const root = await mkdtemp(join(tmpdir(), 'friday-bench-'))
  console.log(`work dir: ${root}`)
  try {
    // ---- write ---------------------------------------------------------------------------
    // untimed warm-up on a small slice (JIT for ours, file-system caches for both)
    const warm = generateBars({ ...spec, days: 5 })
    const warmDir = join(root, 'warm-up')
    const ws = localStorage(join(warmDir, 'ours'))
    await ws.write(DATASET, warm.columns)
    await ws.close()
    await loadBars(duck, warm, 'bars_warm')
    await copyPartitioned(duck, join(warmDir, 'duck'), 'bars_warm')
    await duck.con.run('DROP TABLE bars_warm')
    await rm(warmDir, { recursive: true, force: true })

    console.log(`\nwrite (after an untimed warm-up of ${warm.rows.toLocaleString('en-US')} rows each)`)
    const ourLakes: string[] = []
    const duckDirs: string[] = []
    const [oursWrite, duckWrite] = await timeInterleaved(RUNS, [
      {
        label: 'ours  storage.write',
        setup: (i: number) => {
          const dir = join(root, `ours-${i}`)
          ourLakes.push(dir)
          return { dir, s: localStorage(dir) }
        },
        fn: ({ s }: { s: DataStorage }) => s.write(DATASET, bars.columns),
        check: async (res: WriteResult, { s }: { s: DataStorage }) => {
          await s.close()
          if (res.rowsWritten !== bars.rows) throw new Error(`write: ${res.rowsWritten} rows, expected ${bars.rows}`)
          if (res.partitions.length !== expectedPartitions)
            throw new Error(`write: ${res.partitions.length} partitions, expected ${expectedPartitions}`)
        },
      },
      {
        label: 'duckdb COPY PARTITION_BY',
        setup: (i: number) => {
          const dir = join(root, `duck-${i}`)
          duckDirs.push(dir)
          return dir
        },
        fn: (dir: string) => copyPartitioned(duck, dir),
      },
    ])
    const ourLake = ourLakes[ourLakes.length - 1]
    const duckLake = duckDirs[duckDirs.length - 1]
    for (const d of [...ourLakes.slice(0, -1), ...duckDirs.slice(0, -1)]) await rm(d, { recursive: true, force: true })
    const ourSize = await parquetSize(join(ourLake, DATASET))
    const duckSize = await parquetSize(duckLake)

    // ---- read ----------------------------------------------------------------------------
    console.log('\nread (one untimed warm-up each)')
    const ourGlob = hiveSource(`${ourLake}/${DATASET}/**/*.parquet`)
    const duckGlob = hiveSource(`${duckLake}/**/*.parquet`)
    const readOurs = async () => {
      const s = localStorage(ourLake)
      try {
        return await s.read(DATASET)
      } finally {
        await s.close()
      }
    }
    const expectRows = (what: string) => (n: number) => {
      if (n !== bars.rows) throw new Error(`${what}: ${n} rows, expected ${bars.rows}`)
    }
    const ourTable = await readOurs() // warm-up, and the cross-check below
    expectRows('ours read')(ourTable.length)
    const duckQuery = `SELECT * FROM ${ourGlob}`
    expectRows('duckdb read')(await materialize(duck, duckQuery))
    const none = () => undefined
    const [oursRead, duckRead, duckReadJs, duckReadSorted, duckReadOwn] = await timeInterleaved(RUNS, [
      { label: 'ours  storage.read', setup: none, fn: readOurs, check: (t: Table) => expectRows('ours read')(t.length) },
      { label: 'duckdb read our lake', setup: none, fn: () => materialize(duck, duckQuery), check: expectRows('duckdb read') },
      {
        label: 'duckdb read our lake -> JS arrays',
        setup: none,
        fn: () => materializeToJs(duck, duckQuery),
        check: expectRows('duckdb read js'),
      },
      {
        label: 'duckdb read our lake ORDER BY',
        setup: none,
        fn: () => materialize(duck, `${duckQuery} ORDER BY symbol, timestamp`),
        check: expectRows('duckdb read sorted'),
      },
      {
        label: 'duckdb read its own COPY output',
        setup: none,
        fn: () => materialize(duck, `SELECT * FROM ${duckGlob}`),
        check: expectRows('duckdb read own'),
      },
    ])

    // same data both ways (untimed)
    const sums = (await duck.con.runAndReadAll(`SELECT sum(close) AS c, sum(volume) AS v FROM ${ourGlob}`)).getRowObjectsJS()[0]
    const crossCheck = {
      oursSumClose: sumColumn(ourTable, 'close'),
      duckSumClose: Number(sums.c),
      oursSumVolume: sumColumn(ourTable, 'volume'),
      duckSumVolume: Number(sums.v),
    }
    const closeOk = Math.abs(crossCheck.oursSumClose - crossCheck.duckSumClose) <= 1e-6 * Math.abs(crossCheck.duckSumClose)
    const volumeOk = crossCheck.oursSumVolume === crossCheck.duckSumVolume
    if (!closeOk || !volumeOk) throw new Error(`cross-check failed: ${JSON.stringify(crossCheck)}`)

    // ---- S3 --------------------------------------------------------------------------------
    let s3: S3Results
    if (args['skip-s3']) s3 = { skipped: true, reason: '--skip-s3' }
    else {
      console.log('\ns3')
      s3 = await runS3(bars, { dayRuns: 5, allRuns: RUNS, keepBucket: args.keep })
      if (s3.skipped) console.log(`  S3 skipped: ${s3.reason}`)
    }

    // ---- HTTP ------------------------------------------------------------------------------
    let http: HttpResults | { skipped: true; reason: string }
    if (args['skip-http']) http = { skipped: true, reason: '--skip-http' }
    else {
      console.log('\nhttp (functions/node.ts and the load generator each in a fresh child process)')
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'http-main.ts'), ...(args.quick ? ['--quick'] : [])],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
          maxBuffer: 16 * 1024 * 1024,
        },
      )
      http = JSON.parse(out.trim().split('\n').at(-1)!) as HttpResults
    }

    // ---- DB (postgres via neon / pg, mongodb, local lake reference) ---------------------------
    let db: DbResults
    if (args['skip-db']) db = { skipped: true, reason: '--skip-db' }
    else {
      console.log('\ndb (postgres via the neon driver and pg, mongodb; in a child process)')
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'db-main.ts'), ...(args.quick ? ['--quick'] : [])],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 * 1024 * 1024 },
      )
      db = JSON.parse(out.trim().split('\n').at(-1)!) as DbResults
    }

    // ---- maintenance (small batches, then compaction) ---------------------------------------
    let maintenance: MaintenanceBenchResults | { skipped: true; reason: string }
    if (args['skip-maintenance']) maintenance = { skipped: true, reason: '--skip-maintenance' }
    else {
      console.log('\nmaintenance (small batches into 100 partitions, then maintain())')
      maintenance = await runMaintenanceBench(args.quick)
    }

    // ---- training (matrix + windows on this lake, streaming over 10M rows, read cache) -------
    let training: TrainingBenchResults | { skipped: true; reason: string }
    if (args['skip-training']) training = { skipped: true, reason: '--skip-training' }
    else {
      console.log('\ntraining (each step in a child process)')
      training = await runTrainingBench(ourLake, args.quick, RUNS)
    }

    // ---- runtimes (each matrix cell's cold start and 10k-row NDJSON ingest, Worker bundle) ----
    let runtimes: RuntimeBenchResults | { skipped: true; reason: string } | { failed: true; reason: string }
    if (args['skip-runtimes']) runtimes = { skipped: true, reason: '--skip-runtimes' }
    else {
      console.log('\nruntimes (bench/runtimes-main.ts in a child process; it starts every runtime itself)')
      const out = join(import.meta.dirname, 'results', 'runtimes.json')
      const child = spawnSync(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'runtimes-main.ts'), `--runs=${RUNS}`],
        { stdio: 'inherit' },
      )
      const written = (await stat(out).catch(() => null))?.mtimeMs ?? 0
      if (written < started)
        runtimes = { failed: true, reason: `bench/runtimes-main.ts exited ${child.status ?? child.signal} without results` }
      else runtimes = JSON.parse(await readFile(out, 'utf8')) as RuntimeBenchResults
    }

    // ---- report ----------------------------------------------------------------------------
    const writeRatio = ratio(oursWrite.medianMs, duckWrite.medianMs)
    const readRatio = ratio(oursRead.medianMs, duckRead.medianMs)
    const readRatioJs = ratio(oursRead.medianMs, duckReadJs.medianMs)
    const runsOf = (x: Timing) => x.runs.map((r) => fmtMs(r)).join(' / ')
    const row = (name: string, x: Timing, vs = '', target = '') => [
      name,
      fmtMs(x.medianMs),
      fmtMs(x.cpuMedianMs),
      rowsPerSec(x),
      runsOf(x),
      vs,
      target,
    ]
    const rowsPerSec = (x: Timing) => `${(((bars.rows / x.medianMs) * 1000) / 1e6).toFixed(2)} M/s`
    console.log(
      `\n=== local lake: ${bars.rows.toLocaleString('en-US')} rows, ${expectedPartitions} partitions (median of ${RUNS}) ===`,
    )
    console.log(
      table(
        ['step', 'median', 'cpu', 'rows/s', 'runs', 'ours/duckdb', `target <=${TARGET_RATIO}x`],
        [
          row('write  ours storage.write', oursWrite, `${writeRatio}x`, verdict(writeRatio <= TARGET_RATIO)),
          row('write  duckdb COPY PARTITION_BY', duckWrite),
          row('read   ours storage.read', oursRead, `${readRatio}x`, verdict(readRatio <= TARGET_RATIO)),
          row('read   duckdb our lake (native)', duckRead),
          row('read   duckdb our lake -> JS arrays', duckReadJs, `${readRatioJs}x`, '(info)'),
          row('read   duckdb our lake ORDER BY', duckReadSorted, '', '(info)'),
          row('read   duckdb its own COPY output', duckReadOwn, '', '(info)'),
        ],
      ),
    )
    const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`
    console.log(
      `files: ours ${ourSize.files} parquet, ${mb(ourSize.bytes)}; duckdb ${duckSize.files} parquet, ${mb(duckSize.bytes)} (duckdb leaves symbol/date out of the files)`,
    )
    console.log('cross-check: sum(close) and sum(volume) equal between storage.read and DuckDB over our lake')
    for (const n of NOTES) console.log(`note: ${n}`)

    let symbolDayPass: boolean | null = null
    if (s3.skipped) console.log(`\n=== S3: skipped (${s3.reason}) ===`)
    else {
      symbolDayPass = s3.symbolDay.requests.total <= TARGET_SYMBOL_DAY_REQUESTS
      const req = (r: { get: number; put: number; head: number; list: number; delete: number; total: number }) =>
        `${r.total} (get ${r.get}, put ${r.put}, head ${r.head}, list ${r.list}, del ${r.delete})`
      console.log(`\n=== S3 (radosgw ${s3.endpoint}) ===`)
      console.log(
        table(
          ['step', 'median', 'rows', 'requests', 'target'],
          [
            ['write all bars (fresh bucket)', fmtMs(s3.write.ms), String(s3.write.rows), req(s3.write.requests), ''],
            [
              `read ${s3.symbolDay.symbol} ${s3.symbolDay.day}, cold (median of ${s3.symbolDay.coldRuns.length})`,
              fmtMs(s3.symbolDay.coldMs),
              String(s3.symbolDay.rows),
              req(s3.symbolDay.requests),
              `<=${TARGET_SYMBOL_DAY_REQUESTS} req ${verdict(symbolDayPass)}`,
            ],
            [
              `read ${s3.symbolDay.symbol} ${s3.symbolDay.day}, warm`,
              fmtMs(s3.symbolDay.warmMs),
              String(s3.symbolDay.rows),
              req(s3.symbolDay.warmRequests),
              '',
            ],
            [
              `read ${s3.symbolAll.symbol} all ${s3.symbolAll.days} days, cold (median of ${s3.symbolAll.coldRuns.length})`,
              fmtMs(s3.symbolAll.coldMs),
              String(s3.symbolAll.rows),
              req(s3.symbolAll.requests),
              '',
            ],
            [
              `read ${s3.symbolAll.symbol} all ${s3.symbolAll.days} days, warm`,
              fmtMs(s3.symbolAll.warmMs),
              String(s3.symbolAll.rows),
              req(s3.symbolAll.warmRequests),
              '',
            ],
          ],
        ),
      )
      console.log('(cold = fresh storage instance per run; its HeadBucket check is not counted by requestStats())')
    }

    if ('skipped' in maintenance) console.log(`\n=== maintenance: skipped (${maintenance.reason}) ===`)
    else console.log(formatMaintenance(maintenance))
    if ('skipped' in http) console.log(`\n=== HTTP: skipped (${http.reason}) ===`)
    else {
      console.log(`\n=== HTTP (local lake, node entry; ${http.rowsPerBody.toLocaleString('en-US')}-row bodies, 4 clients) ===`)
      console.log(
        table(
          ['step', 'result', 'detail', `target`],
          [
            ...(['ndjson', 'csv'] as const).map((f) => [
              `ingest ${f}`,
              `${(http.ingest[f].rowsPerSec / 1000).toFixed(0)}k rows/s`,
              `${http.ingest[f].bodies} bodies in ${http.ingest[f].seconds.toFixed(1)} s, non-2xx ${http.ingest[f].non2xx}, errors ${http.ingest[f].errors}`,
              `>=${TARGET_HTTP_ROWS_PER_SEC / 1000}k ${verdict(http.ingest[f].rowsPerSec >= TARGET_HTTP_ROWS_PER_SEC && http.ingest[f].non2xx === 0)}`,
            ]),
            [
              'query symbol-day p50',
              `${http.query.p50Ms} ms`,
              `p99 ${http.query.p99Ms} ms, ${http.query.requests} requests of ${http.query.rows} rows, non-2xx ${http.query.non2xx}`,
              `<=${TARGET_HTTP_P50_MS} ms ${verdict(http.query.p50Ms <= TARGET_HTTP_P50_MS && http.query.non2xx === 0)}`,
            ],
          ],
        ),
      )
    }

    console.log(`\n${formatDb(db)}`)
    if ('skipped' in training) console.log(`\n=== training: skipped (${training.reason}) ===`)
    else console.log(`\n${formatTraining(training)}`)
    if ('skipped' in runtimes) console.log(`\n=== runtimes: skipped (${runtimes.reason}) ===`)
    else if ('failed' in runtimes) console.log(`\n=== runtimes: FAILED (${runtimes.reason}) ===`)
    else console.log(`\n${(await import('./runtimes.js')).formatRuntimes(runtimes)}`)

    const results = {
      date: new Date().toISOString(),
      environment: {
        node: process.version,
        platform: `${process.platform} ${process.arch}`,
        cpus: threads,
        cpuModel: cpus()[0]?.model ?? null,
        duckdb: duck.version,
        duckdbThreads: duck.threads,
        loadAverage1m: { start: loadBefore[0], end: loadavg()[0] },
        uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
      },
      options: { quick: args.quick, runs: RUNS, order: spec.order },
      data: { ...spec, rows: bars.rows, partitions: expectedPartitions, firstDay: bars.days[0], lastDay: bars.days.at(-1) },
      local: {
        write: {
          ours: oursWrite,
          duckdb: duckWrite,
          ratio: writeRatio,
          target: TARGET_RATIO,
          verdict: verdict(writeRatio <= TARGET_RATIO),
        },
        read: {
          ours: oursRead,
          duckdb: duckRead,
          ratio: readRatio,
          target: TARGET_RATIO,
          verdict: verdict(readRatio <= TARGET_RATIO),
          duckdbToJsArrays: { ...duckReadJs, ratio: readRatioJs },
          duckdbOrderBy: duckReadSorted,
          duckdbOwnCopyOutput: duckReadOwn,
        },
        files: { ours: ourSize, duckdb: duckSize },
        crossCheck,
      },
      s3: s3.skipped
        ? s3
        : { ...s3, symbolDay: { ...s3.symbolDay, target: TARGET_SYMBOL_DAY_REQUESTS, verdict: verdict(!!symbolDayPass) } },
      http,
      db,
      maintenance,
      training,
      runtimes,
      notes: NOTES,
      totalSeconds: Math.round((Date.now() - started) / 100) / 10,
    }
    const out = join(import.meta.dirname, 'results', 'latest.json')
    await writeJson(out, results)
    console.log(
      `load average (1 min): ${loadBefore[0].toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end, on ${threads} cpus (other processes add noise)`,
    )
    console.log(`\ntotal ${results.totalSeconds} s; results written to ${out}`)
  } finally {
    duck.close()
    if (!args.keep) await rm(root, { recursive: true, force: true })
    else console.log(`kept ${root}`)
  }
}

await main()
