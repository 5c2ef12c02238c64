/**
 * The runtime matrix: every runtime the product is named for, the entry point it runs, the
 * backends it is smoke-tested on, and how to start one cell (a runtime over a backend) as a real
 * child process. One declaration, three users:
 * - test/runtime-matrix.test.ts starts every cell and runs the smoke steps
 *   (test/helpers/runtime-smoke.ts) against it;
 * - `npm run docs:runtimes` renders the support table of docs/runtimes.md from it, and the
 *   matrix test fails when the committed table differs;
 * - bench/runtimes.ts measures each cell (cold start, NDJSON ingest rows/s).
 *
 * Runtimes: the compiled Node server (`bin/friday.js serve`, what `npm start` runs) under the
 * Node 20, 22 and 24 binaries that scripts/runtimes.sh pins; Bun (`functions/bun.ts`, the bun
 * devDependency); Deno (`functions/deno.ts` with deno.json's `start` permissions, the deno
 * devDependency); workerd (`functions/worker.ts` under `wrangler dev` of the current wrangler
 * that scripts/runtimes.sh pins, run by its Node 24). Backends: `local` (a lake in a temp
 * DATA_DIR), `s3` (radosgw, a fresh bucket), `r2` (workerd's R2 binding, simulated by wrangler),
 * `postgres` (a fresh database on the test PostgreSQL, through `pg`), `mongodb` (a fresh database
 * on the MongoDB wire server of the tests: CongoDB, or MONGODB_URL's real MongoDB).
 */

import { execFile, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  BIN,
  childEnv,
  freePort,
  missingBinary,
  ROOT,
  type Running,
  s3LakeEnv,
  start,
  wranglerDevArgs,
} from './runtime-process.js'
import type { S3TestConfig } from './s3.js'

const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }

export type Backend = 'local' | 's3' | 'r2' | 'postgres' | 'mongodb'
export const BACKENDS: readonly Backend[] = ['local', 's3', 'r2', 'postgres', 'mongodb']

/** The pins of scripts/runtimes.sh (`--where`: installs nothing). */
export interface Pins {
  node: { version: string; bin: string }[]
  wrangler: { version: string; js: string }
}

let pins: Pins | undefined
export function runtimePins(): Pins {
  if (pins) return pins
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'runtimes.sh'), '--where'], { encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) throw new Error(`scripts/runtimes.sh --where failed: ${r.stderr}`)
  const out: Pins = { node: [], wrangler: { version: '', js: '' } }
  for (const line of r.stdout.trim().split('\n')) {
    const [name, version, path] = line.split(' ')
    if (name === 'node') out.node.push({ version, bin: path })
    else if (name === 'wrangler') out.wrangler = { version, js: path }
  }
  pins = out
  return out
}

/** The pinned Node binary of `major`. */
export function pinnedNode(major: number): { version: string; bin: string } {
  const n = runtimePins().node.find((p) => p.version.split('.')[0] === String(major))
  if (!n) throw new Error(`scripts/runtimes.sh pins no Node ${major}`)
  return n
}

/** Why a pinned Node binary cannot run here, or null. */
function missingNode(major: number): string | null {
  const { version, bin } = pinnedNode(major)
  if (!existsSync(bin)) return `${bin} not found (install the pins: bash scripts/runtimes.sh)`
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 })
  const got = r.stdout?.trim()
  return got === `v${version}` ? null : `${bin} --version answered ${JSON.stringify(got || r.stderr)}, not v${version}`
}

function missingWrangler(): string | null {
  const noNode = missingNode(24)
  if (noNode) return noNode
  const { js, version } = runtimePins().wrangler
  return existsSync(js) ? null : `wrangler ${version} not found at ${js} (install the pins: bash scripts/runtimes.sh)`
}

/**
 * A wrangler that bundles functions/worker.ts: the pinned current one (scripts/runtimes.sh, run by
 * the pinned Node 24) or the devDependency (run by the Node running this code).
 */
export interface WranglerSpec {
  id: 'pinned' | 'dev'
  version: string
  title: string
  /** The Node binary that runs it, and its version (`v…`). */
  node: () => { bin: string; version: string }
  /** Its bin/wrangler.js. */
  js: () => string
  /** Why it cannot run here, or null. */
  missing: () => string | null
}

export const WRANGLERS: readonly WranglerSpec[] = [
  {
    id: 'pinned',
    version: runtimePins().wrangler.version,
    title: `wrangler ${runtimePins().wrangler.version} (scripts/runtimes.sh, Node 24)`,
    node: () => ({ bin: pinnedNode(24).bin, version: `v${pinnedNode(24).version}` }),
    js: () => runtimePins().wrangler.js,
    missing: missingWrangler,
  },
  {
    id: 'dev',
    version: devVersion('wrangler'),
    title: `wrangler ${devVersion('wrangler')} (devDependency)`,
    node: () => ({ bin: process.execPath, version: process.version }),
    js: () => join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
    missing: () => missingBinary('wrangler'),
  },
]

