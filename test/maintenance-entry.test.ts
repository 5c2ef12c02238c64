/**
 * Running maintenance: the `friday maintain` CLI (a real child process, no TTY), the
 * `POST /v1/maintenance/run` route (in-process, admin scope), and row retention on the database
 * backends (PostgreSQL, MongoDB/CongoDB), archiving to the real S3 server for postgres.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { decompress } from '../src/core/archive-codec.js'
import type { OpRecord } from '../src/core/oplog-types.js'
import type { DataStorage } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { decodeParquet } from '../src/parquet/index.js'
import { createS3Store } from '../src/stores/s3-store.js'
import { rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import { FRIDAY_CLI_ARGS } from './helpers/friday-cli.js'
import { json, testApp } from './helpers/http.js'
import { requireMongoOrSkip } from './helpers/mongo.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection, s3TestClient } from './helpers/s3.js'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'friday-mentry-'))
  dirs.push(d)
  return d
}

/** `n` single-file commits into one partition. */
async function smallFiles(storage: DataStorage, ds: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await storage.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, i), close: i }])
}

function friday(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...FRIDAY_CLI_ARGS, ...args], {
      cwd,
      env: { ...process.env, STORAGE_BACKEND: '', FRIDAY_ENV: '', DATA_DIR: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('friday maintain', () => {
  it('--dry-run reports, a real run compacts and summarizes, a second run has nothing to do', async () => {
    const dir = await tmp()
    const config = {
      storage: {
        default_backend: 'local_parquet',
        local_parquet: { base_dir: join(dir, 'data') },
        file_rotation: { enabled: true, strategy: 'count_based', max_files: 3 },
      },
    }
    await writeFile(join(dir, 'friday.json'), JSON.stringify(config))
    const s = createStorage(config, {})
    await smallFiles(s, 'bars', 5)
    await s.close()

    const dry = await friday(['--config', 'friday.json', 'maintain', '--dry-run'], dir)
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/bars: 1 partition checked, 1 due \(5 files -> 1/)
    expect(dry.stdout).toMatch(/dry run: would compact 1 partition/)

    const run = await friday(['--config', 'friday.json', 'maintain', '--dataset', 'bars'], dir)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/bars: 1 partition checked, 1 compacted \(5 files -> 1, .*archives \+5 -0/)
    expect(run.stdout).toMatch(/maintenance \(local_parquet, 1 dataset, \d+ ms\): compacted 1 partition, 5 files -> 1/)

    const again = await friday(['--config', 'friday.json', 'maintain', '--json'], dir)
    expect(again.code, again.stderr).toBe(0)
    const report = JSON.parse(again.stdout)
    expect(report.totals).toMatchObject({ partitionsCompacted: 0, archivesWritten: 0 })

    const bad = await friday(['--config', 'friday.json', 'maintain', '--dataset', '../x'], dir)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/dataset/)
  }, 60_000)
})

describe('POST /v1/maintenance/run', () => {
  it('needs the admin scope, validates its query and returns the report', async () => {
    const dir = await tmp()
    const storage = createStorage(
      {
        storage: {
          default_backend: 'local_parquet',
          local_parquet: { base_dir: dir },
          file_rotation: { enabled: true, strategy: 'count_based', max_files: 2 },
        },
      },
      {},
    )
    try {
      await smallFiles(storage, 'bars', 3)
      const app = testApp(storage, {
        tokens: [
          { token: 'reader', scopes: ['read', 'write'] },
          { token: 'ops', scopes: ['admin'] },
        ],
      })
      const as = (token: string) => ({ authorization: `Bearer ${token}` })
      expect((await app.request('/v1/maintenance/run', { method: 'POST' })).status).toBe(401)
      expect((await app.request('/v1/maintenance/run', { method: 'POST', headers: as('reader') })).status).toBe(403)
      const bad = await app.request('/v1/maintenance/run?dry_run=yes', { method: 'POST', headers: as('ops') })
      expect(bad.status).toBe(400)
      expect((await json(bad)).error.code).toBe('validation_error')
      expect((await app.request('/v1/maintenance/run?force=1', { method: 'POST', headers: as('ops') })).status).toBe(400)
      expect((await app.request('/v1/maintenance/run', { headers: as('ops') })).status).toBe(405)

      const dry = await app.request('/v1/maintenance/run?dry_run=true', { method: 'POST', headers: as('ops') })
      expect(dry.status).toBe(200)
      expect((await json(dry)).totals.partitionsCompacted).toBe(1)
      expect((await storage.describe('bars'))!.files).toBe(3)

      const res = await app.request('/v1/maintenance/run?dataset=bars', { method: 'POST', headers: as('ops') })
      expect(res.status).toBe(200)
      const report = await json(res)
      expect(report).toMatchObject({
        backend: 'local_parquet',
        dryRun: false,
        totals: { partitionsCompacted: 1, filesMerged: 3, archivesWritten: 3 },
      })
      expect(report.datasets[0].compacted[0].partition).toBe('symbol=AAPL/date=2024-01-02')
      expect((await storage.describe('bars'))!.files).toBe(1)
      // the run is in the op log when the storage has one
      if (storage.oplog) {
        await storage.oplog.flush()
        const ops = (await storage.oplog.query({ dataset: 'bars', limit: 100 })).map((r: OpRecord) => r.op)
        for (const op of ['rotate', 'compact', 'archive', 'retention', 'gc']) expect(ops).toContain(op)
      }
    } finally {
      await storage.close()
    }
  })
})

const pg = await requirePostgresOrSkip()
const s3 = await requireS3OrSkip()
const mongo = await requireMongoOrSkip()

afterAll(async () => {
  await pg?.stop()
  await mongo?.stop()
})

/** Rows on days 0..3; now = day 3 14:30 and 2 days of retention: rows before day 1 14:30 expire (AAPL days 0-1 at 14:29, MSFT day 0). */
const ROWS = [0, 1, 2, 3].flatMap((d) => [
  { symbol: 'AAPL', timestamp: tms(d, -1), close: d },
  { symbol: 'MSFT', timestamp: tms(d, 30), close: d + 0.5 },
])
const NOW = tms(3, 0)
const expectedLeft = ROWS.filter((r) => r.timestamp >= tms(1, 0)) // 5 rows

async function dbRetention(config: Record<string, unknown>, archive?: { bucket: string }): Promise<void> {
  const storage = createStorage(config, {})
  const ds = uniqueDataset('mret')
  try {
    await storage.write(ds, ROWS)
    const dry = await storage.maintain!({ dataset: ds, dryRun: true, now: () => NOW })
    expect(dry.totals.rowsExpired).toBe(ROWS.length - expectedLeft.length)
    expect((await storage.read(ds)).length).toBe(ROWS.length)
    const records: OpRecord[] = []
    const r = await storage.maintain!({ dataset: ds, now: () => NOW, sink: { record: (x) => records.push(x) } })
    expect(r.datasets[0]).toMatchObject({ dataset: ds, rowsExpired: 3, errors: [], compacted: [] })
    expect(records.map((x) => x.op)).toEqual(['retention', 'maintain'])
    expect(rowsOf(await storage.read(ds)).map((x) => x.close)).toEqual([2, 3, 1.5, 2.5, 3.5])
    if (archive) {
      expect(r.totals.archivesWritten).toBe(1)
      const store = createS3Store({ bucket: archive.bucket, client: s3TestClient(s3!) })
      const { objects } = await store.list(`_friday/${ds}/_archive/rows/`)
      expect(objects).toHaveLength(1)
      expect(objects[0].key).toMatch(/\.parquet\.gz$/)
      const got = (await store.get(objects[0].key))!
      const t = await decodeParquet(await decompress('gzip', got.body, 0))
      expect(rowsOf(t).map((x) => x.close)).toEqual([0, 1, 0.5])
      await store.close()
    }
    // nothing left to expire
    expect((await storage.maintain!({ dataset: ds, now: () => NOW })).totals.rowsExpired).toBe(0)
  } finally {
    await storage.delete(ds).catch(() => undefined)
    await storage.close()
  }
}

describe.skipIf(!pg)('row retention on postgres', () => {
  const bucket = `friday-mret-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
  afterAll(async () => {
    if (s3) await deleteTestBucket(s3, bucket)
  })
  const base = () => ({
    default_backend: 'postgres',
    postgres: { url: pg!.url, driver: 'pg' },
    file_rotation: { row_retention_days: 2 },
  })

  it('deletes rows older than row_retention_days (no object store configured: no archive)', async () => {
    await dbRetention({ storage: base() })
  })

  it.skipIf(!s3)('archives them as Parquet in the configured S3 bucket first', async () => {
    await dbRetention(
      {
        storage: {
          ...base(),
          s3_parquet: s3ParquetSection(s3!, bucket),
        },
      },
      { bucket },
    )
  })
})

describe.skipIf(!mongo)('row retention on mongodb', () => {
  it('deletes rows older than row_retention_days', async () => {
    await dbRetention({
      storage: {
        default_backend: 'mongodb',
        mongodb: { url: mongo!.url, database: `friday_mret_${Date.now()}` },
        file_rotation: { row_retention_days: 2 },
      },
    })
  }, 60_000)
})
