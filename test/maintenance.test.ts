/**
 * Rotation, compaction, archiving, restore and retention on the local lake (in-process, real
 * filesystem): each strategy's exact threshold, data preserved by compaction (also as DuckDB
 * reads it), archives that round-trip through every codec, restore, retention by an injected
 * clock, gc that spares the archive and pending journals, the lease, dry runs and op records.
 */

import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import type { OpRecord } from '../src/core/oplog-types.js'
import type { PartitionKey } from '../src/core/partitioning.js'
import { DEFAULT_ROTATION, type RotationPolicy } from '../src/core/rotation-policy.js'
import type { MaintenanceReport } from '../src/core/types.js'
import { writeJournal } from '../src/lake/journal.js'
import { createLakeStorage, type LakeDataStorage } from '../src/lake/lake-storage.js'
import { decodeParquet } from '../src/parquet/index.js'
import { rowsOf, tms } from './conformance/storage.case.js'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const HOUR = 3_600_000
const DAY = 24 * HOUR
const P = 'symbol=AAPL/date=2024-01-02'

async function lake(policy: Partial<RotationPolicy>, partitionBy: PartitionKey[] = ['symbol', 'date']) {
  const dir = await mkdtemp(join(tmpdir(), 'friday-maint-'))
  dirs.push(dir)
  const open = (override: Partial<RotationPolicy> = {}) =>
    createLakeStorage({
      backend: 'local_parquet',
      store: createLocalFsStore({ baseDir: dir }),
      partitionBy,
      // count_based unless a test says otherwise (most tests set max_files; the default is size_based)
      rotation: { ...DEFAULT_ROTATION, enabled: true, strategy: 'count_based', ...policy, ...override },
    })
  return { dir, storage: open(), open }
}

/** `n` commits to AAPL 2024-01-02, each its own file of `rows` rows (minutes don't overlap). */
async function commits(storage: LakeDataStorage, n: number, rows = 3, from = 0, ds = 'bars'): Promise<void> {
  for (let i = from; i < from + n; i++) {
    await storage.write(
      ds,
      Array.from({ length: rows }, (_, k) => ({
        symbol: 'AAPL',
        timestamp: tms(0, i * 10 + k),
        close: i * 100 + k,
        note: `f${i}`,
      })),
    )
  }
}

const files = async (s: LakeDataStorage, path = P, ds = 'bars') => (await s.getManifest(ds, path))?.files ?? []

describe('thresholds: each strategy triggers exactly at its threshold and not before', () => {
  it('count_based: max_files files stay, one more compacts', async () => {
    const { storage } = await lake({ strategy: 'count_based', maxFiles: 4 })
    await commits(storage, 4)
    let r = await storage.maintain()
    expect(r.totals.partitionsCompacted).toBe(0)
    expect(await files(storage)).toHaveLength(4)
    await commits(storage, 1, 3, 4)
    r = await storage.maintain()
    expect(r.datasets[0].compacted).toMatchObject([{ partition: P, filesBefore: 5, filesAfter: 1, rows: 15 }])
    expect(r.datasets[0].compacted[0].reason).toMatch(/5 files > max_files 4/)
    expect(await files(storage)).toHaveLength(1)
    await storage.close()
  })

  it('size_based: the size limit and the small-file rule at their edges', async () => {
    const { open, storage } = await lake({})
    await commits(storage, 1, 200)
    const [f] = await files(storage)
    await storage.close()
    const withPolicy = (p: Partial<RotationPolicy>) => open(p)
    let s = withPolicy({ strategy: 'size_based', maxFileBytes: f.bytes })
    expect((await s.maintain()).totals.partitionsCompacted).toBe(0)
    await s.close()
    s = withPolicy({ strategy: 'size_based', maxFileBytes: f.bytes - 1 })
    const r = await s.maintain()
    expect(r.datasets[0].compacted[0]?.reason).toMatch(/bytes > /)
    // split into files of about the target size: more than one file, same rows
    expect((await files(s)).length).toBeGreaterThan(1)
    expect((await s.read('bars')).length).toBe(200)
    await s.close()
  })

  it('size_based: two files under half the limit merge; one does not', async () => {
    const { storage, open } = await lake({})
    await commits(storage, 2, 3)
    const fs = await files(storage)
    const biggest = Math.max(...fs.map((f) => f.bytes))
    await storage.close()
    // both are under half the limit only once half of it is above the bigger file
    let s = open({ strategy: 'size_based', maxFileBytes: biggest * 2 })
    expect((await s.maintain()).totals.partitionsCompacted).toBe(0)
    await s.close()
    s = open({ strategy: 'size_based', maxFileBytes: biggest * 2 + 2 })
    const r = await s.maintain()
    expect(r.totals.partitionsCompacted).toBe(1)
    expect(r.datasets[0].compacted[0].reason).toMatch(/2 files under/)
    await s.close()
  })

  it('time_based: due exactly when the oldest file reaches max_file_age_hours (injected clock)', async () => {
    const { storage } = await lake({ strategy: 'time_based', maxFileAgeMs: 2 * HOUR })
    await commits(storage, 3)
    const oldest = Math.min(...(await files(storage)).map((f) => Date.parse(f.createdAt)))
    let r = await storage.maintain({ now: () => oldest + 2 * HOUR - 1 })
    expect(r.totals.partitionsCompacted).toBe(0)
    expect(await files(storage)).toHaveLength(3)
    r = await storage.maintain({ now: () => oldest + 2 * HOUR })
    expect(r.totals.partitionsCompacted).toBe(1)
    expect(await files(storage)).toHaveLength(1)
    await storage.close()
  })

  it('enabled: false compacts nothing', async () => {
    const { storage } = await lake({ enabled: false, maxFiles: 1 })
    await commits(storage, 3)
    expect((await storage.maintain()).totals.partitionsCompacted).toBe(0)
    expect(await files(storage)).toHaveLength(3)
    await storage.close()
  })
})

