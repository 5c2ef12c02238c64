/**
 * Writer PROCESSES upserting into shared partitions while this process compacts them over and
 * over, on the local lake and on S3 (radosgw): afterwards every key written is stored exactly
 * once with a value no later write of that key superseded, compactions really happened meanwhile,
 * and the archive holds every file they replaced.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { DataStorage } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { keyOf, rowsOf, uniqueDataset } from './conformance/storage.case.js'
import { type BatchLog, keyAt, type WriterArgs, type WriterLog } from './fixtures/concurrent-writer.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection } from './helpers/s3.js'

const WRITERS = 4
const BATCHES = 25
const SPACE = { symbols: ['AAPL', 'EUR/USD'], days: ['2024-01-02', '2024-01-03'], minutesPerDay: 200 } // 800 keys, 4 partitions
const BATCH_ROWS = 3

function runWriter(args: WriterArgs): Promise<WriterLog> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/concurrent-writer.ts', JSON.stringify(args)], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`writer ${args.writerId} exited ${code}: ${err}`))
      resolve(JSON.parse(out.trim().split('\n').pop()!) as WriterLog)
    })
  })
}

async function compactWhileWriting(config: Record<string, unknown>): Promise<void> {
  const dataset = uniqueDataset('maint-conc')
  const storage: DataStorage = createStorage(config, {})
  try {
    // a first file per partition, so the dataset exists before the writers start
    await storage.write(
      dataset,
      SPACE.symbols.flatMap((symbol) => SPACE.days.map((d) => ({ symbol, timestamp: `${d}T00:00:00Z`, value: 0 }))),
    )
    const startAt = Date.now() + 2500
    const writers = Promise.all(
      Array.from({ length: WRITERS }, (_, i) =>
        runWriter({ config, dataset, writerId: i + 1, batches: BATCHES, batchRows: BATCH_ROWS, ...SPACE, startAt }),
      ),
    )
    let done = false
    const finished = writers.finally(() => {
      done = true
    })
    let compactions = 0
    let merged = 0
    let runs = 0
    while (!done) {
      const r = await storage.maintain!({ dataset })
      runs++
      compactions += r.totals.partitionsCompacted
      merged += r.totals.filesMerged
      expect(r.datasets[0].errors).toEqual([])
      await new Promise((res) => setTimeout(res, 20))
    }
    const logs = await finished
    console.log(`  ${runs} maintenance runs compacted ${compactions} partitions (${merged} files) while writers ran`)
    expect(compactions).toBeGreaterThan(0)

    const writes = logs.flatMap((l) => l.batches.map((b) => ({ ...b, writerId: l.writerId })))
    expect(writes.filter((w) => w.error).map((w) => w.error)).toEqual([])
    const byKey = new Map<string, (BatchLog & { writerId: number })[]>()
    for (const w of writes)
      for (const k of w.keys) {
        const { symbol, ms } = keyAt(SPACE, k)
        const key = `${symbol}\u0001${ms * 1000}`
        if (!byKey.has(key)) byKey.set(key, [])
        byKey.get(key)!.push(w)
      }
    const rows = rowsOf(await storage.read(dataset)).filter((r) => r.value !== 0)
    expect(new Set(rows.map(keyOf)).size).toBe(rows.length)
    expect(rows.length).toBe(byKey.size)
    const violations: string[] = []
    for (const row of rows) {
      const candidates = byKey.get(keyOf(row))!
      const value = row.value as number
      const source = candidates.find((w) => w.writerId === Math.floor(value / 1000) && w.batchNo === value % 1000)
      if (!source) violations.push(`${keyOf(row)}: value ${value} from no write of it`)
      else if (candidates.some((w) => w.start > source.end)) violations.push(`${keyOf(row)}: ${value} was superseded`)
    }
    expect(violations).toEqual([])
    // settle: one more run compacts what is left; every replaced file is in the archive
    await storage.maintain!({ dataset })
    expect((await storage.verify(dataset)).ok).toBe(true)
    const archived = await storage.listArchives!(dataset)
    expect(archived.length).toBeGreaterThanOrEqual(merged)
    for (const p of await storage.listPartitions(dataset)) expect(p.files).toBeLessThanOrEqual(2)
  } finally {
    await storage.close()
  }
}

const rotation = { enabled: true, strategy: 'count_based', max_files: 2 }

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('compaction during multi-process writes', () => {
  it(`local_parquet: ${WRITERS} writer processes, compaction in a loop: no row lost or duplicated`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-maint-conc-'))
    dirs.push(dir)
    await compactWhileWriting({
      storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir }, file_rotation: rotation },
    })
  }, 180_000)
})

const s3 = await requireS3OrSkip()

describe.skipIf(!s3)('compaction during multi-process writes on S3', () => {
  const bucket = `friday-mconc-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
  afterAll(async () => {
    await deleteTestBucket(s3!, bucket)
  })

  it(`s3_parquet: ${WRITERS} writer processes, compaction in a loop: no row lost or duplicated`, async () => {
    await compactWhileWriting({
      storage: {
        default_backend: 's3_parquet',
        s3_parquet: s3ParquetSection(s3!, bucket),
        file_rotation: rotation,
      },
    })
  }, 240_000)
})
