/**
 * The storage conformance suite on the S3 Parquet lake against a real S3 server (radosgw), plus
 * request-count checks: object storage bills per request, so a read must not LIST its way around.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DataStorage, StoreRequestStats } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { createS3Store } from '../src/stores/s3-store.js'
import { bars, expectedBars, midnight, rowsOf, testStorage, uniqueDataset } from './conformance/storage.case.js'
import { deleteTestBucket, requireS3OrSkip, type S3TestConfig, s3ParquetSection, s3TestClient } from './helpers/s3.js'

const s3 = await requireS3OrSkip()
const bucket = `friday-lake-s3-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`

/** `readCache: false` measures the lake's own requests (the read cache's are tested in read-cache.test.ts). */
function s3Storage(config: S3TestConfig, partitionBy: string[] = ['symbol', 'date'], readCache = true): DataStorage {
  return createStorage(
    {
      storage: {
        default_backend: 's3_parquet',
        read_cache: { enabled: readCache },
        s3_parquet: {
          ...s3ParquetSection(config, bucket),
          partition_by: partitionBy,
        },
      },
    },
    {},
  )
}

afterAll(async () => {
  if (s3) await deleteTestBucket(s3, bucket)
})

testStorage({
  name: 's3_parquet partition_by=[symbol,date]',
  create: async () => s3Storage(s3!),
  skip: s3 ? false : 'no S3 endpoint reachable',
})

function delta(after: StoreRequestStats, before: StoreRequestStats): StoreRequestStats {
  return {
    get: after.get - before.get,
    put: after.put - before.put,
    head: after.head - before.head,
    list: after.list - before.list,
    delete: after.delete - before.delete,
    bytesRead: after.bytesRead - before.bytesRead,
    bytesWritten: after.bytesWritten - before.bytesWritten,
  }
}

describe.skipIf(!s3)('s3_parquet request counts and layout', () => {
  const DAYS = [0, 1, 2, 3, 4]
  const rows = bars(['AAPL', 'MSFT', 'EUR/USD'], DAYS, 20)
  const ds = uniqueDataset('reqs')

  beforeAll(async () => {
    const writer = s3Storage(s3!)
    try {
      await writer.write(ds, rows)
    } finally {
      await writer.close()
    }
  })

  it('stores hive-style keys with part-<ULID>.parquet files and partition manifests', async () => {
    const store = createS3Store({ bucket, client: s3TestClient(s3!) })
    try {
      const { objects } = await store.list(`${ds}/`)
      const parquet = objects.map((o) => o.key).filter((k) => k.endsWith('.parquet'))
      expect(parquet.length).toBeGreaterThanOrEqual(15)
      for (const k of parquet)
        expect(k).toMatch(new RegExp(`^${ds}/symbol=[^/=]+/date=\\d{4}-\\d{2}-\\d{2}/part-[0-9A-HJKMNP-TV-Z]{26}\\.parquet$`))
      expect(parquet.some((k) => k.includes('/symbol=EUR%2FUSD/'))).toBe(true)
      // the dataset directory holds only the data; the manifests are under _friday/<dataset>/
      expect(objects.map((o) => o.key)).toEqual(parquet)
      const meta = await store.list(`_friday/${ds}/`)
      expect(meta.objects.some((o) => o.key === `_friday/${ds}/symbol=AAPL/date=2024-01-04/_manifest.json`)).toBe(true)
    } finally {
      await store.close()
    }
  })

  it('reading one partition (fresh storage) makes no LIST and at most 3 GETs', async () => {
    const storage = s3Storage(s3!, undefined, false)
    try {
      const before = storage.requestStats()
      const t = await storage.read(ds, { symbols: ['AAPL'], start: midnight(2), end: midnight(3) })
      const d = delta(storage.requestStats(), before)
      expect(rowsOf(t)).toEqual(
        expectedBars(
          rows.filter(
            (r) => r.symbol === 'AAPL' && (r.timestamp as number) >= midnight(2) && (r.timestamp as number) < midnight(3),
          ),
        ),
      )
      expect(d.list, JSON.stringify(d)).toBe(0)
      expect(d.get, JSON.stringify(d)).toBeLessThanOrEqual(3)
      expect(d.put + d.delete, JSON.stringify(d)).toBe(0)

      // and again on the now-warm storage: still no LIST
      const before2 = storage.requestStats()
      await storage.read(ds, { symbols: ['EUR/USD'], start: midnight(1), end: midnight(2) })
      const d2 = delta(storage.requestStats(), before2)
      expect(d2.list, JSON.stringify(d2)).toBe(0)
      expect(d2.get, JSON.stringify(d2)).toBeLessThanOrEqual(3)
    } finally {
      await storage.close()
    }
  })

  it('reading one symbol over 5 days makes at most 1 LIST', async () => {
    for (const range of [{}, { start: midnight(0), end: midnight(5) }]) {
      const storage = s3Storage(s3!, undefined, false)
      try {
        const before = storage.requestStats()
        const t = await storage.read(ds, { symbols: ['EUR/USD'], ...range })
        const d = delta(storage.requestStats(), before)
        expect(rowsOf(t)).toEqual(expectedBars(rows.filter((r) => r.symbol === 'EUR/USD')))
        expect(d.list, JSON.stringify(d)).toBeLessThanOrEqual(1)
        expect(d.put + d.delete, JSON.stringify(d)).toBe(0)
      } finally {
        await storage.close()
      }
    }
  })
})
