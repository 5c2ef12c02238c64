/**
 * Issue 13 item 5 (usability): `friday serve` honours HOST/PORT (flags win), every error is one
 * line on stderr, an unknown dataset is exit 1 for every command, `--backend` takes every backend
 * the config knows, a script that never calls `close()` still gets its op-log records stored, an
 * unservable `Accept` gets JSON, the manifest route works for any partitioning, and `describe`
 * names its inclusive time range `firstTimestamp`/`lastTimestamp`. The CLI runs as a real child
 * process (its sources through tsx: `FRIDAY_CLI_ARGS`, as test/cli.test.ts); the HTTP parts run in-process.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { DataStorage } from '../src/core/types.js'
import { createApp } from '../src/http/app.js'
import { createStorage } from '../src/node.js'
import { FRIDAY_CLI_ARGS } from './helpers/friday-cli.js'
import { requireMongoOrSkip } from './helpers/mongo.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BARS = join(ROOT, 'test/fixtures/cli/bars.csv')
const BAD = join(ROOT, 'test/fixtures/cli/bad.csv')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

let tmp: string
let dataDir: string

/** Env for a child: this test's lake, and none of the caller's storage or server settings. */
function childEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATA_DIR: dataDir,
    STORAGE_BACKEND: '',
    FRIDAY_ENV: '',
    HOST: '',
    PORT: '',
    API_TOKENS: '',
    MONGODB_URL: '',
    ...env,
  }
}

/** Runs `node <args>` (`--import tsx` resolved from the repository: TypeScript scripts run too). */
function run(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args[0] === '--import' ? args : ['--import', 'tsx', ...args], {
      cwd: ROOT, // where `--import tsx` resolves; every path given is absolute
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${args.join(' ')} still running after ${timeoutMs} ms:\n${stdout}${stderr}`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

const friday = (args: string[], env: Record<string, string> = {}) => run([...FRIDAY_CLI_ARGS, ...args], env)

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}

/** Starts `friday serve ...`, waits for its banner URL, fetches /healthz there, stops it; returns the URL. */
async function serveUrl(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [...FRIDAY_CLI_ARGS, 'serve', ...args], {
    cwd: ROOT, // where `--import tsx` resolves; every path given is absolute
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  try {
    let output = ''
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve printed no URL within 45 s: ${output}`)), 45_000)
      const onData = (d: Buffer) => {
        output += d
        const m = /listening on (http:\/\/\S+)/.exec(output)
        if (m) {
          clearTimeout(timer)
          resolve(m[1])
        }
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.on('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`serve exited with ${code}: ${output}`))
      })
    })
    const res = await fetch(`${url}/healthz`)
    expect(res.status).toBe(200)
    await res.arrayBuffer()
    return url
  } finally {
    child.kill('SIGTERM')
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'friday-ux-'))
  dataDir = join(tmp, 'data')
  const ingest = await friday(['ingest', BARS, '-d', 'bars', '-q'])
  expect(ingest.code, ingest.stderr).toBe(0)
}, 90_000)

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

describe('friday serve: HOST and PORT', () => {
  test('HOST and PORT from the environment are used when no flag is given', async () => {
    const port = await freePort()
    expect(await serveUrl([], { HOST: '127.0.0.2', PORT: String(port) })).toBe(`http://127.0.0.2:${port}`)
  })

  test('--host and --port win over HOST and PORT', async () => {
    const [envPort, flagPort] = [await freePort(), await freePort()]
    const url = await serveUrl(['--host', '127.0.0.1', '--port', String(flagPort)], {
      HOST: '127.0.0.2',
      PORT: String(envPort),
    })
    expect(url).toBe(`http://127.0.0.1:${flagPort}`)
  })

  test('a PORT that is not a port number is one error line and exit 1', async () => {
    const out = await friday(['serve'], { PORT: 'eighty' })
    expect(out.code).toBe(1)
    expect(out.stderr).toBe('friday: invalid PORT: expected an integer from 0 to 65535, got "eighty"\n')
  })
})

