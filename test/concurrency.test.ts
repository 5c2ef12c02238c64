/**
 * Many writer PROCESSES upserting overlapping batches into shared partitions, on the local lake
 * and on S3. Afterwards every key is stored exactly once and holds a value that a linearizable
 * register could hold: one whose write no other write of that key strictly followed.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createStorage } from '../src/node.js'
import { keyOf, rowsOf, uniqueDataset } from './conformance/storage.case.js'
import { type BatchLog, keyAt, type WriterArgs, type WriterLog } from './fixtures/concurrent-writer.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection } from './helpers/s3.js'

const WRITERS = 8
const BATCHES = 20
const SPACE = { symbols: ['AAPL', 'EUR/USD', 'BRK.B'], days: ['2024-01-02', '2024-01-03'], minutesPerDay: 20 } // 120 keys, 6 partitions
const BATCH_ROWS = 50

function runWriter(args: WriterArgs): Promise<WriterLog> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/concurrent-writer.ts', JSON.stringify(args)], {
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
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`writer ${args.writerId} exited ${code ?? signal}: ${err}`))
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as WriterLog)
      } catch (e) {
        reject(new Error(`writer ${args.writerId} printed no log: ${out} ${err} (${e})`))
      }
    })
  })
}

interface Write extends BatchLog {
  writerId: number
}

/** Runs the writers against `config` and checks the stored result. */
async function hammer(config: unknown, batches = BATCHES): Promise<void> {
  const dataset = uniqueDataset('hammer')
  const startAt = Date.now() + 5000 // after every child has loaded, on a loaded machine too
  const logs = await Promise.all(
    Array.from({ length: WRITERS }, (_, i) =>
      runWriter({ config, dataset, writerId: i + 1, batches, batchRows: BATCH_ROWS, ...SPACE, startAt }),
    ),
  )

  const writes: Write[] = logs.flatMap((l) => l.batches.map((b) => ({ ...b, writerId: l.writerId })))
  expect(writes).toHaveLength(WRITERS * batches)
  expect(writes.filter((w) => w.error).map((w) => `writer ${w.writerId} batch ${w.batchNo}: ${w.error}`)).toEqual([])
  // the writers really overlapped in time (else this test proves little)
  const overlapping = writes.filter((a) => writes.some((b) => b.writerId !== a.writerId && b.start <= a.end && a.start <= b.end))
  expect(overlapping.length).toBeGreaterThan(writes.length / 2)

  // writes of every key
  const byKey = new Map<string, Write[]>()
  for (const w of writes)
    for (const k of w.keys) {
      const { symbol, ms } = keyAt(SPACE, k)
      const key = `${symbol}\u0001${ms * 1000}`
      if (!byKey.has(key)) byKey.set(key, [])
      byKey.get(key)!.push(w)
    }

  const storage = createStorage(config, {})
  try {
    const table = await storage.read(dataset)
    const rows = rowsOf(table)
    expect(new Set(rows.map(keyOf)).size).toBe(rows.length) // no duplicate keys
    expect(rows.length).toBe(byKey.size) // row count == distinct keys written
    expect((await storage.describe(dataset))?.rows).toBe(byKey.size)

    const violations: string[] = []
    for (const row of rows) {
      const key = keyOf(row)
      const candidates = byKey.get(key)
      if (!candidates) {
        violations.push(`${key}: never written`)
        continue
      }
      const value = row.value as number
      const writerId = Math.floor(value / 1000)
      const batchNo = value % 1000
      const source = candidates.find((w) => w.writerId === writerId && w.batchNo === batchNo)
      if (!source) {
        violations.push(`${key}: value ${value} comes from no write of this key`)
        continue
      }
      // the same writer wrote the key again later: its own later batch must win
      const ownLater = candidates.find((w) => w.writerId === writerId && w.batchNo > batchNo)
      if (ownLater)
        violations.push(`${key}: shows writer ${writerId} batch ${batchNo}, but its batch ${ownLater.batchNo} wrote it later`)
      // register linearizability: no write of this key started after the source write ended
      const later = candidates.find((w) => w.start > source.end)
      if (later)
        violations.push(
          `${key}: shows ${writerId}/${batchNo} [${source.start},${source.end}] superseded by ${later.writerId}/${later.batchNo} [${later.start},${later.end}]`,
        )
    }
    expect(violations).toEqual([])
    expect((await storage.verify(dataset)).ok).toBe(true)
  } finally {
    await storage.close()
  }
}

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('multi-process concurrent upserts', () => {
  it(`local_parquet: ${WRITERS} processes x ${BATCHES} overlapping batches keep every key once and linearizable`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-conc-'))
    dirs.push(dir)
    await hammer({
      storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir, partition_by: ['symbol', 'date'] } },
    })
  }, 300_000)
})

const s3 = await requireS3OrSkip()
/** Fewer batches on S3: each commit there is a few round trips, and the contention is the same. */
const S3_BATCHES = 10

describe.skipIf(!s3)('multi-process concurrent upserts on S3', () => {
  const bucket = `friday-conc-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`

  afterAll(async () => {
    await deleteTestBucket(s3!, bucket)
  })

  it(`s3_parquet: ${WRITERS} processes x ${S3_BATCHES} overlapping batches keep every key once and linearizable`, async () => {
    await hammer(
      {
        storage: {
          default_backend: 's3_parquet',
          s3_parquet: {
            ...s3ParquetSection(s3!, bucket),
            partition_by: ['symbol', 'date'],
          },
        },
      },
      S3_BATCHES,
    )
  }, 300_000)
})
