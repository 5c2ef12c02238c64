/**
 * The lake's layout on disk: a dataset directory holds only hive partition directories and their
 * `part-<ULID>.parquet` files, through writes, upserts, a column addition, deletes, compaction
 * (maintain), archiving, row retention, restore and gc, so a reader that takes every file under
 * `<dataset>/` (`polars.read_parquet(dir)`) meets nothing else. Everything else (dataset
 * document, `_common_metadata`, manifests, archive, lease, journals) is under `_friday/<dataset>/`.
 */

import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import type { PartitionKey } from '../src/core/partitioning.js'
import { DEFAULT_ROTATION } from '../src/core/rotation-policy.js'
import { createLakeStorage, type LakeDataStorage } from '../src/lake/lake-storage.js'
import { rowsOf, tms } from './conformance/storage.case.js'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const ULID = '[0-9A-HJKMNP-TV-Z]{26}'
const SEGMENT: Record<PartitionKey, string> = {
  symbol: 'symbol=[^/]+',
  date: 'date=\\d{4}-\\d{2}-\\d{2}',
  month: 'month=\\d{4}-\\d{2}',
}
const DAY_MS = 86_400_000

/** Every file and directory under `root`, relative, `/`-separated; directories end in `/`. */
async function tree(root: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const rel = join(e.parentPath, e.name).slice(root.length + 1)
    out.push(e.isDirectory() ? `${rel}/` : rel)
  }
  return out.sort()
}

/** What in `<dir>/<ds>` is not a hive directory or a data file at the partition depth (empty: all is data). */
async function foreign(dir: string, ds: string, partitionBy: PartitionKey[]): Promise<string[]> {
  const fileRe = new RegExp(`^${partitionBy.map((k) => SEGMENT[k]).join('/')}/part-${ULID}\\.parquet$`)
  const dirRes = partitionBy.map(
    (_, i) =>
      new RegExp(
        `^${partitionBy
          .slice(0, i + 1)
          .map((k) => SEGMENT[k])
          .join('/')}/$`,
      ),
  )
  return (await tree(join(dir, ds))).filter((p) => (p.endsWith('/') ? !dirRes.some((re) => re.test(p)) : !fileRe.test(p)))
}

function open(dir: string, partitionBy: PartitionKey[]): LakeDataStorage {
  return createLakeStorage({
    backend: 'local_parquet',
    store: createLocalFsStore({ baseDir: dir }),
    partitionBy,
    rotation: {
      ...DEFAULT_ROTATION,
      enabled: true,
      strategy: 'count_based',
      maxFiles: 1,
      archiveCodec: 'gzip',
      rowRetentionMs: 2 * DAY_MS,
    },
  })
}

const bar = (symbol: string, day: number, minute: number, close: number, extra: Record<string, unknown> = {}) => ({
  symbol,
  timestamp: tms(day, minute),
  close,
  ...extra,
})