describe('friday: one line per error, exit 1 for an unknown dataset', () => {
  test('a bad --start is one line on stderr and nothing on stdout (no [oplog] line, no error record)', async () => {
    const out = await friday(['query', '-d', 'bars', '--start', '2024-99-01'])
    expect(out.code).toBe(1)
    expect(out.stdout).toBe('')
    expect(out.stderr).toBe(`friday: field 'start': cannot parse time "2024-99-01"\n`)
  })

  test('a file with a bad row: the ingest names it once, the op log does not repeat it', async () => {
    const out = await friday(['ingest', BAD, '-d', 'bad'], { DATA_DIR: join(tmp, 'bad-lake') })
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/bad\.csv:5: field 'timestamp'/)
    expect(out.stderr).not.toContain('[oplog]')
    expect(out.stderr.match(/2024-02-30/g)).toHaveLength(1)
  })

  test('maintain, query and ls on an unknown dataset: exit 1 and the same message', async () => {
    const maintain = await friday(['maintain', '-d', 'nope'])
    expect(maintain.code).toBe(1)
    expect(maintain.stdout).toBe('')
    expect(maintain.stderr).toBe("friday: dataset 'nope' not found; datasets: bars\n")
    const query = await friday(['query', '-d', 'nope'])
    expect(query.code).toBe(1)
    expect(query.stderr).toBe("friday: dataset 'nope' not found; datasets: bars\n")
    const ls = await friday(['ls', 'nope'])
    expect(ls.code).toBe(1)
    expect(ls.stderr).toBe("friday: dataset 'nope' not found\n")
    const known = await friday(['maintain', '-d', 'bars', '--dry-run', '-q'])
    expect(known.code, known.stderr).toBe(0)
    expect(known.stdout).toContain('1 dataset')
  })

  test('ls prints the inclusive time range as FIRST and LAST', async () => {
    const ls = await friday(['ls'])
    expect(ls.code).toBe(0)
    expect(ls.stdout.split('\n')[0].split(/\s+/)).toEqual([
      'DATASET',
      'ROWS',
      'PARTITIONS',
      'FILES',
      'SIZE',
      'SYMBOLS',
      'FIRST',
      'LAST',
    ])
    const json = JSON.parse((await friday(['ls', 'bars', '--json'])).stdout)
    expect(json.dataset.firstTimestamp).toBe('2024-03-01T20:00:00.000Z')
    expect(json.dataset.lastTimestamp).toBe('2024-03-03T11:45:00.000Z')
    expect(json.dataset).not.toHaveProperty('end')
    expect(json.partitions[0]).toHaveProperty('lastTimestamp')
  })
})

describe('friday --backend: every backend the config knows', () => {
  test('an unknown backend is a usage error listing postgres and mongodb', async () => {
    const out = await friday(['--backend', 'sqlite', 'ls'])
    expect(out.code).toBe(2)
    expect(out.stderr).toContain('local_parquet, s3_parquet, postgres, mongodb')
  })

  test('--backend mongodb without MONGODB_URL: exit 1 naming the setting and the variable', async () => {
    const out = await friday(['--backend', 'mongodb', 'ls'])
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/^friday: invalid configuration: storage\.mongodb\.url: .*MONGODB_URL/)
    expect(out.stderr.trim().split('\n')).toHaveLength(1)
  })

  test('--backend postgres with DATABASE_URL: ingest, then ls and query', async () => {
    const server = await requirePostgresOrSkip()
    if (!server) return
    const schema = `ux_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`
    const config = join(tmp, 'pg.json')
    await writeFile(config, JSON.stringify({ storage: { postgres: { schema } } }))
    const env = { DATABASE_URL: server.url }
    try {
      const ingest = await friday(['--config', config, '--backend', 'postgres', 'ingest', BARS, '-d', 'bars', '-q'], env)
      expect(ingest.code, ingest.stderr).toBe(0)
      const ls = await friday(['--config', config, '--backend', 'postgres', 'ls'], env)
      expect(ls.code, ls.stderr).toBe(0)
      expect(ls.stdout).toMatch(/^bars\s+320\s/m)
      const q = await friday(['--config', config, '--backend', 'postgres', 'query', '-d', 'bars', '--limit', '2'], env)
      expect(q.stdout.trim().split('\n')).toHaveLength(3)
    } finally {
      const { default: pg } = await import('pg')
      const client = new pg.Client({ connectionString: server.url })
      await client.connect()
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await client.end()
      await server.stop()
    }
  }, 120_000)

  test('--backend mongodb with MONGODB_URL: ingest, then ls', async () => {
    const server = await requireMongoOrSkip()
    if (!server) return
    const database = `friday_ux_${Date.now().toString(36)}`
    const config = join(tmp, 'mongo.json')
    await writeFile(config, JSON.stringify({ storage: { mongodb: { database } } }))
    const env = { MONGODB_URL: server.url }
    try {
      const ingest = await friday(['--config', config, '--backend', 'mongodb', 'ingest', BARS, '-d', 'bars', '-q'], env)
      expect(ingest.code, ingest.stderr).toBe(0)
      const ls = await friday(['--config', config, '--backend', 'mongodb', 'ls'], env)
      expect(ls.code, ls.stderr).toBe(0)
      expect(ls.stdout).toMatch(/^bars\s+320\s/m)
    } finally {
      await server.stop()
    }
  }, 120_000)
})

