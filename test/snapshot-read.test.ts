/**
 * The read cache's miss path reads the manifests its listing loaded (`storage.snapshot`), never
 * loading them again: a cold cached symbol-day read on S3 (radosgw) costs the dataset document,
 * the partition manifest and the data file, a warm one only the listing. And under concurrency:
 * a commit between the listing and the read leaves the answer (and the cache tag) at the listed
 * version; a compaction that removes the listed files meanwhile still gives complete rows.
 */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { withReadCache } from '../src/cache/index.js'
import { overlay } from '../src/core/overlay.js'
import type { PartitionKey } from '../src/core/partitioning.js'
import { DEFAULT_ROTATION } from '../src/core/rotation-policy.js'
import type { DataStorage, InputRow, StoreRequestStats } from '../src/core/types.js'
import { createLakeStorage } from '../src/lake/lake-storage.js'
import { createStorage } from '../src/node.js'
import { createS3Store } from '../src/stores/s3-store.js'
import type { ObjectStore } from '../src/stores/types.js'
import { bars, expectedBars, midnight, rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import { faultyStore, isDataKey, isManifestKey } from './helpers/faulty-store.js'
import { deleteTestBucket, requireS3OrSkip, type S3TestConfig, s3ParquetSection, s3TestClient } from './helpers/s3.js'

const s3 = await requireS3OrSkip()
const bucket = `friday-snapshot-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
const dirs: string[] = []

afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  if (s3) await deleteTestBucket(s3, bucket)
})

/** The storage the configuration gives by default (read cache on), on the test bucket. */
function s3Storage(config: S3TestConfig): DataStorage {
  return createStorage(
    {
      storage: {
        default_backend: 's3_parquet',
        metadata_logging: { enabled: false },
        s3_parquet: s3ParquetSection(config, bucket),
      },
    },
    {},
  )
}

function delta(after: StoreRequestStats, before: StoreRequestStats) {
  return {
    get: after.get - before.get,
    head: after.head - before.head,
    list: after.list - before.list,
    put: after.put - before.put,
    delete: after.delete - before.delete,
  }
}

const isDatasetDoc = (key: string) => /\/_dataset\.json$/.test(key)

describe.skipIf(!s3)('cold cached symbol-day read on S3', () => {
  const ds = uniqueDataset('snap_s3')
  const rows = bars(['AAPL', 'MSFT'], [0, 1, 2], 30)
  const day = { symbols: ['AAPL'], start: midnight(1), end: midnight(2) }
  const dayRows = () =>
    expectedBars(
      rows.filter((r) => r.symbol === 'AAPL' && (r.timestamp as number) >= day.start && (r.timestamp as number) < day.end),
    )

  it('costs 3 GETs (dataset document, manifest, data file) and no other request; a warm hit only the listing', async () => {
    const writer = s3Storage(s3!)
    await writer.write(ds, rows)
    await writer.close()

    // the default configuration: read cache on
    const storage = s3Storage(s3!)
    try {
      expect(storage.readCache).toBeDefined()
      const before = storage.requestStats()
      const t = await storage.read(ds, day)
      const cold = delta(storage.requestStats(), before)
      expect(rowsOf(t)).toEqual(dayRows())
      expect(cold, JSON.stringify(cold)).toEqual({ get: 3, head: 0, list: 0, put: 0, delete: 0 })
      expect(storage.readCache!.stats()).toMatchObject({ misses: 1, hits: 0 })
    } finally {
      await storage.close()
    }

    // which GETs: the same read through a recording store
    const recorder = faultyStore(createS3Store({ bucket, client: s3TestClient(s3!) }))
    const lake = withReadCache(createLakeStorage({ backend: 's3_parquet', store: recorder }), {
      ttlMs: 60_000,
      maxBytes: 1 << 26,
    })
    try {
      const t = await lake.read(ds, day)
      expect(rowsOf(t)).toEqual(dayRows())
      const gets = recorder.calls.filter((c) => c.op === 'get').map((c) => c.key)
      expect(recorder.calls.every((c) => c.op === 'get')).toBe(true)
      expect(gets.filter(isDatasetDoc), JSON.stringify(gets)).toHaveLength(1)
      expect(gets.filter(isManifestKey), JSON.stringify(gets)).toEqual([
        `_friday/${ds}/symbol=AAPL/date=2024-01-03/_manifest.json`,
      ])
      expect(gets.filter(isDataKey), JSON.stringify(gets)).toHaveLength(1)
      expect(gets).toHaveLength(3)

      // warm: a hit costs the listing (the manifest; the dataset document while its copy is older than 5 s), no data file
      recorder.calls.length = 0
      const again = await lake.read(ds, day)
      expect(rowsOf(again)).toEqual(dayRows())
      expect(lake.readCache.stats()).toMatchObject({ misses: 1, hits: 1 })
      const warm = recorder.calls.map((c) => `${c.op} ${c.key}`)
      expect(
        warm.filter((c) => !isDatasetDoc(c)),
        JSON.stringify(warm),
      ).toEqual([`get _friday/${ds}/symbol=AAPL/date=2024-01-03/_manifest.json`])
    } finally {
      await lake.close()
    }
  })
})

const KINDS: { name: string; skip: boolean; make: () => ObjectStore }[] = [
  {
    name: 'local disk (chain manifests)',
    skip: false,
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), 'friday-snapshot-'))
      dirs.push(dir)
      return createLocalFsStore({ baseDir: dir })
    },
  },
  {
    name: 'S3 on radosgw (CAS manifests)',
    skip: !s3,
    make: () => createS3Store({ bucket, client: s3TestClient(s3!), createBucket: true }),
  },
]

const CACHE = { ttlMs: 60_000, maxBytes: 1 << 26 }
const COUNT_BASED = { ...DEFAULT_ROTATION, strategy: 'count_based' as const, maxFiles: 2 }

/**
 * `storage` whose first listing (`snapshot` or `listPartitions`, whichever the read cache calls)
 * runs `between` after it listed and before it returns: the moment between a read's listing and
 * its reading of the rows.
 */
function pausedAfterListing<T extends DataStorage>(storage: T, between: () => Promise<void>): T {
  let pending: (() => Promise<void>) | null = between
  const once = async () => {
    const fn = pending
    pending = null
    await fn?.()
  }
  return overlay(storage, {
    ...(storage.snapshot
      ? {
          snapshot: async (ds: string, f: object) => {
            const snap = await storage.snapshot!(ds, f)
            await once()
            return snap
          },
        }
      : {}),
    listPartitions: async (ds: string, f: object) => {
      const listed = await storage.listPartitions(ds, f)
      await once()
      return listed
    },
  })
}

const aapl = (minute: number, close: number): InputRow => ({ symbol: 'AAPL', timestamp: tms(0, minute), close })
const msft = (minute: number, close: number): InputRow => ({ symbol: 'MSFT', timestamp: tms(0, minute), close })

for (const kind of KINDS) {
  describe.skipIf(kind.skip)(`snapshot reads under concurrency: ${kind.name}`, () => {
    it.each([[['symbol', 'date']], [['date']]] as PartitionKey[][][])(
      'a commit between the listing and the read: the rows and the cache tag are the listed version (partition_by %j)',
      async (partitionBy) => {
        const inner = kind.make()
        const ds = uniqueDataset('snap_commit')
        const storage = createLakeStorage({ backend: 'test', store: inner, partitionBy })
        const other = createLakeStorage({ backend: 'test', store: inner, partitionBy })
        const path = partitionBy[0] === 'symbol' ? 'symbol=AAPL/date=2024-01-02' : 'date=2024-01-02'
        try {
          await storage.write(ds, [aapl(0, 1), aapl(1, 2), msft(0, 3)])
          const listedBefore = await storage.listPartitions(ds, { symbols: ['AAPL'] })
          expect(listedBefore.find((p) => p.path === path)?.version).toBe(1)
          const before = await storage.read(ds, { symbols: ['AAPL'] })

          // another writer commits a new file (append: the listed file stays live) with a new key
          const c = withReadCache(
            pausedAfterListing(storage, async () => {
              await other.write(ds, [aapl(30, 9)], { mode: 'append' })
            }),
            CACHE,
          )
          const got = await c.read(ds, { symbols: ['AAPL'] })
          expect(rowsOf(got)).toEqual(rowsOf(before))
          expect(rowsOf(got).map((r) => r.close)).toEqual([1, 2])
          expect((await storage.listPartitions(ds, { symbols: ['AAPL'] })).find((p) => p.path === path)?.version).toBe(2)
          // the entry is tagged with the version it holds: 1, and its rows are version 1's
          const entry = c.readCache.lookup(ds, path, '*', 1)
          expect(entry).toBeDefined()
          expect(rowsOf(entry!).filter((r) => r.symbol === 'AAPL')).toEqual(rowsOf(before))

          // the next read lists version 2: the entry is invalidated and the new row is there
          const s0 = c.readCache.stats()
          const next = await c.read(ds, { symbols: ['AAPL'] })
          expect(rowsOf(next).map((r) => r.close)).toEqual([1, 2, 9])
          expect(c.readCache.stats().invalidations).toBe(s0.invalidations + 1)
          expect(rowsOf(next)).toEqual(rowsOf(await other.read(ds, { symbols: ['AAPL'] })))
        } finally {
          await other.close()
          await storage.close()
        }
      },
    )

    it.each([[['symbol', 'date']], [['date']]] as PartitionKey[][][])(
      'a compaction that removes the listed files before the read: complete rows, tagged with the version read (partition_by %j)',
      async (partitionBy) => {
        const inner = kind.make()
        const recorder = faultyStore(inner)
        const ds = uniqueDataset('snap_compact')
        const storage = createLakeStorage({ backend: 'test', store: recorder, partitionBy })
        const maint = createLakeStorage({ backend: 'test', store: inner, partitionBy, rotation: COUNT_BASED })
        const path = partitionBy[0] === 'symbol' ? 'symbol=AAPL/date=2024-01-02' : 'date=2024-01-02'
        try {
          // three files in the partition: over max_files 2
          await storage.write(ds, [aapl(0, 1), aapl(1, 2), msft(0, 5)])
          await storage.write(ds, [aapl(10, 3)], { mode: 'append' })
          await storage.write(ds, [aapl(20, 4)], { mode: 'append' })
          const listed = (await storage.getManifest(ds, path))!
          expect(listed.files).toHaveLength(3)
          const oldKeys = listed.files.map((f) => `${ds}/${path}/${f.name}`)
          const expected = rowsOf(await storage.read(ds, { symbols: ['AAPL'] }))
          expect(expected.map((r) => r.close)).toEqual([1, 2, 3, 4])

          const c = withReadCache(
            pausedAfterListing(storage, async () => {
              const report = await maint.maintain({ dataset: ds })
              expect(report.totals.partitionsCompacted).toBe(1)
              for (const k of oldKeys) expect(await inner.head(k), k).toBeNull()
            }),
            CACHE,
          )
          recorder.calls.length = 0
          const got = await c.read(ds, { symbols: ['AAPL'] })
          expect(rowsOf(got)).toEqual(expected)
          // the listed version's files were asked for and found gone
          expect(recorder.calls.some((x) => x.op === 'get' && oldKeys.includes(x.key))).toBe(true)

          // the entry holds the compacted version, tagged with it: the next read is all hits
          const now = (await storage.getManifest(ds, path))!
          expect(now.version).toBe(listed.version + 1)
          expect(now.files).toHaveLength(1)
          const entry = c.readCache.lookup(ds, path, '*', now.version)
          expect(entry).toBeDefined()
          expect(rowsOf(entry!).filter((r) => r.symbol === 'AAPL')).toEqual(expected)
          const s0 = c.readCache.stats()
          expect(rowsOf(await c.read(ds, { symbols: ['AAPL'] }))).toEqual(expected)
          expect(c.readCache.stats()).toMatchObject({ misses: s0.misses, invalidations: s0.invalidations })
          expect(c.readCache.stats().hits).toBeGreaterThan(s0.hits)
        } finally {
          await maint.close()
          await storage.close()
        }
      },
    )
  })
}

const SNAPSHOT_FILTERS = [
  {},
  { symbols: ['MSFT'] },
  { symbols: ['MSFT', 'EUR/USD'], start: midnight(1) },
  { start: tms(1, 20), end: tms(2, 30) },
  { symbols: ['AAPL'], start: tms(0, 14), end: tms(2, 40), columns: ['close'] },
  { columns: [] },
  { limit: 7 },
  { symbols: ['MSFT', 'AAPL'], start: tms(1, 20), limit: 33 },
  { limit: 0, columns: ['close'] },
  { start: tms(9) },
  { symbols: ['NOPE'], limit: 3 },
]

for (const kind of KINDS) {
  describe.skipIf(kind.skip)(`lake snapshot: ${kind.name}`, () => {
    it.each([[['symbol', 'date']], [['date']], [['symbol', 'month']]] as PartitionKey[][][])(
      'lists what listPartitions lists and reads what read reads (partition_by %j)',
      async (partitionBy) => {
        const storage = createLakeStorage({ backend: 'test', store: kind.make(), partitionBy })
        const ds = uniqueDataset('snap_eq')
        try {
          await storage.write(ds, bars(['AAPL', 'MSFT', 'EUR/USD'], [0, 1, 2], 12))
          for (const o of SNAPSHOT_FILTERS) {
            const range = { symbols: o.symbols, start: o.start, end: o.end }
            const snap = await storage.snapshot(ds, range)
            expect(snap.partitions, JSON.stringify(o)).toEqual(await storage.listPartitions(ds, range))
            const got = await snap.read(o)
            const want = await storage.read(ds, o)
            expect(got!.schema, JSON.stringify(o)).toEqual(want.schema)
            expect(rowsOf(got!), JSON.stringify(o)).toEqual(rowsOf(want))
          }
          // a column the dataset lacks is refused, as by read
          const snap = await storage.snapshot(ds, {})
          await expect(snap.read({ columns: ['nope'] })).rejects.toMatchObject({ code: 'validation_error' })
          // unknown dataset: no partitions, an empty table with the key columns
          const none = await storage.snapshot(uniqueDataset('snap_none'), {})
          expect(none.partitions).toEqual([])
          expect((await none.read({ columns: ['close'] }))!.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp'])
        } finally {
          await storage.close()
        }
      },
    )

    it('reads the listed version after a later commit, and nothing of partitions it did not list', async () => {
      const storage = createLakeStorage({ backend: 'test', store: kind.make() })
      const ds = uniqueDataset('snap_old')
      try {
        await storage.write(ds, [aapl(0, 1), msft(0, 2)])
        const snap = await storage.snapshot(ds, { symbols: ['AAPL'] })
        await storage.write(ds, [aapl(5, 3)], { mode: 'append' })
        expect(rowsOf((await snap.read())!).map((r) => r.close)).toEqual([1])
        // MSFT was not in the snapshot: a wider read sees none of it
        expect(rowsOf((await snap.read({ symbols: ['AAPL', 'MSFT'] }))!).map((r) => r.close)).toEqual([1])
        // an upsert over the listed file rewrites it and removes it: the snapshot can no longer be read
        await storage.write(ds, [aapl(0, 10)])
        expect(await snap.read()).toBeNull()
        expect(rowsOf(await storage.read(ds, { symbols: ['AAPL'] })).map((r) => r.close)).toEqual([10, 3])
      } finally {
        await storage.close()
      }
    })
  })
}