describe('compaction', () => {
  it('preserves every row and value by key, sorted, reduces files, keeps stats, checksums and DuckDB readability', async () => {
    const { storage, dir } = await lake({ maxFiles: 2 })
    const symbols = ['AAPL', 'EUR/USD', 'BRK.B']
    for (let i = 0; i < 8; i++) {
      await storage.write(
        'bars',
        symbols.flatMap((symbol, s) =>
          [0, 1].map((day) => ({
            symbol,
            timestamp: tms(day, i * 5),
            close: s * 1000 + i + day / 10,
            volume: BigInt(i * 1000 + s) * 10_000_000_000n,
            flag: i % 2 === 0,
            venue: i % 3 === 0 ? null : `v${i}`,
          })),
        ),
      )
    }
    // upserts: later values win for some keys
    await storage.write('bars', [{ symbol: 'AAPL', timestamp: tms(0, 5), close: -1, volume: 1n, flag: false, venue: 'late' }])
    const before = await storage.read('bars')
    const describeBefore = (await storage.describe('bars'))!
    expect(describeBefore.files).toBe(6 * 8)
    const report = await storage.maintain()
    expect(report.totals.partitionsCompacted).toBe(6)
    expect(report.totals.filesMerged).toBe(48)
    expect(report.totals.filesWritten).toBe(6)
    const after = await storage.read('bars')
    expect(rowsOf(after)).toEqual(rowsOf(before))
    const d = (await storage.describe('bars'))!
    expect(d.files).toBe(6)
    expect(d.rows).toBe(describeBefore.rows)
    expect((await storage.verify('bars')).ok).toBe(true)
    const m = (await storage.getManifest('bars', P))!
    expect(m.files[0].columns.close).toMatchObject({ min: -1, max: 7, nulls: 0 })
    expect(m.files[0].checksum).toMatch(/^sha256:[0-9a-f]{64}$/)

    const inst = await DuckDBInstance.create()
    const con = await inst.connect()
    try {
      const src = `read_parquet('${dir}/bars/*/*/*.parquet', hive_partitioning = true)`
      const rows = (await con.runAndReadAll(`SELECT count(*) AS n, sum(close) AS c FROM ${src}`)).getRowObjectsJS()
      const closes = (before.columns.close.values as Float64Array).reduce((s, x) => s + x, 0)
      expect(Number(rows[0].n)).toBe(before.length)
      expect(rows[0].c as number).toBeCloseTo(closes, 6)
      // compressed archives never match a `**/*.parquet` glob
      const all = (
        await con.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${dir}/bars/**/*.parquet')`)
      ).getRowObjectsJS()
      expect(Number(all[0].n)).toBe(before.length)
    } finally {
      con.closeSync()
      inst.closeSync()
    }
    await storage.close()
  })

  it('deduplicates keys across files, the later file winning, as upsert does', async () => {
    const { storage } = await lake({ maxFiles: 1 })
    await commits(storage, 2, 2)
    // an append-free way to get duplicate keys into two live files: commit a file by hand
    const m = (await storage.getManifest('bars', P))!
    const [first] = m.files
    const f1 = await decodeParquet((await storage.store.get(`bars/${P}/${first.name}`))!.body)
    // rewrite the partition so the second file also holds the first file's keys with new values
    const dup = { ...f1, columns: { ...f1.columns, close: { type: 'float64' as const, values: new Float64Array([7, 8]) } } }
    const { mutatePartition } = await import('../src/lake/mutate.js')
    const ctx = (storage as unknown as { ctx: Parameters<typeof mutatePartition>[0] }).ctx
    await mutatePartition(ctx, 'bars', m.partition, m.schema, async () => ({ remove: [], add: [dup] }))
    expect(await files(storage)).toHaveLength(3)
    await storage.maintain()
    const rows = rowsOf(await storage.read('bars'))
    expect(rows).toHaveLength(4)
    expect(rows.slice(0, 2).map((r) => r.close)).toEqual([7, 8])
    await storage.close()
  })

  it('dry run reports and changes nothing', async () => {
    const { storage, dir } = await lake({ maxFiles: 2 })
    await commits(storage, 3)
    const listing = async () => (await readdir(join(dir, 'bars', P))).sort()
    const before = await listing()
    const r = await storage.maintain({ dryRun: true })
    expect(r.dryRun).toBe(true)
    expect(r.datasets[0].compacted).toMatchObject([{ partition: P, filesBefore: 3, filesAfter: 1 }])
    expect(await listing()).toEqual(before)
    expect((await storage.listArchives('bars')).length).toBe(0)
    await storage.close()
  })

  it('readers ignore _archive and _maintenance under every partitioning', async () => {
    for (const partitionBy of [['date'], ['month'], ['symbol'], ['symbol', 'month']] as PartitionKey[][]) {
      const { storage } = await lake({ maxFiles: 1 }, partitionBy)
      await commits(storage, 3)
      const before = rowsOf(await storage.read('bars'))
      await storage.maintain()
      expect(await storage.listDatasets()).toEqual(['bars'])
      expect(rowsOf(await storage.read('bars'))).toEqual(before)
      expect((await storage.listPartitions('bars')).map((p) => p.files)).toEqual([1])
      expect((await storage.verify()).ok).toBe(true)
      expect((await storage.listArchives('bars')).length).toBe(3)
      const gc = await storage.gc({ graceMs: 0 })
      expect(gc.keys).toEqual([])
      expect((await storage.listArchives('bars')).length).toBe(3)
      await storage.close()
    }
  })
})

