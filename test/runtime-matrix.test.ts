/**
 * The runtime matrix (test/helpers/runtime-matrix.ts): every runtime entry, over every backend it
 * runs on, started as a real child process on a free port of 127.0.0.1 with an admin API token,
 * then driven over HTTP by the one smoke script (test/helpers/runtime-smoke.ts: healthz, 401s,
 * NDJSON and CSV ingest, JSON and Parquet read-back, refused bad rows, a training set's `.npy`
 * files, a maintenance run). Each cell then finds its data where its backend keeps it: the
 * Parquet files and manifests under DATA_DIR, in the radosgw bucket, in the simulated R2 bucket
 * (read from wrangler's persisted state once the server has stopped); the rows in the cell's own
 * PostgreSQL or MongoDB database. Last, docs/runtimes.md's table must be the one the matrix
 * renders, and under CI the suite itself must run on the pinned Node 24. Under CI a missing
 * runtime or server fails; elsewhere its cells skip and say why.
 */

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { requireMongoOrSkip } from './helpers/mongo.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { type Backend, matrixCells, pinnedNode, renderRuntimeTable, TABLE_BEGIN, TABLE_END } from './helpers/runtime-matrix.js'
import { CI, describeWithTool, ROOT, type Running, stop } from './helpers/runtime-process.js'
import { SMOKE_STEPS, type SmokeContext, smokeContext } from './helpers/runtime-smoke.js'
import { createTestBucketStore, s3TestConfig } from './helpers/s3.js'
import { startWsRelay } from './helpers/ws-relay.js'

const TOKEN = `matrix-${crypto.randomUUID()}`
const PREFIX = 'smoke'
const HIVE = /^[a-z0-9_]+\/symbol=[A-Z]+\/date=\d{4}-\d{2}-\d{2}\/part-[^/]+\.parquet$/
const s3 = await s3TestConfig()
const cells = matrixCells()
// the database servers, started only when a cell needs them (closed after the last test)
const pgServer = cells.some((c) => c.backend === 'postgres') ? await requirePostgresOrSkip() : null
const mongoServer = cells.some((c) => c.backend === 'mongodb') ? await requireMongoOrSkip() : null
// workerd has no TCP: its postgres cell reaches the server through Neon's driver and this relay
const relay = pgServer && cells.some((c) => c.runtime.id === 'workerd' && c.backend === 'postgres') ? await startWsRelay() : null
afterAll(async () => {
  await relay?.close()
  await pgServer?.stop()
  await mongoServer?.stop()
})

const BACKEND_NAMES: Record<Backend, string> = {
  local: 'local_parquet',
  s3: 's3_parquet',
  r2: 's3_parquet',
  postgres: 'postgres',
  mongodb: 'mongodb',
}

/** Why a cell's backend cannot run here, or null. */
function missingBackend(backend: Backend): string | null {
  if (backend === 's3' && !s3) return 'no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)'
  if (backend === 'postgres' && !pgServer) return 'no PostgreSQL (DATABASE_URL, or PostgreSQL binaries for a throwaway cluster)'
  if (backend === 'mongodb' && !mongoServer) return 'no MongoDB wire server (CongoDB did not start, MONGODB_URL unreachable)'
  return null
}