/**
 * `wrangler deploy --dry-run` of functions/worker.ts with a copy of the repository's wrangler.toml
 * in `dir`: worker.js and its source map in `outDir` (`dir`/out), wrangler's exit status and its
 * output (stdout, then stderr).
 */
export async function bundleWorker(
  wrangler: WranglerSpec,
  dir: string,
  timeoutMs = 300_000,
): Promise<{ status: number; output: string; outDir: string }> {
  await copyFile(join(ROOT, 'wrangler.toml'), join(dir, 'wrangler.toml'))
  const outDir = join(dir, 'out')
  const args = [
    wrangler.js(),
    'deploy',
    join(ROOT, 'functions', 'worker.ts'),
    '--dry-run',
    '--outdir',
    outDir,
    '--config',
    join(dir, 'wrangler.toml'),
  ]
  const env = childEnv({ WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: join(dir, 'logs'), NO_COLOR: '1', CI: '1' })
  return new Promise((resolve) => {
    const options = { cwd: dir, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' as const }
    execFile(wrangler.node().bin, args, options, (err, stdout, stderr) => {
      // a number: wrangler's exit code; else it did not run or was killed (timeout): -1, with why
      const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      resolve({ status, output: `${stdout}\n${stderr}${status === -1 ? `\n${err!.message}` : ''}`, outDir })
    })
  })
}

/** What a cell needs to start: where its files go, its tokens, its bucket. */
export interface LaunchOptions {
  backend: Backend
  /** A temp directory the caller owns (and removes): the local lake, wrangler's state. */
  dir: string
  /** API_TOKENS of the server (every runtime gets tokens: the Worker has no open-writes mode). */
  apiTokens: string
  /** The bucket of an `s3` cell, on `s3`. */
  bucket?: string
  s3?: S3TestConfig | null
  /** The database of a `postgres` cell (a `postgres://` URL). */
  databaseUrl?: string
  /**
   * A WebSocket-to-TCP relay (`host:port/path`) for the neon driver of a `postgres` cell whose
   * runtime has no TCP (workerd): POSTGRES_WS_PROXY, over `ws:`, without pipelined start-up.
   */
  postgresWsProxy?: string
  /** The server and database of a `mongodb` cell. */
  mongoUrl?: string
  mongoDb?: string
  /** More environment variables of the entry (e.g. MAINTENANCE_CRON). */
  env?: Record<string, string>
  timeoutMs?: number
}

/** One row of the matrix and of the docs' table. */
export interface RuntimeSpec {
  id: string
  /** The runtime, with its version. */
  title: () => string
  /** How a user starts it (the docs' table). */
  start: string
  /** The backends the matrix runs it on. */
  backends: readonly Backend[]
  /** The docs' table for a backend it does not run: why not. */
  without: Partial<Record<Backend, string>>
  /** Scheduled maintenance on it. */
  maintenance: string
  /** Limits a user should know. */
  limits: string
  /** Why it cannot run here, or null. */
  missing: () => string | null
  launch: (options: LaunchOptions) => Promise<Running>
}

/** The `data` of the `start` task's --allow-read/--allow-write swapped for `dataDir`, or dropped (null). */
export async function denoStartArgs(dataDir: string | null): Promise<string[]> {
  const tasks = (JSON.parse(await readFile(join(ROOT, 'deno.json'), 'utf8')) as { tasks: Record<string, string> }).tasks
  const [exe, ...args] = tasks.start.split(/\s+/)
  if (exe !== './node_modules/.bin/deno') throw new Error(`deno.json start task runs ${exe}, not ./node_modules/.bin/deno`)
  const out: string[] = []
  for (const arg of args) {
    if (/^(-A|--allow-all)$/.test(arg) || /^--allow-(read|write)$/.test(arg)) throw new Error(`start task has ${arg}`)
    const m = /^(--allow-(?:read|write))=(.*)$/.exec(arg)
    if (!m) {
      out.push(arg)
      continue
    }
    const paths = m[2].split(',')
    if (!paths.includes('data')) throw new Error(`start task's ${m[1]} lacks data`)
    if (dataDir) out.push(`${m[1]}=${paths.map((p) => (p === 'data' ? dataDir : p)).join(',')}`)
    else if (m[1] === '--allow-read') out.push(`${m[1]}=${paths.filter((p) => p !== 'data').join(',')}`)
  }
  return out
}

/** The entry's storage variables for `local` and `s3` (`r2` is the Worker's binding: none). */
function backendEnv(o: LaunchOptions): Record<string, string> {
  switch (o.backend) {
    case 'local':
      return { DATA_DIR: join(o.dir, 'data') }
    case 's3':
      if (!o.s3 || !o.bucket) throw new Error('an s3 cell needs the S3 server and a bucket')
      return s3LakeEnv(o.s3, o.bucket)
    case 'postgres':
      if (!o.databaseUrl) throw new Error('a postgres cell needs a database URL')
      return {
        STORAGE_BACKEND: 'postgres',
        DATABASE_URL: o.databaseUrl,
        ...(o.postgresWsProxy
          ? { POSTGRES_WS_PROXY: o.postgresWsProxy, POSTGRES_WS_SECURE: 'false', POSTGRES_PIPELINE_CONNECT: 'false' }
          : {}),
      }
    case 'mongodb':
      if (!o.mongoUrl || !o.mongoDb) throw new Error('a mongodb cell needs a server URL and a database name')
      return { STORAGE_BACKEND: 'mongodb', MONGODB_URL: o.mongoUrl, MONGODB_DB: o.mongoDb }
    case 'r2':
      throw new Error("backend r2 is the Worker's binding")
  }
}

/** A server process whose API listens on PORT (Node, Bun, Deno). */
async function launchServer(command: string, args: string[], o: LaunchOptions): Promise<Running> {
  const port = await freePort()
  return start(command, args, {
    cwd: ROOT,
    env: childEnv({ ...backendEnv(o), API_TOKENS: o.apiTokens, ...o.env, PORT: String(port), NO_COLOR: '1' }),
    port,
    timeoutMs: o.timeoutMs ?? 60_000,
  })
}

function nodeRuntime(major: number, note: string): RuntimeSpec {
  return {
    id: `node${major}`,
    title: () => `Node ${pinnedNode(major).version}${note}`,
    start: '`npm start` (= `friday serve`, `dist/`); `node --import tsx functions/node.ts`',
    backends: ['local', 's3', 'postgres', 'mongodb'],
    without: { r2: 'Workers only' },
    maintenance: '`friday maintain` from cron; `POST /v1/maintenance/run`',
    limits: 'none of its own',
    missing: () => missingNode(major),
    launch: (o) => launchServer(pinnedNode(major).bin, [join(ROOT, 'bin', 'friday.js'), 'serve'], o),
  }
}

export const RUNTIMES: readonly RuntimeSpec[] = [
  nodeRuntime(20, ' (end of life since April 2026)'),
  nodeRuntime(22, ''),
  nodeRuntime(24, ''),
  {
    id: 'bun',
    title: () => `Bun ${devVersion('bun')}`,
    start: '`bun functions/bun.ts` (`Bun.serve`)',
    backends: ['local', 's3', 'postgres', 'mongodb'],
    without: { r2: 'Workers only' },
    maintenance: '`friday maintain` from cron; `POST /v1/maintenance/run`',
    limits: 'none of its own',
    missing: () => missingBinary('bun'),
    launch: (o) => launchServer(join(BIN, 'bun'), ['functions/bun.ts'], o),
  },
  {
    id: 'deno',
    title: () => `Deno ${devVersion('deno')}`,
    start: '`npm run start:deno` (`Deno.serve`, `functions/deno.ts` over `dist/`); Deno Deploy',
    backends: ['local', 's3', 'postgres', 'mongodb'],
    without: { r2: 'Workers only' },
    maintenance: '`Deno.cron` (`MAINTENANCE_CRON`; Deploy, or `--unstable-cron`); `POST /v1/maintenance/run`',
    limits: 'permissions of the `start` task (no `-A`); Deno Deploy: no filesystem, use S3',
    missing: () => missingBinary('deno'),
    launch: async (o) =>
      launchServer(join(BIN, 'deno'), await denoStartArgs(o.backend === 'local' ? join(o.dir, 'data') : null), o),
  },
  {
    id: 'workerd',
    title: () => `workerd (wrangler ${runtimePins().wrangler.version} dev)`,
    start: '`npx wrangler dev` / `npx wrangler deploy` (`functions/worker.ts`)',
    backends: ['s3', 'r2', 'postgres'],
    without: {
      local: 'no filesystem',
      mongodb: 'refused: the MongoDB driver needs Node, Bun or Deno',
    },
    maintenance: '`[triggers] crons` of `wrangler.toml` (`scheduled`); `POST /v1/maintenance/run`',
    limits:
      'CPU 10 ms per request (free plan) or 30 s by default (paid); 128 MB memory; bundle 3 MB (free) / 10 MB (paid) compressed; 50 subrequests per request (free)',
    missing: missingWrangler,
    launch: launchWorker,
  },
]

/** The pinned version of an npm devDependency (package.json). */
export function devVersion(name: string): string {
  const version = packageJson.devDependencies[name]
  if (!version) throw new Error(`package.json has no devDependency ${name}`)
  return version
}

/**
 * `wrangler dev` of functions/worker.ts with the repository's wrangler.toml copied into `dir`:
 * over S3 its vars point at the bucket; over R2 its `[[r2_buckets]]` example is switched on and
 * the S3 endpoint points at a closed port (the lake must not use it). State under `dir/state`.
 */
async function launchWorker(o: LaunchOptions): Promise<Running> {
  const toml = await readFile(join(ROOT, 'wrangler.toml'), 'utf8')
  let vars: Record<string, string>
  if (o.backend === 'r2') {
    const r2Toml = toml.replace(/^# (\[\[r2_buckets\]\]|binding = "R2_BUCKET"|bucket_name = .*)$/gm, '$1')
    if (!/^\[\[r2_buckets\]\]\nbinding = "R2_BUCKET"\nbucket_name = "market-data"$/m.test(r2Toml)) {
      throw new Error("wrangler.toml's [[r2_buckets]] example is not the one the matrix switches on")
    }
    await writeFile(join(o.dir, 'wrangler.toml'), r2Toml)
    vars = { AWS_ENDPOINT_URL: 'http://127.0.0.1:9' }
  } else {
    await copyFile(join(ROOT, 'wrangler.toml'), join(o.dir, 'wrangler.toml'))
    vars = backendEnv(o)
  }
  vars = { ...vars, API_TOKENS: o.apiTokens, ...o.env }
  await writeFile(
    join(o.dir, 'worker.env'),
    Object.entries(vars)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  )
  const [port, inspectorPort] = [await freePort(), await freePort()]
  const node24 = pinnedNode(24).bin
  return start(node24, [runtimePins().wrangler.js, ...wranglerDevArgs(o.dir, port, inspectorPort)], {
    cwd: o.dir,
    env: childEnv({ WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: join(o.dir, 'logs'), NO_COLOR: '1' }),
    port,
    timeoutMs: o.timeoutMs ?? 120_000,
  })
}

export function runtimeById(id: string): RuntimeSpec {
  const r = RUNTIMES.find((x) => x.id === id)
  if (!r) throw new Error(`no runtime ${id} in the matrix`)
  return r
}

/** Every cell: a runtime over one of its backends. */
export function matrixCells(): { runtime: RuntimeSpec; backend: Backend }[] {
  return RUNTIMES.flatMap((runtime) => runtime.backends.map((backend) => ({ runtime, backend })))
}

const BACKEND_TITLES: Record<Backend, string> = {
  local: 'local lake',
  s3: 'S3 API (radosgw)',
  r2: 'R2 binding (Miniflare)',
  postgres: 'PostgreSQL 15 (`pg`; Workers: Neon driver via a WebSocket relay)',
  mongodb: 'MongoDB wire server (CongoDB)',
}

export const TABLE_BEGIN = '<!-- runtime-table: generated from test/helpers/runtime-matrix.ts by `npm run docs:runtimes` -->'
export const TABLE_END = '<!-- /runtime-table -->'

/**
 * The docs' support table: a row per runtime; "smoke" where the matrix runs the cell (every
 * step of test/helpers/runtime-smoke.ts), else why not.
 */
export function renderRuntimeTable(): string {
  const head = ['runtime', 'start it with', ...BACKENDS.map((b) => BACKEND_TITLES[b]), 'scheduled maintenance', 'limits']
  const rows = RUNTIMES.map((r) => [
    r.title(),
    r.start,
    ...BACKENDS.map((b) => (r.backends.includes(b) ? 'smoke ✓' : `— (${r.without[b] ?? 'not run'})`)),
    r.maintenance,
    r.limits,
  ])
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [TABLE_BEGIN, line(head), line(head.map(() => '---')), ...rows.map(line), TABLE_END].join('\n')
}

/** `doc` with the text between the table's markers replaced by `table`; throws without markers. */
export function replaceRuntimeTable(doc: string, table: string): string {
  const begin = doc.indexOf(TABLE_BEGIN)
  const end = doc.indexOf(TABLE_END)
  if (begin < 0 || end < begin) throw new Error('docs/runtimes.md has no runtime-table markers')
  return doc.slice(0, begin) + table + doc.slice(end + TABLE_END.length)
}
