import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { createLakeStorage } from '../src/lake/lake-storage.js'
import type { ObjectStore } from '../src/stores/types.js'
import { createTestBucketStore, requireS3OrSkip } from './helpers/s3.js'

/** One big partition (symbol-only partitioning, 200k rows, several MiB): reads must use ranges. */
function bigColumns(n: number): { symbol: string[]; timestamp: Float64Array; close: Float64Array } {
  const t0 = Date.UTC(2024, 0, 2)
  const symbol = new Array<string>(n).fill('AAPL')
  const timestamp = new Float64Array(n)
  const cols: Record<string, Float64Array> = {}
  for (const c of ['open', 'high', 'low', 'close', 'volume', 'vwap', 'trades']) cols[c] = new Float64Array(n)
  let seed = 7
  for (let i = 0; i < n; i++) {
    timestamp[i] = t0 + i * 1000
    for (const c in cols) {
      seed = (seed * 1664525 + 1013904223) >>> 0
      cols[c][i] = seed / 2 ** 20
    }
  }
  return { symbol, timestamp, close: cols.close, ...cols }
}

async function checkRangedRead(store: ObjectStore) {
  const lake = createLakeStorage({ backend: 'test', store, partitionBy: ['symbol'] })
  const data = bigColumns(200_000)
  await lake.write('big', data)
  const m = await lake.getManifest('big', { symbol: 'AAPL' })
  expect(m?.files.length).toBe(1)
  const fileBytes = m!.files[0].bytes
  expect(fileBytes).toBeGreaterThan(2 * 1024 * 1024)

  const before = lake.requestStats()
  const t = await lake.read('big', { columns: ['close'] })
  const after = lake.requestStats()
  expect(t.length).toBe(200_000)
  expect(Object.keys(t.columns).sort()).toEqual(['close', 'symbol', 'timestamp'])
  expect(Array.from((t.columns.close.values as Float64Array).subarray(0, 5))).toEqual(Array.from(data.close.subarray(0, 5)))
  // three of nine columns: well under half of the file crosses the wire
  const read = after.bytesRead - before.bytesRead
  expect(read).toBeLessThan(fileBytes * 0.5)
  expect(after.get - before.get).toBeGreaterThan(1)

  // a narrow time range reads only the row groups that can hold it
  const b2 = lake.requestStats()
  const narrow = await lake.read('big', { start: Date.UTC(2024, 0, 2) + 5_000, end: Date.UTC(2024, 0, 2) + 15_000 })
  expect(narrow.length).toBe(10)
  expect(lake.requestStats().bytesRead - b2.bytesRead).toBeLessThan(fileBytes)
  return lake
}

describe('large files are read by ranges (only requested columns and row groups)', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('local disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'friday-ranged-'))
    dirs.push(dir)
    await (await checkRangedRead(createLocalFsStore({ baseDir: dir }))).close()
  })

  it('S3 (radosgw)', async (ctx) => {
    const s3 = await requireS3OrSkip()
    if (!s3) return ctx.skip()
    const { store, cleanup } = await createTestBucketStore('ranged')
    try {
      await checkRangedRead(store)
    } finally {
      await cleanup()
    }
  })
})