describe('op log: a script that never calls close()', () => {
  test('its records are stored when the process runs out of work (beforeExit flush)', async () => {
    const lake = join(tmp, 'oplog-lake')
    const config = { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: lake } } }
    const script = join(tmp, 'no-close.mts')
    await writeFile(
      script,
      `import { createStorage } from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/node.ts')).href)}
const storage = createStorage(${JSON.stringify(config)}, {})
await storage.write('ticks', [{ symbol: 'AAPL', timestamp: '2024-01-02T14:30:00Z', close: 1.5 }])
console.log('wrote; pending', storage.oplog?.summary().pending)
// no close(): the process ends when its event loop is empty
`,
    )
    const out = await run([script])
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).toMatch(/^wrote; pending [1-9]/) // the records were still buffered at the end of the script
    expect(out.stderr).toBe('')

    const reader = createStorage(config, {})
    try {
      const records = await reader.oplog!.query({ limit: 100 })
      expect(records.map((r) => r.op)).toEqual(['write'])
      expect(records.find((r) => r.op === 'write')).toMatchObject({ dataset: 'ticks', outcome: 'ok', rows: 1 })
    } finally {
      await reader.close()
    }
  }, 90_000)

  test('a store that fails at exit: the flush failure is printed once and the process still ends', async () => {
    const lake = join(tmp, 'oplog-broken-lake')
    const config = { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: lake } } }
    const script = join(tmp, 'broken-store.mts')
    await writeFile(
      script,
      `import { writeFileSync } from 'node:fs'
  import { createStorage } from ${JSON.stringify(pathToFileURL(join(ROOT, 'src/node.ts')).href)}
  const storage = createStorage(${JSON.stringify(config)}, {})
  await storage.write('ticks', [{ symbol: 'AAPL', timestamp: '2024-01-02T14:30:00Z', close: 1.5 }])
  // the op log's directory becomes a file: every flush fails (ENOTDIR)
  writeFileSync(${JSON.stringify(join(lake, '_oplog'))}, 'not a directory')
  `,
    )
    const out = await run([script])
    expect(out.code, out.stderr).toBe(0)
    expect(out.stderr).toMatch(/^\[oplog\] flush failed \(1 records kept for the next flush\): [^\n]*\n$/)
  }, 90_000)
})

