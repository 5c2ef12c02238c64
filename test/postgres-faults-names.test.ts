/**
 * Dataset -> table names on PostgreSQL (issue 13): no two datasets ever share a table, neither
 * through the shortened form of long names nor through index names (`ds_<name>_ts`,
 * `ds_<name>_pkey`), including in databases whose tables were named by the earlier rules.
 */

import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { createPostgresStorage, type PgPoolLike } from '../src/backends/postgres/index.js'
import { ConflictError } from '../src/core/errors.js'
import type { DataStorage } from '../src/core/types.js'
import { rowsOf, tms } from './conformance/storage.case.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'

const server = await requirePostgresOrSkip()
const pool = server ? new pg.Pool({ connectionString: server.url, max: 4 }) : null
const RUN = Math.random().toString(36).slice(2, 8)
const schemas: string[] = []

afterAll(async () => {
  if (pool) {
    for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
    await pool.end()
  }
  await server?.stop()
})

function open(partitionBy: ('symbol' | 'date')[] = ['symbol', 'date']): { storage: DataStorage; schema: string } {
  const schema = `friday_fn_${RUN}_${schemas.length}`
  schemas.push(schema)
  return { storage: createPostgresStorage({ pool: pool as unknown as PgPoolLike, schema, partitionBy }), schema }
}

/** FNV-1a 32 of the earlier rules' shortened names. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0).toString(16).padStart(8, '0')
}

const row = (close: number) => [{ symbol: 'A', timestamp: tms(0, 0), close }]

async function tableOf(schema: string, ds: string): Promise<string> {
  const res = await pool!.query(`SELECT table_name FROM "${schema}".friday_datasets WHERE name = $1`, [ds])
  return res.rows[0].table_name
}

/** Renames what the current rules made for `ds` to what the earlier rules named it (an old database). */
async function makeLegacy(schema: string, ds: string, table: string, index?: string): Promise<void> {
  const now = await tableOf(schema, ds)
  if (now !== table) await pool!.query(`ALTER TABLE "${schema}"."${now}" RENAME TO "${table}"`)
  await pool!.query(`ALTER INDEX "${schema}"."p~${now.slice(3)}" RENAME TO "${table.slice(0, 58)}_pkey"`)
  if (index) await pool!.query(`ALTER INDEX "${schema}"."t~${now.slice(3)}" RENAME TO "${index}"`)
  await pool!.query(`UPDATE "${schema}".friday_datasets SET table_name = $2 WHERE name = $1`, [ds, table])
}

describe.skipIf(!server)('postgres table names are never shared', () => {
  const long = `L${RUN}`.padEnd(61, 'x') + 'y1' // 63 characters: shortened
  const literal = `${long.slice(0, 50)}_${fnv1a(long)}` // a valid name: the earlier rules' table of `long`

  for (const order of [
    [long, literal],
    [literal, long],
  ]) {
    it(`a long name and the literal name of its shortened form get their own tables (${order[0] === long ? 'long' : 'literal'} first)`, async () => {
      const { storage, schema } = open()
      await storage.write(order[0], row(1))
      await storage.write(order[1], row(2))
      expect(rowsOf(await storage.read(order[0])).map((r) => r.close)).toEqual([1])
      expect(rowsOf(await storage.read(order[1])).map((r) => r.close)).toEqual([2])
      expect(await tableOf(schema, long)).not.toBe(await tableOf(schema, literal))
      expect((await storage.verify()).ok).toBe(true)
    })
  }

  it('an old database: the long dataset keeps its shortened table, the literal name gets another', async () => {
    const { storage, schema } = open()
    await storage.write(long, row(1))
    await makeLegacy(schema, long, `ds_${literal}`)
    await storage.write(literal, row(2))
    await storage.write(long, row(3))
    expect(await tableOf(schema, long)).toBe(`ds_${literal}`)
    expect(rowsOf(await storage.read(long)).map((r) => r.close)).toEqual([3])
    expect(rowsOf(await storage.read(literal)).map((r) => r.close)).toEqual([2])
  })

  it('index names: date-partitioned `foo` then `foo_ts` (and `foo_pkey`) each write their own table', async () => {
    const { storage } = open(['date'])
    const foo = `f${RUN}`
    for (const ds of [foo, `${foo}_ts`, `${foo}_pkey`]) await storage.write(ds, row(ds.length))
    for (const ds of [foo, `${foo}_ts`, `${foo}_pkey`])
      expect(rowsOf(await storage.read(ds)).map((r) => r.close)).toEqual([ds.length])
  })

  it('index names in an old database: `foo_ts` and `foo_pkey` are writable next to legacy `foo`', async () => {
    const { storage, schema } = open(['date'])
    const foo = `g${RUN}`
    await storage.write(foo, row(1))
    await makeLegacy(schema, foo, `ds_${foo}`, `ds_${foo}_ts`)
    for (const ds of [`${foo}_ts`, `${foo}_pkey`]) {
      await storage.write(ds, row(ds.length))
      expect(rowsOf(await storage.read(ds)).map((r) => r.close)).toEqual([ds.length])
    }
    await storage.write(foo, row(5))
    expect(rowsOf(await storage.read(foo)).map((r) => r.close)).toEqual([5])
  })

  it('a table already recorded for two datasets (an old database) is a ConflictError, not shared', async () => {
    const { storage, schema } = open()
    const a = `a${RUN}`
    const b = `b${RUN}`
    await storage.write(a, row(1))
    await storage.write(b, row(2))
    await pool!.query(`UPDATE "${schema}".friday_datasets SET table_name = $2 WHERE name = $1`, [b, await tableOf(schema, a)])
    const fresh = createPostgresStorage({ pool: pool as unknown as PgPoolLike, schema })
    await expect(fresh.read(b)).rejects.toBeInstanceOf(ConflictError)
    await expect(fresh.write(a, row(3))).rejects.toBeInstanceOf(ConflictError)
    // nothing was written to the shared table
    const stored = await pool!.query(`SELECT close FROM "${schema}"."${await tableOf(schema, a)}"`)
    expect(stored.rows.map((r) => r.close)).toEqual([1])
  })
})
