/**
 * A writer killed (SIGKILL) after writing its data file and before committing the manifest:
 * readers never see its rows, earlier rows are intact, and gc removes the orphan file only
 * once it is older than the grace period.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DeleteBucketCommand } from '@aws-sdk/client-s3'
import { afterAll, describe, expect, it } from 'vitest'
import type { DataStorage } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { createS3Store } from '../src/stores/s3-store.js'
import { rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import type { CrashArgs } from './fixtures/crash-writer.js'
import { requireS3OrSkip, s3ParquetSection, s3TestClient } from './helpers/s3.js'

/** How long a child may run before the test kills it and fails (under vitest's 60 s test timeout). */
const CHILD_DEADLINE_MS = 45_000

function runCrashWriter(
  args: CrashArgs,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/crash-writer.ts', JSON.stringify(args)], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    // a child that never reaches its crash point must not hang the suite (nor outlive it)
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`crash writer still running after ${CHILD_DEADLINE_MS} ms:\n${out}${err}`))
    }, CHILD_DEADLINE_MS)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out, err })
    })
  })
}

const PARTITION = 'symbol=AAPL/date=2024-01-02'
const seedRows = Array.from({ length: 5 }, (_, m) => ({ symbol: 'AAPL', timestamp: tms(0, m), close: 100 + m }))
const crashRows = Array.from({ length: 5 }, (_, m) => ({ symbol: 'AAPL', timestamp: tms(0, 10 + m), close: 200 + m }))

/**
 * The scenario, given a way to open the storage, the crash args and a listing of the keys under
 * the partition.
 */
async function crashScenario(
  open: () => DataStorage,
  crashArgs: (dataset: string) => CrashArgs,
  listPartition: (dataset: string) => Promise<string[]>,
): Promise<void> {
  const dataset = uniqueDataset('crash')
  const seed = open()
  try {
    await seed.write(dataset, seedRows)
  } finally {
    await seed.close()
  }
  const committedFiles = (await listPartition(dataset)).filter((k) => /\/part-[^/]+\.parquet$/.test(k))
  expect(committedFiles).toHaveLength(1)

  const result = await runCrashWriter(crashArgs(dataset))
  expect(result.signal, result.err).toBe('SIGKILL')
  expect(result.out).not.toContain('committed')

  const storage = open()
  try {
    // the child's data file is there, unreferenced
    const parts = (await listPartition(dataset)).filter((k) => /\/part-[^/]+\.parquet$/.test(k))
    const manifest = await storage.getManifest(dataset, PARTITION)
    expect(manifest).not.toBeNull()
    expect(manifest!.version).toBe(1)
    const live = new Set(manifest!.files.map((f) => `${dataset}/${PARTITION}/${f.name}`))
    const orphans = parts.filter((k) => !live.has(k))
    expect(orphans).toHaveLength(1)
    const orphan = orphans[0]
    expect(orphan.startsWith(`${dataset}/${PARTITION}/part-`)).toBe(true)

    // readers see exactly the committed rows
    const expected = seedRows.map((r) => ({ ...r, timestamp: r.timestamp * 1000 }))
    expect(rowsOf(await storage.read(dataset))).toEqual(expected)
    expect((await storage.describe(dataset))?.rows).toBe(5)
    expect((await storage.verify(dataset)).ok).toBe(true)

    // within the grace period gc keeps it
    const young = await storage.gc({ graceMs: 3_600_000 })
    expect(young.filesDeleted).toBe(0)
    expect(young.keys).toEqual([])
    expect(await listPartition(dataset)).toContain(orphan)

    // a dry run names it and keeps it
    const dry = await storage.gc({ graceMs: 0, dryRun: true, dataset })
    expect(dry.keys).toEqual([orphan])
    expect(await listPartition(dataset)).toContain(orphan)

    // past the grace period gc deletes exactly that file
    const old = await storage.gc({ graceMs: 0, dataset })
    expect(old.keys).toEqual([orphan])
    expect(old.filesDeleted).toBe(1)
    expect(old.bytesDeleted).toBeGreaterThan(0)
    const after = await listPartition(dataset)
    expect(after).not.toContain(orphan)
    for (const k of live) expect(after).toContain(k)

    expect(rowsOf(await storage.read(dataset))).toEqual(expected)
    expect((await storage.verify(dataset)).ok).toBe(true)
    // the partition still accepts writes
    await storage.write(dataset, crashRows)
    expect((await storage.read(dataset)).length).toBe(10)
  } finally {
    await storage.close()
  }
}

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('crash between data file and commit', () => {
  it('local_parquet: the orphan is invisible to readers and collected only after the grace period', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-crash-'))
    dirs.push(dir)
    await crashScenario(
      () =>
        createStorage(
          { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir, partition_by: ['symbol', 'date'] } } },
          {},
        ),
      (dataset) => ({ dataset, rows: crashRows, local: { baseDir: dir } }),
      async (dataset) => {
        const entries = await readdir(join(dir, dataset, PARTITION)).catch(() => [] as string[])
        return entries.map((e) => `${dataset}/${PARTITION}/${e}`).sort()
      },
    )
  })
})

const s3 = await requireS3OrSkip()

describe.skipIf(!s3)('crash between data file and commit on S3', () => {
  const bucket = `friday-crash-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
  const client = s3 ? s3TestClient(s3) : undefined

  afterAll(async () => {
    const store = createS3Store({ bucket, client: client! })
    try {
      const { objects } = await store.list('')
      await store.delete(objects.map((o) => o.key))
      await client!.send(new DeleteBucketCommand({ Bucket: bucket }))
    } catch {
      // never created
    } finally {
      await store.close()
      client!.destroy()
    }
  })

  it('s3_parquet: the orphan is invisible to readers and collected only after the grace period', async () => {
    const cfg = s3!
    const store = createS3Store({ bucket, client: client! })
    try {
      await crashScenario(
        () =>
          createStorage(
            {
              storage: {
                default_backend: 's3_parquet',
                s3_parquet: {
                  ...s3ParquetSection(cfg, bucket),
                  partition_by: ['symbol', 'date'],
                },
              },
            },
            {},
          ),
        (dataset) => ({ dataset, rows: crashRows, s3: { bucket, ...cfg } }),
        async (dataset) => (await store.list(`${dataset}/${PARTITION}/`)).objects.map((o) => o.key),
      )
    } finally {
      await store.close()
    }
  })
})
