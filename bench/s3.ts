/**
 * The S3 part of the benchmark, against the local radosgw (test/helpers/s3.ts): writing the
 * bars to a fresh bucket, then cold reads (a fresh storage instance per run, so nothing is
 * cached) of one symbol-day and of one symbol's whole range, with latency and requests by kind.
 */

import { DeleteBucketCommand } from '@aws-sdk/client-s3'
import type { DataStorage, StoreRequestStats } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { createS3Store } from '../src/stores/s3-store.js'
import { type S3TestConfig, s3ParquetSection, s3TestClient, s3TestConfig } from '../test/helpers/s3.js'
import type { Bars } from './data.js'
import { median, timeRuns } from './report.js'

export interface RequestCounts {
  get: number
  put: number
  head: number
  list: number
  delete: number
  total: number
  bytesRead: number
  bytesWritten: number
}

export interface S3ReadFigures {
  rows: number
  /** Median latency, fresh storage instance per run. */
  coldMs: number
  coldRuns: number[]
  /** Requests of one cold read (identical on every run, else the maximum). */
  requests: RequestCounts
  /** Median latency of the same read repeated on an instance that already read once. */
  warmMs: number
  warmRequests: RequestCounts
}

export type S3Results =
  | { skipped: true; reason: string }
  | {
      skipped: false
      endpoint: string
      bucket: string
      write: { ms: number; rows: number; partitions: number; requests: RequestCounts }
      symbolDay: S3ReadFigures & { symbol: string; day: string }
      symbolAll: S3ReadFigures & { symbol: string; days: number }
      cleanupMs: number
    }

const DAY_MS = 86_400_000
const DATASET = 'bars_1m'

function delta(after: StoreRequestStats, before: StoreRequestStats): RequestCounts {
  const d = {
    get: after.get - before.get,
    put: after.put - before.put,
    head: after.head - before.head,
    list: after.list - before.list,
    delete: after.delete - before.delete,
    bytesRead: after.bytesRead - before.bytesRead,
    bytesWritten: after.bytesWritten - before.bytesWritten,
  }
  return { ...d, total: d.get + d.put + d.head + d.list + d.delete }
}

function storageFor(cfg: S3TestConfig, bucket: string): DataStorage {
  return createStorage(
    {
      storage: {
        default_backend: 's3_parquet',
        s3_parquet: s3ParquetSection(cfg, bucket),
      },
    },
    {},
  )
}

async function measureRead(
  cfg: S3TestConfig,
  bucket: string,
  label: string,
  runs: number,
  options: { symbols: string[]; start: number; end: number },
  expectRows: number,
): Promise<S3ReadFigures> {
  let requests: RequestCounts | null = null
  const check = (rows: number) => {
    if (rows !== expectRows) throw new Error(`${label}: read ${rows} rows, expected ${expectRows}`)
  }
  const cold = await timeRuns(
    runs,
    `s3 ${label} (cold)`,
    () => ({ s: storageFor(cfg, bucket) }),
    async ({ s }) => {
      const before = s.requestStats()
      const t = await s.read(DATASET, options)
      return { rows: t.length, req: delta(s.requestStats(), before) }
    },
    async ({ rows, req }, { s }) => {
      check(rows)
      if (!requests || req.total > requests.total) requests = req
      await s.close()
    },
  )
  // warm: the same instance reads again (its dataset descriptor is cached for a few seconds)
  const s = storageFor(cfg, bucket)
  check((await s.read(DATASET, options)).length)
  const warmRuns: number[] = []
  let warmRequests = delta(s.requestStats(), s.requestStats())
  for (let i = 0; i < runs; i++) {
    const before = s.requestStats()
    const t0 = performance.now()
    const t = await s.read(DATASET, options)
    warmRuns.push(performance.now() - t0)
    check(t.length)
    warmRequests = delta(s.requestStats(), before)
  }
  await s.close()
  return {
    rows: expectRows,
    coldMs: cold.medianMs,
    coldRuns: cold.runs,
    requests: requests as unknown as RequestCounts,
    warmMs: median(warmRuns),
    warmRequests,
  }
}

export async function runS3(bars: Bars, opts: { dayRuns: number; allRuns: number; keepBucket: boolean }): Promise<S3Results> {
  const cfg = await s3TestConfig()
  if (!cfg) {
    return {
      skipped: true,
      reason: 'no S3 endpoint reachable (start it with: bash /work/shared/tools/s3-server/start-rgw.sh)',
    }
  }
  const bucket = `friday-bench-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 6)}`
  try {
    const w = storageFor(cfg, bucket)
    const before = w.requestStats()
    const t0 = performance.now()
    const res = await w.write(DATASET, bars.columns)
    const writeMs = performance.now() - t0
    const writeReq = delta(w.requestStats(), before)
    await w.close()
    if (res.rowsWritten !== bars.rows) throw new Error(`s3 write: ${res.rowsWritten} rows written, expected ${bars.rows}`)
    console.log(`  s3 write: ${(writeMs / 1000).toFixed(1)} s, ${writeReq.total} requests`)

    const symbol = bars.symbols[0]
    const d = Math.floor(bars.days.length / 2)
    const day = bars.days[d]
    const symbolDay = await measureRead(
      cfg,
      bucket,
      'symbol-day',
      opts.dayRuns,
      { symbols: [symbol], start: bars.dayStartMs[d], end: bars.dayStartMs[d] + DAY_MS },
      bars.spec.barsPerDay,
    )
    const symbolAll = await measureRead(
      cfg,
      bucket,
      'symbol-all-days',
      opts.allRuns,
      { symbols: [symbol], start: bars.dayStartMs[0], end: bars.dayStartMs[bars.days.length - 1] + DAY_MS },
      bars.spec.barsPerDay * bars.days.length,
    )
    const c0 = performance.now()
    if (!opts.keepBucket) await dropBucket(cfg, bucket)
    return {
      skipped: false,
      endpoint: cfg.endpoint,
      bucket,
      write: { ms: writeMs, rows: res.rowsWritten, partitions: res.partitions.length, requests: writeReq },
      symbolDay: { ...symbolDay, symbol, day },
      symbolAll: { ...symbolAll, symbol, days: bars.days.length },
      cleanupMs: performance.now() - c0,
    }
  } catch (err) {
    if (!opts.keepBucket) await dropBucket(cfg, bucket).catch(() => undefined)
    throw err
  }
}

/** Empties and removes the benchmark bucket. */
async function dropBucket(cfg: S3TestConfig, bucket: string): Promise<void> {
  const client = s3TestClient(cfg)
  const store = createS3Store({ bucket, client, createBucket: false })
  try {
    const { objects } = await store.list('')
    await store.delete(objects.map((o) => o.key))
    await client.send(new DeleteBucketCommand({ Bucket: bucket }))
  } finally {
    await store.close()
    client.destroy()
  }
}