describe('archive and restore', () => {
  for (const codec of ['gzip', 'zstd', 'none'] as const) {
    it(`${codec}: archived files round-trip to the original bytes and checksum`, async () => {
      const { storage } = await lake({ maxFiles: 2, archiveCodec: codec })
      await commits(storage, 3, 8)
      const live = await files(storage)
      await storage.maintain()
      const entries = await storage.listArchives('bars')
      expect(entries.map((e) => e.originalName).sort()).toEqual(live.map((f) => f.name).sort())
      for (const e of entries) {
        expect(e).toMatchObject({ dataset: 'bars', partition: P, reason: 'compaction', codec })
        expect(e.key).toBe(
          `_friday/bars/_archive/${P}/${e.originalName}${codec === 'gzip' ? '.gz' : codec === 'zstd' ? '.zst' : '.archived'}`,
        )
        const original = live.find((f) => f.name === e.originalName)!
        expect(e.checksum).toBe(original.checksum)
        expect(e.bytes).toBe(original.bytes)
        const stored = (await storage.store.get(e.key))!
        expect(stored.body.byteLength).toBe(e.storedBytes)
        if (codec !== 'none') expect(e.storedBytes).toBeLessThan(e.bytes)
        const out = await storage.restoreArchive('bars', e.key, { to: `restored/${codec}/${e.originalName}` })
        const bytes = (await storage.store.get(out.key))!.body
        const { sha256 } = await import('../src/lake/manifest.js')
        expect(await sha256(bytes)).toBe(original.checksum)
        expect((await decodeParquet(bytes)).length).toBe(8)
      }
      await storage.close()
    })
  }

  it('restore into the partition brings back keys that are gone and never overwrites current rows', async () => {
    const { storage } = await lake({ maxFiles: 1 })
    await commits(storage, 2, 3)
    await storage.maintain()
    const [first] = (await storage.listArchives('bars')).sort((a, b) => (a.file.minTs < b.file.minTs ? -1 : 1))
    // after compaction every key is live: a restore adds nothing
    expect((await storage.restoreArchive('bars', first.key)).rowsRestored).toBe(0)
    // delete the first file's rows, change one of them back by hand
    await storage.delete('bars', { start: tms(0, 0), end: tms(0, 3) })
    await storage.write('bars', [{ symbol: 'AAPL', timestamp: tms(0, 1), close: 999, note: 'new' }])
    const r = await storage.restoreArchive('bars', first.key)
    expect(r.rowsRestored).toBe(2)
    expect(r.key).toMatch(new RegExp(`^bars/${P}/part-`))
    const rows = rowsOf(await storage.read('bars', { end: tms(0, 3) }))
    expect(rows.map((x) => x.close)).toEqual([0, 999, 2])
    expect((await storage.verify('bars')).ok).toBe(true)
    await expect(storage.restoreArchive('bars', '_friday/bars/_archive/nope/part-x.parquet.gz')).rejects.toMatchObject({
      status: 404,
    })
    await expect(storage.restoreArchive('bars', first.key, { to: '../escape' })).rejects.toMatchObject({ status: 400 })
    await storage.close()
  })
})

