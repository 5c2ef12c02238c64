/**
 * The storage conformance suite on the local Parquet lake (three partitionings), plus checks of
 * the layout on disk.
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import type { DataStorage } from '../src/core/types.js'
import { createLakeStorage, type LakeDataStorage } from '../src/lake/lake-storage.js'
import { createStorage } from '../src/node.js'
import { bars, expectedBars, rowsOf, testStorage, tms, uniqueDataset } from './conformance/storage.case.js'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function localStorage(partitionBy: string[], compression = 'snappy'): Promise<{ storage: DataStorage; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'friday-lake-'))
  dirs.push(dir)
  const storage = createStorage(
    { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir, partition_by: partitionBy, compression } } },
    {},
  )
  return { storage, dir }
}

const PARTITIONINGS: { partitionBy: string[]; layout: RegExp }[] = [
  { partitionBy: ['symbol', 'date'], layout: /^symbol=[^/=]+\/date=\d{4}-\d{2}-\d{2}$/ },
  { partitionBy: ['symbol', 'month'], layout: /^symbol=[^/=]+\/month=\d{4}-\d{2}$/ },
  { partitionBy: ['date'], layout: /^date=\d{4}-\d{2}-\d{2}$/ },
]

for (const { partitionBy } of PARTITIONINGS) {
  testStorage({
    name: `local_parquet partition_by=[${partitionBy.join(',')}]`,
    create: async () => (await localStorage(partitionBy)).storage,
  })
}

const ULID = '[0-9A-HJKMNP-TV-Z]{26}'

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort()
}

describe('local_parquet layout on disk', () => {
  for (const { partitionBy, layout } of PARTITIONINGS) {
    it(`is hive style with part-<ULID>.parquet files and manifests (partition_by=[${partitionBy.join(',')}])`, async () => {
      const { storage, dir } = await localStorage(partitionBy)
      try {
        const ds = uniqueDataset('layout')
        await storage.write(ds, bars(['AAPL', 'EUR/USD', '^GSPC'], [0, 1], 3))
        await storage.write(ds, bars(['AAPL'], [1], 2)) // a second commit to one partition
        const files = await filesUnder(dir)
        const parquet = files.filter((f) => f.endsWith('.parquet'))
        expect(parquet.length).toBeGreaterThan(0)
        const partRe = new RegExp(`^${ds}/(.+)/part-${ULID}\\.parquet$`)
        for (const f of parquet) {
          const m = partRe.exec(f)
          expect(m, f).not.toBeNull()
          expect(m![1], f).toMatch(layout)
        }
        // only Parquet data, JSON metadata and the schema sidecar stay behind: no temp files
        for (const f of files) expect(f, f).toMatch(/(\.(parquet|json)|^_friday\/[^/]+\/_common_metadata)$/)

        const parts = await storage.listPartitions(ds)
        for (const p of parts) {
          if (partitionBy.includes('symbol') && p.values.symbol === 'EUR/USD') expect(p.path).toContain('symbol=EUR%2FUSD')
          if (partitionBy.includes('symbol') && p.values.symbol === '^GSPC') expect(p.path).toContain('symbol=%5EGSPC')
          // the partition manifest (each version its own file) and every live file it lists are on disk
          const manifest = await storage.getManifest(ds, p.path)
          const version = `_friday/${ds}/${p.path}/_manifest.v${String(manifest!.version).padStart(20, '0')}.json`
          expect(files).toContain(version)
          for (const f of manifest!.files) expect(files).toContain(`${ds}/${p.path}/${f.name}`)
          // the hint: none for a partition's first version, a copy of the newest from the second on
          const hint = `_friday/${ds}/${p.path}/_manifest.json`
          if (manifest!.version === 1) expect(files).not.toContain(hint)
          else expect(await readFile(join(dir, hint), 'utf8')).toBe(await readFile(join(dir, version), 'utf8'))
        }
        // no raw '/' from a symbol became a directory level
        for (const f of parquet) expect(f.split('/')).toHaveLength(partitionBy.length + 2)
      } finally {
        await storage.close()
      }
    })
  }

  it('zstd compression round-trips', async () => {
    const { storage } = await localStorage(['symbol', 'date'], 'zstd')
    try {
      const ds = uniqueDataset('zstd')
      const rows = bars(['AAPL', 'MSFT'], [0, 1], 50)
      await storage.write(ds, rows)
      const t = await storage.read(ds, { symbols: ['MSFT'], start: tms(1, 0) })
      expect(rowsOf(t).map((r) => r.close)).toEqual(
        rows
          .filter((r) => r.symbol === 'MSFT')
          .slice(50)
          .map((r) => r.close),
      )
      expect((await storage.verify(ds)).ok).toBe(true)
    } finally {
      await storage.close()
    }
  })

  it('a whole read whose file is replaced and collected under it reads that partition again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-lake-'))
    dirs.push(dir)
    const fs = createLocalFsStore({ baseDir: dir })
    const ds = uniqueDataset('replaced')
    let hooked = ''
    let storage: LakeDataStorage | undefined
    // a store whose first GET of an AAPL data file lets an upsert and a gc run before it reads
    const store = new Proxy(fs, {
      get(target, prop, receiver) {
        if (prop !== 'get') return Reflect.get(target, prop, receiver)
        return async (key: string, range?: unknown) => {
          if (!hooked && key.endsWith('.parquet') && key.includes('symbol=AAPL')) {
            hooked = key
            const newer = bars(['AAPL'], [0, 1], 5).map((r) => ({ ...r, close: (r.close as number) + 1000 }))
            await storage!.write(ds, newer)
            await storage!.gc({ graceMs: 0, dataset: ds })
          }
          return target.get(key, range as never)
        }
      },
    })
    storage = createLakeStorage({ backend: 'local_parquet', store })
    try {
      const rows = bars(['AAPL', 'MSFT'], [0, 1], 5)
      await storage.write(ds, rows)
      const got = rowsOf(await storage.read(ds))
      expect(hooked).not.toBe('')
      expect(got.length).toBe(rows.length)
      // every partition is one version: all its closes old or all new
      for (const day of [0, 1]) {
        const part = got.filter(
          (r) =>
            r.symbol === 'AAPL' &&
            (r.timestamp as number) >= tms(day, 0) * 1000 &&
            (r.timestamp as number) < tms(day + 1, 0) * 1000,
        )
        expect(part.length).toBe(5)
        const isNew = part.map((r) => (r.close as number) >= 1000)
        expect(new Set(isNew).size).toBe(1)
        // the partition whose file vanished was read again, at its new version
        if (hooked.includes(`date=${new Date(tms(day, 0)).toISOString().slice(0, 10)}`)) expect(isNew[0]).toBe(true)
      }
      expect(got.filter((r) => r.symbol === 'MSFT')).toEqual(expectedBars(rows).filter((r) => r.symbol === 'MSFT'))
      expect(
        rowsOf(await storage.read(ds))
          .filter((r) => r.symbol === 'AAPL')
          .every((r) => (r.close as number) >= 1000),
      ).toBe(true)
    } finally {
      await storage.close()
    }
  })

  it('a second storage on the same directory sees the data (nothing is kept only in memory)', async () => {
    const { storage, dir } = await localStorage(['symbol', 'date'])
    const ds = uniqueDataset('reopen')
    await storage.write(ds, bars(['AAPL'], [0, 1], 4))
    const before = rowsOf(await storage.read(ds))
    await storage.close()
    const again = createStorage(
      { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir, partition_by: ['symbol', 'date'] } } },
      {},
    )
    try {
      expect(rowsOf(await again.read(ds))).toEqual(before)
      expect(await again.listDatasets()).toEqual([ds])
    } finally {
      await again.close()
    }
  })
})
