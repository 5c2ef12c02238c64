/**
 * Row retention with archiving on PostgreSQL (issue 17), through `PostgresStorage.expireRows`:
 * the archives hold exactly the rows deleted, even when a row is upserted between its archiving
 * and the delete; a run that dies after writing an archive and before deleting is finished by
 * the next run without archiving any row twice. The archive here is an in-memory map of name to
 * table (the object store behind it is not what is tested; PostgreSQL is real). Then the same
 * through `maintain()` (the retention step calls `expireRows`), archiving to the real S3 server.
 */

import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { createPostgresStorage, type PgPoolLike, type RowArchive } from '../src/backends/postgres/index.js'
import { parseConfig } from '../src/config/load.js'
import { decompress } from '../src/core/archive-codec.js'
import { rotationFromConfig } from '../src/core/rotation-policy.js'
import type { Table } from '../src/core/types.js'
import { maintainRows } from '../src/maintenance/db-retention.js'
import { createStorage } from '../src/node.js'
import { decodeParquet } from '../src/parquet/index.js'
import { createS3Store } from '../src/stores/s3-store.js'
import type { ObjectStore } from '../src/stores/types.js'
import { rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection, s3TestClient } from './helpers/s3.js'

const server = await requirePostgresOrSkip()
const s3 = await requireS3OrSkip()
const bucket = `friday-pgret-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
const pool = server ? new pg.Pool({ connectionString: server.url, max: 4 }) : null
const schema = `friday_fr_${Math.random().toString(36).slice(2, 8)}`

afterAll(async () => {
  if (s3) await deleteTestBucket(s3, bucket)
  if (pool) {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  }
  await server?.stop()
})

/** Archives in memory; `onPut` runs after each put is stored (to inject a race or a crash). */
function memoryArchive(onPut: (name: string, count: number) => Promise<void> | void = () => undefined) {
  const objects = new Map<string, Table>()
  let puts = 0
  const archive: RowArchive = {
    async put(name, rows) {
      objects.set(name, rows)
      await onPut(name, ++puts)
    },
    async remove(name) {
      objects.delete(name)
    },
  }
  /** Every archived row, as plain rows in key order. */
  const rows = () =>
    [...objects.values()]
      .flatMap((t) => rowsOf(t))
      .sort((a, b) =>
        a.symbol === b.symbol ? Number(a.timestamp) - Number(b.timestamp) : String(a.symbol) < String(b.symbol) ? -1 : 1,
      )
  return { archive, objects, rows }
}

const storage = server ? createPostgresStorage({ pool: pool as unknown as PgPoolLike, schema }) : null
const keyOf = (r: Record<string, unknown>) => `${r.symbol}@${r.timestamp}`

describe.skipIf(!server)('postgres row retention, exact and re-runnable', () => {
  it('an upsert of an expired key between the archive and the delete is kept, not lost; the next run archives its new value', async () => {
    const ds = uniqueDataset('race')
    const old = Array.from({ length: 6 }, (_, i) => ({ symbol: 'A', timestamp: tms(0, i), close: i }))
    const fresh = [{ symbol: 'A', timestamp: tms(5, 0), close: 100 }]
    await storage!.write(ds, [...old, ...fresh])
    const cutoff = tms(1, 0)
    const { archive, rows } = memoryArchive(async (_name, n) => {
      if (n === 1) await storage!.write(ds, [{ symbol: 'A', timestamp: tms(0, 2), close: 999 }]) // lands after the archive
    })
    const first = await storage!.expireRows(ds, { cutoff, archive })
    expect(first.rowsExpired).toBe(5)
    expect(rows().map((r) => r.close)).toEqual([0, 1, 3, 4, 5]) // exactly the rows deleted
    expect(rowsOf(await storage!.read(ds)).map((r) => r.close)).toEqual([999, 100])
    const second = await storage!.expireRows(ds, { cutoff, archive })
    expect(second.rowsExpired).toBe(1)
    expect(rows().map((r) => r.close)).toEqual([0, 1, 999, 3, 4, 5])
    expect(rowsOf(await storage!.read(ds)).map((r) => r.close)).toEqual([100])
    expect((await storage!.verify(ds)).ok).toBe(true)
  })

  it('a run that dies between archive and delete is finished by the next run: every row archived once', async () => {
    const ds = uniqueDataset('crash')
    const day0 = Array.from({ length: 5 }, (_, i) => ({ symbol: 'A', timestamp: tms(0, i), close: i }))
    const day1 = [{ symbol: 'B', timestamp: tms(1, 0), close: 50 }]
    const keep = [{ symbol: 'A', timestamp: tms(4, 0), close: 100 }]
    await storage!.write(ds, [...day0, ...day1, ...keep])
    let crash = true
    const { archive, rows, objects } = memoryArchive((_name, n) => {
      if (crash && n === 2) throw new Error('killed after writing the archive') // batch 0 done, batch 1 archived only
    })
    await expect(storage!.expireRows(ds, { cutoff: tms(1, 0), archive, batchSize: 2 })).rejects.toThrow(/killed/)
    expect(rowsOf(await storage!.read(ds)).length).toBe(5) // batch 0 (2 rows) deleted, the rest not
    crash = false
    // time moved on: a later cutoff, which also expires day 1
    const res = await storage!.expireRows(ds, { cutoff: tms(2, 0), archive, batchSize: 2 })
    expect(res.rowsExpired).toBe(4)
    const archived = rows()
    expect(archived.map(keyOf)).toEqual([...day0, ...day1].map((r) => `${r.symbol}@${r.timestamp * 1000}`))
    expect(new Set(archived.map(keyOf)).size).toBe(archived.length)
    expect(archived.map((r) => r.close)).toEqual([0, 1, 2, 3, 4, 50])
    expect(rowsOf(await storage!.read(ds)).map((r) => r.close)).toEqual([100])
    expect(objects.size).toBeGreaterThanOrEqual(3)
    // nothing left to do, nothing archived again
    const again = await storage!.expireRows(ds, { cutoff: tms(2, 0), archive, batchSize: 2 })
    expect(again).toEqual({ rowsExpired: 0, archives: [], partitions: [] })
    expect(rows()).toEqual(archived)
    expect((await storage!.verify(ds)).ok).toBe(true)
  })

  it('without an archive, the expired rows are deleted and the partitions updated', async () => {
    const ds = uniqueDataset('plain')
    await storage!.write(ds, [
      { symbol: 'A', timestamp: tms(0, 0), close: 1 },
      { symbol: 'A', timestamp: tms(3, 0), close: 2 },
    ])
    const res = await storage!.expireRows(ds, { cutoff: tms(1, 0) })
    expect(res.rowsExpired).toBe(1)
    expect(rowsOf(await storage!.read(ds)).map((r) => r.close)).toEqual([2])
    expect((await storage!.verify(ds)).ok).toBe(true)
    expect(await storage!.expireRows(uniqueDataset('none'), { cutoff: tms(1, 0) })).toEqual({
      rowsExpired: 0,
      archives: [],
      partitions: [],
    })
  })
})

describe.skipIf(!server || !s3)('postgres maintain(): row retention through expireRows, archived to S3', () => {
  const DAY = 86_400_000
  const NOW = tms(3, 0)
  /** Rows on days 0..3; 2 days of retention at NOW: day 0 and day 1 before 14:30 expire. */
  const ROWS = [0, 1, 2, 3].flatMap((d) => [
    { symbol: 'A', timestamp: tms(d, -1), close: d },
    { symbol: 'B', timestamp: tms(d, 30), close: d + 0.5 },
  ])
  const s3Section = () => s3ParquetSection(s3!, bucket)
  const readStore = () => createS3Store({ bucket, client: s3TestClient(s3!) })
  async function archived(store: ObjectStore, ds: string) {
    const { objects } = await store.list(`_friday/${ds}/_archive/rows/`)
    const out: { key: string; size: number; closes: unknown[] }[] = []
    for (const o of objects) {
      const body = (await store.get(o.key))!.body
      out.push({
        key: o.key,
        size: body.byteLength,
        closes: rowsOf(await decodeParquet(await decompress('gzip', body, 0))).map((r) => r.close),
      })
    }
    return out
  }

  it('reports the rows expired and the archive written, named by the retention cut, holding exactly the rows deleted', async () => {
    const storage = createStorage(
      {
        storage: {
          default_backend: 'postgres',
          postgres: { url: server!.url, driver: 'pg', schema },
          s3_parquet: s3Section(),
          file_rotation: { row_retention_days: 2 },
          metadata_logging: { enabled: false },
        },
      },
      {},
    )
    const store = readStore()
    try {
      const ds = uniqueDataset('mnt')
      await storage.write(ds, ROWS)
      const r = await storage.maintain!({ dataset: ds, now: () => NOW })
      expect(r.datasets[0]).toMatchObject({ dataset: ds, rowsExpired: 3, archivesWritten: 1, errors: [] })
      const objects = await archived(store, ds)
      // expireRows names batch 0 of its cut <cut>-0000 (the scan-and-delete path used a bare ULID)
      expect(objects.map((o) => o.key)).toEqual([
        expect.stringMatching(new RegExp(`^_friday/${ds}/_archive/rows/[0-9A-Z]{26}-0000\\.parquet\\.gz$`)),
      ])
      expect(r.datasets[0].archiveBytesWritten).toBe(objects[0].size)
      expect(objects[0].closes).toEqual([0, 1, 0.5])
      expect(rowsOf(await storage.read(ds)).map((x) => x.close)).toEqual([2, 3, 1.5, 2.5, 3.5])
      // nothing left: no new archive
      expect((await storage.maintain!({ dataset: ds, now: () => NOW })).totals).toMatchObject({
        rowsExpired: 0,
        archivesWritten: 0,
      })
      expect(await archived(store, ds)).toHaveLength(1)
    } finally {
      await store.close()
      await storage.close()
    }
  })

  it('a run whose archive was stored but answered with an error is finished by the next run: one archive, every row once', async () => {
    const ds = uniqueDataset('mntcrash')
    await storage!.write(ds, ROWS)
    const policy = rotationFromConfig({
      ...parseConfig({}, {}).storage.file_rotation,
      row_retention_days: 2,
    })
    expect(policy.rowRetentionMs).toBe(2 * DAY)
    let fail = true
    /** The real store, except that the first put of an archive fails after it was stored. */
    const archiveStore = (): ObjectStore => {
      const real = createS3Store({ bucket, client: s3TestClient(s3!), createBucket: true })
      return new Proxy(real, {
        get(target, prop, receiver) {
          if (prop !== 'put') return Reflect.get(target, prop, receiver)
          return async (...args: Parameters<ObjectStore['put']>) => {
            const res = await target.put(...args)
            if (fail) {
              fail = false
              throw new Error('the answer to the archive put was lost')
            }
            return res
          }
        },
      })
    }
    const first = await maintainRows(storage!, policy, { dataset: ds, now: () => NOW }, archiveStore)
    expect(first.datasets[0].errors).toEqual([{ partition: null, message: 'the answer to the archive put was lost' }])
    expect(first.totals.rowsExpired).toBe(0)
    expect((await storage!.read(ds)).length).toBe(ROWS.length) // archived, not deleted
    const second = await maintainRows(storage!, policy, { dataset: ds, now: () => NOW }, archiveStore)
    expect(second.datasets[0]).toMatchObject({ rowsExpired: 3, archivesWritten: 1, errors: [] })
    const store = readStore()
    try {
      const objects = await archived(store, ds)
      expect(objects).toHaveLength(1) // the crashed run's archive, written again under its name
      expect(objects[0].closes).toEqual([0, 1, 0.5])
    } finally {
      await store.close()
    }
    expect(rowsOf(await storage!.read(ds)).map((x) => x.close)).toEqual([2, 3, 1.5, 2.5, 3.5])
    expect((await storage!.verify(ds)).ok).toBe(true)
  })
})