describe('retention (injected clock)', () => {
  it('removes exactly the archives past archive_retention_days', async () => {
    const { storage } = await lake({ maxFiles: 1, archiveRetentionMs: 10 * DAY })
    const t = Date.now()
    await commits(storage, 2)
    await storage.maintain({ now: () => t })
    await commits(storage, 2, 3, 2)
    await storage.maintain({ now: () => t + 5 * DAY })
    const all = await storage.listArchives('bars')
    expect(all.map((e) => e.archivedAt)).toEqual([
      new Date(t).toISOString(),
      new Date(t).toISOString(),
      ...Array(3).fill(new Date(t + 5 * DAY).toISOString()),
    ])
    // exactly 10 days old: kept; a millisecond more: removed (only those of the first run)
    let r = await storage.maintain({ now: () => t + 10 * DAY })
    expect(r.totals.archivesRemoved).toBe(0)
    r = await storage.maintain({ now: () => t + 10 * DAY + 1 })
    expect(r.totals.archivesRemoved).toBe(2)
    const left = await storage.listArchives('bars')
    expect(left).toHaveLength(3)
    for (const e of all.slice(0, 2)) expect(await storage.store.head(e.key)).toBeNull()
    for (const e of left) expect(await storage.store.head(e.key)).not.toBeNull()
    await storage.close()
  })

  it('row retention removes rows older than row_retention_days, archiving the files they were in', async () => {
    const { storage } = await lake({ enabled: false, rowRetentionMs: 1 * DAY })
    await storage.write(
      'bars',
      [0, 1, 2].flatMap((d) => [
        { symbol: 'AAPL', timestamp: tms(d, 0), close: d },
        { symbol: 'AAPL', timestamp: tms(d, 60), close: d + 0.5 },
      ]),
    )
    // now = day 2 14:30 + 1 day: rows before day 1 14:30 are past
    const r = await storage.maintain({ now: () => tms(2, 0) })
    expect(r.totals.rowsExpired).toBe(2)
    expect(rowsOf(await storage.read('bars')).map((x) => x.close)).toEqual([1, 1.5, 2, 2.5])
    const archived = await storage.listArchives('bars')
    expect(archived.map((e) => e.reason)).toEqual(['retention'])
    expect(archived[0].partition).toBe(P)
    await storage.close()
  })

  it('gc removes orphans past the grace period, never archives or files a pending journal names', async () => {
    const { storage } = await lake({ maxFiles: 1 })
    await commits(storage, 2)
    await storage.maintain()
    const m = (await storage.getManifest('bars', P))!
    // a pending journal naming a non-live file (as after a commit, before archiving)
    await storage.store.put(`bars/${P}/part-PENDING.parquet`, new Uint8Array([1, 2, 3]))
    await storage.store.put(`bars/${P}/part-ORPHAN.parquet`, new Uint8Array([1, 2, 3]))
    const ctx = (storage as unknown as { ctx: Parameters<typeof writeJournal>[0] }).ctx
    await writeJournal(ctx, {
      format: 'friday.maintenance-journal',
      formatVersion: 1,
      dataset: 'bars',
      partition: m.partition,
      reason: 'compaction',
      codec: 'gzip',
      owner: 'test',
      createdAt: new Date().toISOString(),
      commitId: 'x',
      version: 99,
      remove: [{ ...m.files[0], name: 'part-PENDING.parquet' }],
      add: [],
    })
    const gc = await storage.gc({ graceMs: 0 })
    expect(gc.keys).toEqual([`bars/${P}/part-ORPHAN.parquet`])
    expect(await storage.store.head(`bars/${P}/part-PENDING.parquet`)).not.toBeNull()
    expect((await storage.listArchives('bars')).length).toBe(2)
    await storage.close()
  })
})

