/**
 * The configuration defaults are the seed's DATA_CONFIG (issue 13): rotation on (`size_based`,
 * 100 MB, old files compressed), the op log on with 90 days of retention, retrieval in batches of
 * 10,000 rows with 4 symbols loaded at once, the read cache on. Checked on the parsed config,
 * on what `createStorage` builds from no config at all, and end to end: `friday maintain` (a real
 * child process) on a fresh lake of 240 one-row files compacts them, and says so when rotation is off.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { defaultConfig, parseConfig } from '../src/config/load.js'
import { DEFAULT_ROTATION, rotationFromConfig } from '../src/core/rotation-policy.js'
import type { DataStorage, MaintenanceReport } from '../src/core/types.js'
import * as web from '../src/index.js'
import { createStorage } from '../src/node.js'
import type { BufferedOpLog } from '../src/oplog/buffered-op-log.js'
import { loadSymbols } from '../src/training/load.js'
import { rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import { FRIDAY_CLI_ARGS } from './helpers/friday-cli.js'

const MB = 1024 * 1024

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'friday-defaults-'))
  dirs.push(d)
  return d
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** `friday <args>` as a child process (no TTY), with no config file: the defaults plus `env`. */
function friday(args: string[], cwd: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...FRIDAY_CLI_ARGS, ...args], {
      cwd,
      env: {
        ...process.env,
        STORAGE_BACKEND: '',
        FRIDAY_ENV: '',
        FILE_ROTATION_ENABLED: '',
        FILE_ROTATION_STRATEGY: '',
        ...env,
      },
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

describe('the defaults are the seed configuration', () => {
  it('parsing an empty config gives the seed values', () => {
    const s = parseConfig({}, {}).storage
    expect(s.file_rotation).toMatchObject({
      enabled: true,
      strategy: 'size_based',
      max_file_size_mb: 100,
      compress_old_files: true,
    })
    expect(s.metadata_logging).toMatchObject({ enabled: true, retention_days: 90 })
    expect(s.retrieval).toEqual({ batch_size: 10_000, parallel_loading: true, max_workers: 4 })
    expect(s.read_cache.enabled).toBe(true)
  })

  it('DEFAULT_ROTATION (a LakeStorage built without a policy) is the policy of the config defaults', () => {
    expect(DEFAULT_ROTATION).toEqual(rotationFromConfig(defaultConfig().storage.file_rotation))
    expect(DEFAULT_ROTATION).toMatchObject({ enabled: true, strategy: 'size_based', maxFileBytes: 100 * MB })
    expect(DEFAULT_ROTATION.archiveCodec).not.toBe('none')
  })

  it('the retrieval settings are validated and have environment overrides', () => {
    const env = { RETRIEVAL_BATCH_SIZE: '500', RETRIEVAL_PARALLEL_LOADING: 'false', RETRIEVAL_MAX_WORKERS: '8' }
    expect(parseConfig({}, env).storage.retrieval).toEqual({ batch_size: 500, parallel_loading: false, max_workers: 8 })
    expect(() => parseConfig({ storage: { retrieval: { batch_size: 0 } } }, {})).toThrow(
      'storage.retrieval.batch_size: expected an integer from 1 to 10000000, got 0',
    )
    expect(() => parseConfig({ storage: { retrieval: { max_workers: 65 } } }, {})).toThrow(
      'storage.retrieval.max_workers: expected an integer from 1 to 64, got 65',
    )
  })

  it('createStorage with no config (Node entry): op log kept 90 days, read cache on, retrieval defaults set', async () => {
    const dir = await tmp()
    const storage = createStorage(undefined, { DATA_DIR: dir })
    try {
      expect(storage.backend).toBe('local_parquet')
      expect((storage.oplog as BufferedOpLog | undefined)?.retentionDays).toBe(90)
      expect(storage.readCache?.stats()).toMatchObject({ ttlMs: 300_000, maxBytes: 64 * MB })
      expect(storage.retrieval).toEqual({ batchSize: 10_000, concurrency: 4 })
    } finally {
      await storage.close()
    }
  })

  it('the Web entry (Workers) applies the same defaults', async () => {
    const storage = web.createStorage({ storage: { default_backend: 's3_parquet', s3_parquet: { bucket: 'defaults' } } }, {})
    try {
      expect((storage.oplog as BufferedOpLog | undefined)?.retentionDays).toBe(90)
      expect(storage.readCache).toBeDefined()
      expect(storage.retrieval).toEqual({ batchSize: 10_000, concurrency: 4 })
    } finally {
      await storage.close()
    }
  })

  it('scan() without a batchSize yields batch_size rows per batch; an explicit batchSize wins', async () => {
    const dir = await tmp()
    const storage = createStorage(undefined, { DATA_DIR: dir })
    try {
      const ds = uniqueDataset('batches')
      const n = 25_000
      const timestamp = Float64Array.from({ length: n }, (_, i) => tms(0) + i * 1000)
      await storage.write(ds, { symbol: Array(n).fill('AAPL'), timestamp, close: Float64Array.from(timestamp, (_, i) => i) })
      const sizes = async (batchSize?: number) => {
        const out: number[] = []
        for await (const t of storage.scan(ds, batchSize === undefined ? {} : { batchSize })) out.push(t.length)
        return out
      }
      expect(await sizes()).toEqual([10_000, 10_000, 5_000])
      expect(await sizes(20_000)).toEqual([20_000, 5_000])
    } finally {
      await storage.close()
    }
  })

  it('training loads max_workers symbols at once; parallel_loading: false loads one at a time', async () => {
    const dir = await tmp()
    const ds = uniqueDataset('workers')
    const symbols = ['A', 'B', 'C', 'D', 'E', 'F']
    const inFlight = async (retrieval: object) => {
      const storage = createStorage({ storage: { retrieval } }, { DATA_DIR: dir })
      try {
        await storage.write(
          ds,
          symbols.map((symbol, i) => ({ symbol, timestamp: tms(0, i), close: i })),
        )
        const counted = countingReads(storage)
        const t = await loadSymbols(counted.storage, ds, { symbols })
        expect(rowsOf(t)).toEqual(rowsOf(await storage.read(ds, { symbols })))
        return counted.counts
      } finally {
        await storage.close()
      }
    }
    expect(await inFlight({})).toEqual({ calls: 6, inFlight: 0, maxInFlight: 4 })
    expect(await inFlight({ max_workers: 2 })).toEqual({ calls: 6, inFlight: 0, maxInFlight: 2 })
    expect(await inFlight({ parallel_loading: false })).toEqual({ calls: 6, inFlight: 0, maxInFlight: 1 })
  })
})

/** Counts reads in flight; each is held a moment so that the limit, not the disk, decides the overlap. */
function countingReads(storage: DataStorage) {
  const counts = { calls: 0, inFlight: 0, maxInFlight: 0 }
  const read: DataStorage['read'] = async (...args) => {
    counts.calls++
    counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight)
    try {
      await new Promise((resolve) => setTimeout(resolve, 5))
      return await storage.read(...args)
    } finally {
      counts.inFlight--
    }
  }
  const proxy = new Proxy(storage, {
    get(target, prop) {
      if (prop === 'read') return read
      const v = Reflect.get(target, prop, target)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  return { storage: proxy, counts }
}

describe('friday maintain on a fresh lake under the defaults', () => {
  /** 240 one-row files: 240 separate appends into 4 partitions (2 symbols x 2 days), 60 files each. */
  async function freshLake(dir: string): Promise<{ ds: string; rows: Record<string, unknown>[] }> {
    const storage = createStorage(undefined, { DATA_DIR: dir })
    const ds = 'bars'
    try {
      for (let i = 0; i < 240; i++) {
        const symbol = i % 2 ? 'MSFT' : 'AAPL'
        const day = Math.floor(i / 120)
        await storage.write(ds, [{ symbol, timestamp: tms(day, i), close: 100 + i / 8, volume: i }], { mode: 'append' })
      }
      const parts = await storage.listPartitions(ds)
      expect(parts.map((p) => p.files)).toEqual([60, 60, 60, 60])
      return { ds, rows: rowsOf(await storage.read(ds)) }
    } finally {
      await storage.close()
    }
  }

  async function filesPerPartition(dir: string, ds: string): Promise<number[]> {
    const storage = createStorage(undefined, { DATA_DIR: dir })
    try {
      const parts = await storage.listPartitions(ds)
      const manifests = await Promise.all(parts.map((p) => storage.getManifest(ds, p.path)))
      expect(manifests.map((m) => m?.files.length)).toEqual(parts.map((p) => p.files))
      return parts.map((p) => p.files)
    } finally {
      await storage.close()
    }
  }

  it('compacts the 240 one-row files into one file per partition, says so, and every row reads back the same', async () => {
    const dir = await tmp()
    const { ds, rows } = await freshLake(dir)
    const run = await friday(['maintain'], dir, { DATA_DIR: dir })
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain('file rotation: size_based (max_file_size_mb: 100); replaced files archived gzip-compressed')
    expect(run.stdout).toMatch(/bars: 4 partitions checked, 4 compacted \(240 files -> 4, .*archives \+240 -0/)
    expect(run.stdout).toMatch(/compacted 4 partitions, 240 files -> 4/)
    expect(await filesPerPartition(dir, ds)).toEqual([1, 1, 1, 1])
    const storage = createStorage(undefined, { DATA_DIR: dir })
    try {
      expect(rowsOf(await storage.read(ds))).toEqual(rows)
      expect((await storage.verify!()).ok).toBe(true)
      // the replaced files were archived compressed, as compress_old_files says
      const archives = await storage.listArchives!(ds)
      expect(archives).toHaveLength(240)
      expect(new Set(archives.map((a) => a.codec))).toEqual(new Set(['gzip']))
    } finally {
      await storage.close()
    }
    // nothing is due any more: one file per partition
    const again = await friday(['maintain', '--json'], dir, { DATA_DIR: dir })
    expect(again.code, again.stderr).toBe(0)
    const report = JSON.parse(again.stdout) as MaintenanceReport
    expect(report.totals.partitionsCompacted).toBe(0)
    expect(report.datasets[0].partitionsChecked).toBe(4)
  }, 120_000)

  it('with rotation disabled it says so, compacts nothing, and still runs retention and gc', async () => {
    const dir = await tmp()
    const { ds, rows } = await freshLake(dir)
    const notice = 'file rotation is disabled (storage.file_rotation.enabled: false): no compaction; retention and gc still run'
    const run = await friday(['maintain'], dir, { DATA_DIR: dir, FILE_ROTATION_ENABLED: 'false' })
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout.split('\n')[0]).toBe(notice)
    expect(run.stdout).toMatch(/bars: 0 partitions checked, 0 compacted/)
    // --quiet still says why nothing was compacted; --json keeps stdout JSON and says it on stderr
    const quiet = await friday(['maintain', '-q'], dir, { DATA_DIR: dir, FILE_ROTATION_ENABLED: 'false' })
    expect(quiet.stdout.split('\n')[0]).toBe(notice)
    const json = await friday(['maintain', '--json'], dir, { DATA_DIR: dir, FILE_ROTATION_ENABLED: 'false' })
    expect(json.code, json.stderr).toBe(0)
    expect((JSON.parse(json.stdout) as MaintenanceReport).totals.partitionsCompacted).toBe(0)
    expect(json.stderr).toContain(notice)
    expect(await filesPerPartition(dir, ds)).toEqual([60, 60, 60, 60])
    const storage = createStorage(undefined, { DATA_DIR: dir })
    try {
      expect(rowsOf(await storage.read(ds))).toEqual(rows)
      // each of the three runs recorded its steps in the op log (on by default): rotation off, retention and gc run
      const steps = async (op: 'rotate' | 'retention' | 'gc') => storage.oplog!.query({ dataset: ds, op, limit: 10 })
      const rotate = await steps('rotate')
      expect(rotate).toHaveLength(3)
      expect(rotate.every((r) => (r.details as { enabled: boolean }).enabled === false)).toBe(true)
      expect(await steps('retention')).toHaveLength(3)
      expect(await steps('gc')).toHaveLength(3)
    } finally {
      await storage.close()
    }
  }, 120_000)
})