for (const { runtime, backend } of matrixCells()) {
  const missing = runtime.missing() ?? missingBackend(backend)
  let title: string
  try {
    title = `${runtime.title()} over ${backend}`
  } catch (err) {
    title = `${runtime.id} over ${backend} (${(err as Error).message})`
  }

  describeWithTool(missing, `runtime matrix: ${title}`, () => {
    let running: Running | undefined
    let dir: string | undefined
    let bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined
    let ctx: SmokeContext | undefined
    // a fresh database per cell (postgres, mongodb)
    const database = `friday_matrix_${runtime.id}_${crypto.randomUUID().slice(0, 8)}`
    let databaseUrl: string | undefined

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), `friday-matrix-${runtime.id}-${backend}-`))
      if (backend === 's3') bucket = await createTestBucketStore(`matrix-${runtime.id}`)
      if (backend === 'postgres') databaseUrl = await createDatabase(database)
      running = await runtime.launch({
        backend,
        dir,
        apiTokens: `${TOKEN}=admin`,
        bucket: bucket?.bucket,
        s3,
        databaseUrl,
        postgresWsProxy: runtime.id === 'workerd' && relay ? `127.0.0.1:${relay.port}/v1` : undefined,
        mongoUrl: mongoServer?.url,
        mongoDb: database,
      })
      console.log(`  ${title}: /healthz answered ${running.startupMs} ms after the spawn`)
      ctx = smokeContext({ url: running.url, token: TOKEN, backend: BACKEND_NAMES[backend], dataset: PREFIX })
    }, 180_000)

    afterAll(async () => {
      await stop(running)
      await bucket?.cleanup()
      if (databaseUrl) await dropDatabase(database)
      if (backend === 'mongodb' && mongoServer) {
        const client = mongoServer.client()
        try {
          await client.db(database).dropDatabase()
        } finally {
          await client.close()
        }
      }
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    // every step but the clean-up: the files are looked for below
    for (const step of SMOKE_STEPS.filter((s) => s.name !== 'cleanup')) {
      it(step.name, () => step.run(ctx!), 120_000)
    }

    if (runtime.id.startsWith('node')) {
      it('runs under the pinned Node binary', () => {
        const { bin } = pinnedNode(Number(runtime.id.slice(4)))
        expect(realpathSync(readlinkSync(`/proc/${running!.child.pid}/exe`))).toBe(realpathSync(bin))
      })
    }

    if (backend === 'postgres') {
      it('keeps the rows in its PostgreSQL database (a ds_<dataset> table per dataset)', async () => {
        const client = new pg.Client({ connectionString: databaseUrl })
        await client.connect()
        try {
          expect(ctx!.datasets.length).toBeGreaterThan(0)
          for (const ds of ctx!.datasets) {
            const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(`ds_${ds}`)}`)
            expect(rows[0].n, ds).toBeGreaterThan(0)
          }
        } finally {
          await client.end()
        }
      })
      return
    }
    if (backend === 'mongodb') {
      it('keeps the rows in its MongoDB database', async () => {
        const client = mongoServer!.client()
        try {
          expect(ctx!.datasets.length).toBeGreaterThan(0)
          const names = (await client.db(database).listCollections().toArray()).map((c) => c.name)
          expect(names.length, JSON.stringify(names)).toBeGreaterThan(0)
          for (const ds of ctx!.datasets)
            expect(
              names.some((n) => n.includes(ds)),
              `${ds} in ${JSON.stringify(names)}`,
            ).toBe(true)
        } finally {
          await client.close()
        }
      })
      return
    }

    it(`keeps the Parquet files and manifests in the ${backend} backend`, async () => {
      const datasets = ctx!.datasets
      expect(datasets.length).toBeGreaterThan(0)
      const keys = await storedKeys(backend, dir!, bucket, () => {
        const r = running
        running = undefined
        return stop(r)
      })
      for (const ds of datasets) {
        const data = keys.filter((k) => k.startsWith(`${ds}/`))
        expect(data.length, `${ds}: ${JSON.stringify(keys)}`).toBeGreaterThan(0)
        for (const k of data) expect(k).toMatch(HIVE)
        expect(keys.filter((k) => k.startsWith(`_friday/${ds}/symbol=`)).length).toBeGreaterThan(0)
      }
    }, 60_000)
  })
}

/** Creates `name` on the test PostgreSQL; its URL. */
async function createDatabase(name: string): Promise<string> {
  const client = new pg.Client({ connectionString: pgServer!.url })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
  } finally {
    await client.end()
  }
  const url = new URL(pgServer!.url)
  url.pathname = `/${name}`
  return url.toString()
}

async function dropDatabase(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgServer!.url })
  await client.connect()
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
  } finally {
    await client.end()
  }
}

/**
 * The object keys (local: paths under DATA_DIR) of the cell's lake. The simulated R2 bucket is
 * read from wrangler's --persist-to state once the server is stopped.
 */
async function storedKeys(
  backend: Backend,
  dir: string,
  bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined,
  stopServer: () => Promise<void>,
): Promise<string[]> {
  if (backend === 'local') {
    const data = join(dir, 'data')
    expect(existsSync(data)).toBe(true)
    return (readdirSync(data, { recursive: true }) as string[])
      .filter((p) => statSync(join(data, p)).isFile())
      .map((p) => p.split('\\').join('/'))
  }
  if (backend === 's3') return (await bucket!.store.list('')).objects.map((o) => o.key)
  await stopServer()
  // wrangler's simulated bucket as it persisted it under --persist-to: Miniflare keeps the keys in
  // a SQLite table (_mf_objects: key, blob_id) and each object's bytes in blobs/<blob_id>. Read
  // with Python's sqlite3 (the devDependency Miniflare cannot open the newer wrangler's state).
  const r2 = join(dir, 'state', 'v3', 'r2')
  const script = [
    'import glob, json, sqlite3, sys',
    'rows = []',
    'for f in glob.glob(sys.argv[1] + "/miniflare-R2BucketObject/*.sqlite"):',
    '    c = sqlite3.connect("file:" + f + "?mode=ro", uri=True)',
    '    if c.execute("select 1 from sqlite_master where name = \'_mf_objects\'").fetchone():',
    '        rows += c.execute("select key, blob_id from _mf_objects").fetchall()',
    'print(json.dumps(rows))',
  ].join('\n')
  const r = spawnSync(process.env.PYTHON || 'python3', ['-c', script, r2], { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`reading the simulated R2 bucket failed (${r.status}): ${r.stderr}`)
  const rows = JSON.parse(r.stdout) as [string, string][]
  for (const [key, blob] of rows) {
    if (!key.endsWith('.parquet')) continue
    const bytes = readFileSync(join(r2, 'market-data', 'blobs', blob))
    expect([bytes.subarray(0, 4).toString(), bytes.subarray(-4).toString()], key).toEqual(['PAR1', 'PAR1'])
  }
  return rows.map(([key]) => key)
}

it("docs/runtimes.md's support table is the one the matrix renders (npm run docs:runtimes)", async () => {
  const doc = await readFile(join(ROOT, 'docs', 'runtimes.md'), 'utf8')
  const begin = doc.indexOf(TABLE_BEGIN)
  const end = doc.indexOf(TABLE_END)
  expect(begin, 'docs/runtimes.md has the table markers').toBeGreaterThanOrEqual(0)
  expect(doc.slice(begin, end + TABLE_END.length)).toBe(renderRuntimeTable())
})

it.skipIf(!CI)('under CI, the suite itself runs on the pinned Node 24 (.ci/run puts it first on PATH)', () => {
  expect(process.version).toBe(`v${pinnedNode(24).version}`)
  expect(realpathSync(process.execPath)).toBe(realpathSync(pinnedNode(24).bin))
})