describe('running it', () => {
  it('two runs at once: one takes the lease, the other skips the dataset and says so', async () => {
    const { storage, open } = await lake({ maxFiles: 2 })
    await commits(storage, 6)
    const before = rowsOf(await storage.read('bars'))
    const other = open()
    const [a, b] = await Promise.all([storage.maintain(), other.maintain()])
    const reports: MaintenanceReport[] = [a, b]
    const ran = reports.filter((r) => r.datasets[0].skipped === null)
    const skipped = reports.filter((r) => r.datasets[0].skipped !== null)
    // either one skipped because of the lease, or the second found nothing left to do
    expect(ran.length + skipped.length).toBe(2)
    for (const s of skipped) expect(s.datasets[0].skipped).toMatch(/^lease held by maintain-/)
    expect(a.totals.partitionsCompacted + b.totals.partitionsCompacted).toBe(1)
    expect(rowsOf(await storage.read('bars'))).toEqual(before)
    expect(await files(storage)).toHaveLength(1)
    expect((await storage.listArchives('bars')).length).toBe(6)
    // the lease was released: a third run gets it
    expect((await other.maintain()).datasets[0].skipped).toBeNull()
    await other.close()
    await storage.close()
  })

  it('reports one op record per step and a maintain summary', async () => {
    const { storage } = await lake({ maxFiles: 2 })
    await commits(storage, 3)
    const records: OpRecord[] = []
    await storage.maintain({ sink: { record: (r) => records.push(r) } })
    expect(records.map((r) => r.op)).toEqual(['rotate', 'compact', 'retention', 'archive', 'gc', 'maintain'])
    const compact = records.find((r) => r.op === 'compact')!
    expect(compact).toMatchObject({ dataset: 'bars', partitions: [P], partitionCount: 1, rows: 9, outcome: 'ok' })
    expect(compact.details).toMatchObject({ filesMerged: 3, filesWritten: 1 })
    expect(compact.requests.put).toBeGreaterThan(0)
    expect(records.find((r) => r.op === 'archive')!.details).toMatchObject({ archivesWritten: 3 })
    expect(records.at(-1)!.details).toMatchObject({ partitionsCompacted: 1, filesMerged: 3 })
    await storage.close()
  })
})

describe('file_rotation config', () => {
  it('validates the policy and names the offending field; env overrides parse numbers', async () => {
    const { parseConfig } = await import('../src/config/load.js')
    const issues = (input: unknown, env = {}) => {
      try {
        parseConfig(input, env)
        return []
      } catch (err) {
        return ((err as { details: { issues: { path: string; message: string }[] } }).details.issues ?? []).map((i) => i.path)
      }
    }
    expect(issues({ storage: { file_rotation: { strategy: 'weekly' } } })).toEqual(['storage.file_rotation.strategy'])
    expect(issues({ storage: { file_rotation: { max_files: 0 } } })).toEqual(['storage.file_rotation.max_files'])
    expect(issues({ storage: { file_rotation: { archive_codec: 'lz4' } } })).toEqual(['storage.file_rotation.archive_codec'])
    expect(issues({ storage: { file_rotation: { max_file_size_mb: -1 } } })).toEqual(['storage.file_rotation.max_file_size_mb'])
    expect(issues({ storage: { file_rotation: { max_file: 3 } } })).toEqual(['storage.file_rotation.max_file'])
    expect(issues({}, { FILE_ROTATION_MAX_FILES: 'ten' })).toEqual(['storage.file_rotation.max_files'])
    const c = parseConfig({}, { FILE_ROTATION_ENABLED: 'true', FILE_ROTATION_MAX_FILES: '3', ROW_RETENTION_DAYS: '7' })
    expect(c.storage.file_rotation).toMatchObject({ enabled: true, max_files: 3, row_retention_days: 7 })
  })
})
