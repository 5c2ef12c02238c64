/**
 * A maintenance run SIGKILLed at each point of a compaction (see `fixtures/crash-maintainer.ts`),
 * on the local lake and on S3: the partition stays readable with exactly its rows, and the next
 * run (same job owner, so it need not wait for the lease) finishes the job: one live file, every
 * replaced file archived once, no journal left, and nothing but live files in the partition.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { DEFAULT_ROTATION } from '../src/core/rotation-policy.js'
import { createLakeStorage } from '../src/lake/lake-storage.js'
import { createS3Store } from '../src/stores/s3-store.js'
import type { ObjectStore } from '../src/stores/types.js'
import { rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import type { CrashPoint, MaintCrashArgs } from './fixtures/crash-maintainer.js'
import { deleteTestBucket, requireS3OrSkip, s3TestClient } from './helpers/s3.js'

const P = 'symbol=AAPL/date=2024-01-02'

/** How long a child may run before the test kills it and fails (under vitest's 60 s test timeout). */
const CHILD_DEADLINE_MS = 45_000

function runChild(args: MaintCrashArgs): Promise<{ signal: NodeJS.Signals | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/crash-maintainer.ts', JSON.stringify(args)], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    // a child that never reaches its crash point must not hang the suite (nor outlive it)
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`crash maintainer still running after ${CHILD_DEADLINE_MS} ms:\n${out}${err}`))
    }, CHILD_DEADLINE_MS)
    child.on('error', reject)
    child.on('close', (_code, signal) => {
      clearTimeout(timer)
      resolve({ signal, out, err })
    })
  })
}

async function scenario(point: CrashPoint, store: () => ObjectStore, child: (dataset: string) => MaintCrashArgs): Promise<void> {
  const dataset = uniqueDataset(`mcrash-${point}`)
  const open = () =>
    createLakeStorage({
      backend: 'lake',
      store: store(),
      rotation: { ...DEFAULT_ROTATION, enabled: true, strategy: 'count_based', maxFiles: 2 },
    })
  const seed = open()
  for (let i = 0; i < 4; i++)
    await seed.write(
      dataset,
      [0, 1].map((k) => ({ symbol: 'AAPL', timestamp: tms(0, i * 10 + k), close: i * 10 + k })),
    )
  const expected = rowsOf(await seed.read(dataset))
  const originals = (await seed.getManifest(dataset, P))!.files.map((f) => f.name).sort()
  expect(originals).toHaveLength(4)
  await seed.close()

  const result = await runChild(child(dataset))
  expect(result.signal, result.err).toBe('SIGKILL')
  expect(result.out).not.toContain('finished')

  const s = open()
  try {
    // readable, exactly the rows
    expect(rowsOf(await s.read(dataset))).toEqual(expected)
    expect((await s.verify(dataset)).ok).toBe(true)
    const journals = (await s.store.list(`_friday/${dataset}/_maintenance/journal/`)).objects
    if (point !== 'journal') expect(journals).toHaveLength(1)

    // a second run by another owner waits for the lease
    const other = await s.maintain({ dataset })
    expect(other.datasets[0].skipped).toMatch(/lease held by crash-job/)

    // the same job resumes at once
    const r = await s.maintain({ dataset, owner: 'crash-job' })
    expect(r.datasets[0].errors).toEqual([])
    const committedBeforeCrash = point === 'archive' || point === 'archive-manifest' || point === 'delete'
    expect(r.datasets[0].resumed).toBe(committedBeforeCrash ? 1 : 0)
    expect(r.totals.partitionsCompacted).toBe(committedBeforeCrash ? 0 : 1)
    expect(rowsOf(await s.read(dataset))).toEqual(expected)
    const m = (await s.getManifest(dataset, P))!
    expect(m.files).toHaveLength(1)
    expect((await s.listArchives(dataset)).map((e) => e.originalName).sort()).toEqual(originals)
    expect((await s.store.list(`_friday/${dataset}/_maintenance/journal/`)).objects).toEqual([])
    await s.gc({ graceMs: 0, dataset })
    const inPartition = (await s.store.list(`${dataset}/${P}/`)).objects.map((o) => o.key).filter((k) => k.endsWith('.parquet'))
    expect(inPartition).toEqual([`${dataset}/${P}/${m.files[0].name}`])
    expect((await s.verify(dataset)).ok).toBe(true)
    // and a run after that has nothing to do
    const again = await s.maintain({ dataset })
    expect(again.totals).toMatchObject({ partitionsCompacted: 0, archivesWritten: 0 })
  } finally {
    await s.close()
  }
}

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const POINTS: CrashPoint[] = ['journal', 'commit', 'archive', 'archive-manifest', 'delete']

describe('maintenance killed mid-rotation (local_parquet)', () => {
  for (const point of POINTS) {
    it(`killed at '${point}': the partition stays readable and the next run finishes the job`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'friday-mcrash-'))
      dirs.push(dir)
      await scenario(
        point,
        () => createLocalFsStore({ baseDir: dir }),
        (dataset) => ({ dataset, point, local: { baseDir: dir } }),
      )
    }, 60_000)
  }
})

const s3 = await requireS3OrSkip()

describe.skipIf(!s3)('maintenance killed mid-rotation (s3_parquet)', () => {
  const bucket = `friday-mcrash-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
  afterAll(async () => {
    await deleteTestBucket(s3!, bucket)
  })
  for (const point of ['commit', 'archive', 'delete'] as CrashPoint[]) {
    it(`killed at '${point}': the partition stays readable and the next run finishes the job`, async () => {
      await scenario(
        point,
        () => createS3Store({ bucket, client: s3TestClient(s3!), createBucket: true }),
        (dataset) => ({ dataset, point, s3: { bucket, ...s3! } }),
      )
    }, 60_000)
  }
})