describe('a dataset directory holds only hive directories and Parquet data files', () => {
  for (const partitionBy of [['symbol', 'date'], ['date'], ['symbol', 'month'], ['symbol']] as PartitionKey[][]) {
    it(`through write, upsert, column addition, delete, maintain, retention, restore and gc (partition_by=[${partitionBy}])`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'friday-layout-'))
      dirs.push(dir)
      const ds = 'bars'
      const s = open(dir, partitionBy)
      const steps: Record<string, string[]> = {}
      const check = async (step: string) => {
        steps[step] = await foreign(dir, ds, partitionBy)
      }
      try {
        const rows = []
        for (const sym of ['AAPL', 'BTC/USD', '^GSPC'])
          for (let d = 0; d < 4; d++) for (let m = 0; m < 3; m++) rows.push(bar(sym, d, m, d * 10 + m))
        await s.write(ds, rows)
        await check('write')
        await s.write(ds, [bar('AAPL', 1, 0, 999), bar('BTC/USD', 2, 1, 998)]) // upsert is the default mode
        await check('upsert')
        await s.write(ds, [bar('AAPL', 3, 5, 7, { volume: 12n }), bar('^GSPC', 3, 5, 8, { volume: 13n })])
        await check('column addition')
        await s.delete(ds, { symbols: ['^GSPC'], start: tms(2, 0), end: tms(3, 0) })
        await check('delete')
        // day 3 + 1: rows of days 0 and 1 are past the 2-day retention
        const report = await s.maintain({ now: () => tms(4, 0) })
        expect(report.datasets[0].errors).toEqual([])
        expect(report.totals.partitionsCompacted).toBeGreaterThan(0)
        expect(report.totals.rowsExpired).toBeGreaterThan(0)
        await check('maintain')
        const archived = await s.listArchives(ds)
        expect(archived.length).toBeGreaterThan(0)
        for (const e of archived) expect(e.key.startsWith(`_friday/${ds}/_archive/${e.partition}/`), e.key).toBe(true)
        const restored = await s.restoreArchive(ds, archived[0].key)
        await check('restore')
        if (restored.key) expect(restored.key).toMatch(new RegExp(`^${ds}/.+/part-${ULID}\\.parquet$`))
        const gc = await s.gc({ graceMs: 0, dataset: ds })
        for (const k of gc.keys) expect(k.startsWith(`${ds}/`) || /\/_manifest\.v\d{20}\.json$/.test(k), k).toBe(true)
        await check('gc')
        expect(steps).toEqual({
          write: [],
          upsert: [],
          'column addition': [],
          delete: [],
          maintain: [],
          restore: [],
          gc: [],
        })

        // the metadata is all under _friday/<dataset>/, and the lake still reads and verifies
        const meta = await tree(join(dir, '_friday', ds))
        for (const f of ['_dataset.json', '_common_metadata', '_maintenance/', '_archive/']) expect(meta, f).toContain(f)
        expect(meta.some((p) => /^(.+\/)?_manifest\.json$/.test(p))).toBe(true)
        expect(meta.filter((p) => p.startsWith('_maintenance/journal/') && !p.endsWith('/'))).toEqual([])
        expect((await s.verify(ds)).ok).toBe(true)
        expect(await s.listDatasets()).toEqual([ds])
        expect(rowsOf(await s.read(ds)).length).toBeGreaterThan(0)
      } finally {
        await s.close()
      }
    })
  }

  it('a dataset left by a format-1 lake (metadata inside <dataset>/) is refused, not mixed with new metadata', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-layout-v1-'))
    dirs.push(dir)
    const s = open(dir, ['symbol', 'date'])
    try {
      await s.store.put('bars/_dataset.json', new TextEncoder().encode('{"format":"friday.dataset","formatVersion":1}'))
      await s.store.put('bars/symbol=AAPL/date=2024-01-02/part-01J00000000000000000000000.parquet', new Uint8Array([1]))
      await expect(s.write('bars', [bar('AAPL', 0, 0, 1)])).rejects.toMatchObject({
        code: 'config_error',
        message: expect.stringMatching(/'bars'.*lake format 1 \('bars\/_dataset\.json'\)/),
      })
      expect(await tree(dir)).not.toContain('_friday/')
      // other datasets of the same lake are written as usual
      await s.write('ticks', [bar('AAPL', 0, 0, 1)])
      expect(await s.listDatasets()).toEqual(['ticks'])
    } finally {
      await s.close()
    }
  })

  it('gc finds an orphan data file in the dataset directory and leaves every metadata object alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-layout-gc-'))
    dirs.push(dir)
    const s = open(dir, ['symbol', 'date'])
    try {
      await s.write('bars', [bar('AAPL', 0, 0, 1), bar('AAPL', 1, 0, 2)])
      await s.maintain({ now: () => tms(1, 12 * 60) })
      const orphan = `bars/symbol=AAPL/date=2024-01-02/part-01J00000000000000000000000.parquet`
      await s.store.put(orphan, new Uint8Array([1, 2, 3]))
      const before = await tree(join(dir, '_friday'))
      const gc = await s.gc({ graceMs: 0 })
      expect(gc.keys).toEqual([orphan])
      expect(gc.filesDeleted).toBe(1)
      expect(await tree(join(dir, '_friday'))).toEqual(before)
      expect(await foreign(dir, 'bars', ['symbol', 'date'])).toEqual([])
      expect(rowsOf(await s.read('bars')).map((r) => r.close)).toEqual([1, 2])
    } finally {
      await s.close()
    }
  })
})