describe('HTTP: Accept, manifests of any partitioning, describe field names, maintenance of an unknown dataset', () => {
  let storage: DataStorage
  let dir: string
  const T0 = Date.UTC(2024, 0, 2, 14, 30)
  const rows = [
    { symbol: 'AAPL', timestamp: T0, close: 1 },
    { symbol: 'EUR/USD', timestamp: T0 + 60_000, close: 2 },
    { symbol: 'AAPL', timestamp: T0 + 86_400_000, close: 3 },
  ]

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-ux-http-'))
    storage = createStorage({ storage: { local_parquet: { base_dir: dir, partition_by: ['date'] } } }, {})
    await storage.write('daily', rows)
  })

  afterAll(async () => {
    await storage.close()
    await rm(dir, { recursive: true, force: true })
  })

  const app = () => createApp({ storage, openWrites: true })

  test('a browser Accept header, or only types we cannot serve, gets JSON rows', async () => {
    for (const accept of ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/xml', 'image/png']) {
      const res = await app().request('/v1/datasets/daily/rows', { headers: { accept } })
      expect(res.status, accept).toBe(200)
      expect(res.headers.get('content-type'), accept).toBe('application/json; charset=utf-8')
      expect(await res.json()).toHaveLength(3)
    }
  })

  test('the manifest of a [date] partition by path or by value; 404s say how the dataset is partitioned', async () => {
    const list = (await (await app().request('/v1/datasets/daily/partitions')).json()) as { partitions: { path: string }[] }
    expect(list.partitions.map((p) => p.path)).toEqual(['date=2024-01-02', 'date=2024-01-03'])

    const byPath = await app().request(`/v1/datasets/daily/partitions/manifest?path=${encodeURIComponent('date=2024-01-02')}`)
    expect(byPath.status).toBe(200)
    const m = await byPath.json()
    expect(m).toMatchObject({ dataset: 'daily', rows: 2, partition: { values: { date: '2024-01-02' } } })

    const byValue = await app().request('/v1/datasets/daily/partitions/manifest?date=2024-01-03')
    expect(byValue.status).toBe(200)
    expect(await byValue.json()).toMatchObject({ rows: 1, partition: { path: 'date=2024-01-03' } })

    const legacy = await app().request('/v1/datasets/daily/partitions/AAPL/2024-01-02')
    expect(legacy.status).toBe(404)
    const error = (await legacy.json()).error
    expect(error.code).toBe('not_found')
    expect(error.message).toBe(
      "partition AAPL/2024-01-02 of dataset 'daily' not found: the dataset is partitioned by date; " +
        'name a partition by date (GET /v1/datasets/daily/partitions/manifest?date=..., or ?path= as GET .../partitions lists it)',
    )
    expect(error.details).toEqual({ partitionBy: ['date'] })

    const absent = await app().request('/v1/datasets/daily/partitions/manifest?date=2024-02-01')
    expect(absent.status).toBe(404)
    expect((await absent.json()).error.message).toBe("partition 2024-02-01 of dataset 'daily' not found")

    const both = await app().request('/v1/datasets/daily/partitions/manifest?date=2024-01-02&path=date%3D2024-01-02')
    expect(both.status).toBe(400)
    expect((await both.json()).error.details.issues[0].field).toBe('path')
    const neither = await app().request('/v1/datasets/daily/partitions/manifest')
    expect(neither.status).toBe(400)
    expect((await app().request('/v1/datasets/nope/partitions/manifest?date=2024-01-02')).status).toBe(404)
  })

  test('describe names its inclusive range firstTimestamp/lastTimestamp, not start/end', async () => {
    const d = await (await app().request('/v1/datasets/daily')).json()
    expect(d.firstTimestamp).toBe(new Date(T0).toISOString())
    expect(d.lastTimestamp).toBe(new Date(T0 + 86_400_000).toISOString())
    expect(d).not.toHaveProperty('start')
    expect(d).not.toHaveProperty('end')
    const parts = (await (await app().request('/v1/datasets/daily/partitions')).json()).partitions
    expect(parts[0]).toMatchObject({
      firstTimestamp: new Date(T0).toISOString(),
      lastTimestamp: new Date(T0 + 60_000).toISOString(),
    })
  })

  test('maintenance of an unknown dataset is a 404, as every dataset-scoped route', async () => {
    const res = await app().request('/v1/maintenance/run?dataset=nope&dry_run=true', { method: 'POST' })
    expect(res.status).toBe(404)
    expect((await res.json()).error.code).toBe('not_found')
    expect((await app().request('/v1/maintenance/run?dataset=daily&dry_run=true', { method: 'POST' })).status).toBe(200)
  })
})
