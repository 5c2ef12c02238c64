/**
 * Row retention with archiving on PostgreSQL (issue 17), through `PostgresStorage.expireRows`:
 * the archives hold exactly the rows deleted, even when a row is upserted between its archiving
 * and the delete; a run that dies after writing an archive and before deleting is finished by
 * the next run without archiving any row twice. The archive here is an in-memory map of name to
 * table (the object store behind it is not what is tested; PostgreSQL is real).
 */

import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { type PgPoolLike, PostgresStorage, type RowArchive } from '../src/backends/postgres/index.js'
import type { Table } from '../src/types.js'
import { rowsOf, tms, uniqueDataset } from './conformance/storage.case.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'

const server = await requirePostgresOrSkip()
const pool = server ? new pg.Pool({ connectionString: server.url, max: 4 }) : null
const schema = `friday_fr_${Math.random().toString(36).slice(2, 8)}`

afterAll(async () => {
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

const storage = server ? new PostgresStorage({ pool: pool as unknown as PgPoolLike, schema }) : null
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
