/**
 * An outside reader reads what we write: DuckDB over the local lake's Parquet files (hive
 * partitioning) sees exactly the rows `read()` returns, after upserts and deletes, with the
 * timestamp as TIMESTAMP WITH TIME ZONE and symbols like `EUR/USD` decoded from the path; a
 * dataset whose columns came later needs `union_by_name = true` (without it DuckDB takes the first
 * file's columns and leaves the later ones out).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DataStorage, Table } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { midnight, rowsOf } from './conformance/storage.case.js'

const SYMBOLS = ['AAPL', 'BRK.B', 'EUR/USD', '^GSPC', 'ES=F', '株式']
const DAYS = 5
const BARS_PER_DAY = 180

/** µs timestamp of bar `i` of day `d`: one minute apart from 14:30Z, with odd microseconds. */
function barUs(d: number, i: number): number {
  return (Date.UTC(2024, 0, 2 + d, 14, 30) + i * 60_000) * 1000 + ((i * 37) % 1000)
}

function isoUs(us: number): string {
  const ms = Math.floor(us / 1000)
  return `${new Date(ms).toISOString().slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`
}

let dir: string
let storage: DataStorage
let inst: DuckDBInstance
let con: DuckDBConnection
let expected: Table
let globbedBeforeGc = 0
const dataset = 'bars'

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const r = await con.runAndReadAll(sql)
  return r.getRowObjectsJS() as Record<string, unknown>[]
}

const source = (hive: boolean) => `read_parquet('${dir}/${dataset}/**/*.parquet', hive_partitioning = ${hive})`

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'friday-duckdb-'))
  storage = createStorage(
    { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir, partition_by: ['symbol', 'date'] } } },
    {},
  )
  const rows: Record<string, unknown>[] = []
  for (const [s, symbol] of SYMBOLS.entries())
    for (let d = 0; d < DAYS; d++)
      for (let i = 0; i < BARS_PER_DAY; i++)
        rows.push({
          symbol,
          timestamp: isoUs(barUs(d, i)),
          open: 100 * (s + 1) + d + i / 1000,
          close: 100 * (s + 1) + d + i / 997,
          volume: BigInt(1_000_000 * (s + 1) + d * 1000 + i) * 1_000_000n, // beyond 2^53 once summed
        })
  await storage.write(dataset, rows)
  // an upsert rewriting some rows (AAPL and EUR/USD day 1, first 50 bars)
  await storage.write(
    dataset,
    rows
      .filter((r) => (r.symbol === 'AAPL' || r.symbol === 'EUR/USD') && (r.timestamp as string).startsWith('2024-01-03'))
      .slice(0, 100)
      .map((r) => ({ ...r, close: (r.close as number) + 0.5, volume: (r.volume as bigint) + 1n })),
  )
  // delete one day of every symbol
  await storage.delete(dataset, { start: midnight(3), end: midnight(4) })
  expected = await storage.read(dataset)
  inst = await DuckDBInstance.create()
  con = await inst.connect()
  // Superseded files stay on disk until gc (readers may still hold them); a glob over the
  // directory would read them too. Collect them, as an export for outside readers would.
  globbedBeforeGc = Number((await query(`SELECT count(*) AS n FROM ${source(true)}`))[0].n)
  await storage.gc({ graceMs: 0, dataset })
})

afterAll(async () => {
  con?.closeSync()
  inst?.closeSync()
  await storage?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('DuckDB reads the local lake', () => {
  it('the fixture is what we think it is', () => {
    expect(expected.length).toBe(SYMBOLS.length * (DAYS - 1) * BARS_PER_DAY)
  })

  it('sees the same row count once superseded files are collected', async () => {
    if (globbedBeforeGc !== expected.length)
      console.info(`[duckdb] before gc a glob over the lake saw ${globbedBeforeGc} rows, read() ${expected.length}`)
    const [{ n }] = await query(`SELECT count(*) AS n FROM ${source(true)}`)
    expect(Number(n)).toBe(expected.length)
  })

  it('types the timestamp as TIMESTAMP WITH TIME ZONE and keeps symbol in the file', async () => {
    const cols = await query(`DESCRIBE SELECT * FROM ${source(false)}`)
    const types = Object.fromEntries(cols.map((c) => [c.column_name, c.column_type]))
    expect(types).toMatchObject({
      symbol: 'VARCHAR',
      timestamp: 'TIMESTAMP WITH TIME ZONE',
      open: 'DOUBLE',
      close: 'DOUBLE',
      volume: 'BIGINT',
    })
  })

  it('decodes symbols from the hive path and the file alike', async () => {
    const viaPath = await query(`SELECT DISTINCT symbol FROM ${source(true)} ORDER BY symbol`)
    const viaFile = await query(`SELECT DISTINCT symbol FROM ${source(false)} ORDER BY symbol`)
    expect(viaFile.map((r) => r.symbol)).toEqual([...SYMBOLS].sort())
    expect(viaPath.map((r) => r.symbol)).toEqual([...SYMBOLS].sort())
    // every file's own symbol column agrees with its (percent-encoded) hive path
    const files = await query(
      `SELECT DISTINCT symbol, filename FROM read_parquet('${dir}/${dataset}/**/*.parquet', hive_partitioning = false, filename = true)`,
    )
    expect(files.length).toBeGreaterThan(0)
    for (const f of files) {
      const m = /\/symbol=([^/]+)\//.exec(f.filename as string)
      expect(m, f.filename as string).not.toBeNull()
      expect(decodeURIComponent(m![1])).toBe(f.symbol)
    }
    expect(files.some((f) => (f.filename as string).includes('/symbol=EUR%2FUSD/'))).toBe(true)
  })

  it('per-symbol sums of close and volume and min/max timestamps agree with read()', async () => {
    const duck = await query(
      `SELECT symbol, count(*) AS n, sum(close) AS close_sum, sum(volume) AS volume_sum,
              epoch_us(min(timestamp)) AS min_us, epoch_us(max(timestamp)) AS max_us,
              typeof(min(timestamp)) AS ts_type
       FROM ${source(true)} GROUP BY symbol ORDER BY symbol`,
    )
    const rows = rowsOf(expected)
    const mine = SYMBOLS.map((symbol) => {
      const rs = rows.filter((r) => r.symbol === symbol)
      return {
        symbol,
        n: rs.length,
        close: rs.reduce((s, r) => s + (r.close as number), 0),
        volume: rs.reduce((s, r) => s + (r.volume as bigint), 0n),
        min: Math.min(...rs.map((r) => r.timestamp as number)),
        max: Math.max(...rs.map((r) => r.timestamp as number)),
      }
    }).sort((a, b) => (a.symbol < b.symbol ? -1 : 1))
    expect(duck.map((r) => r.symbol)).toEqual(mine.map((m) => m.symbol))
    for (const [i, m] of mine.entries()) {
      const r = duck[i]
      expect(Number(r.n), m.symbol).toBe(m.n)
      expect(r.close_sum as number, m.symbol).toBeCloseTo(m.close, 6)
      expect(BigInt(r.volume_sum as bigint | number | string), m.symbol).toBe(m.volume)
      expect(Number(r.min_us), m.symbol).toBe(m.min)
      expect(Number(r.max_us), m.symbol).toBe(m.max)
      expect(r.ts_type).toBe('TIMESTAMP WITH TIME ZONE')
    }
  })

  it('every row: epoch_us(timestamp), close and volume identical to read()', async () => {
    const duck = await query(
      `SELECT symbol, epoch_us(timestamp) AS us, open, close, volume FROM ${source(true)} ORDER BY symbol, us`,
    )
    const mine = rowsOf(expected)
    expect(duck.length).toBe(mine.length)
    const diffs: string[] = []
    for (let i = 0; i < mine.length && diffs.length < 5; i++) {
      const a = duck[i]
      const b = mine[i]
      if (
        a.symbol !== b.symbol ||
        BigInt(a.us as bigint) !== BigInt(b.timestamp as number) ||
        a.open !== b.open ||
        a.close !== b.close ||
        BigInt(a.volume as bigint) !== b.volume
      )
        diffs.push(
          `row ${i}: duckdb ${JSON.stringify(a, (_, v) => (typeof v === 'bigint' ? String(v) : v))} vs read ${JSON.stringify(b, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`,
        )
    }
    expect(diffs).toEqual([])
  })
})

describe('DuckDB reads a dataset whose columns came later with union_by_name', () => {
  const evolving = 'evolving'
  let rows: Table

  beforeAll(async () => {
    const day = (d: number, extra: boolean) =>
      SYMBOLS.flatMap((symbol, s) =>
        Array.from({ length: 5 }, (_, i) => ({
          symbol,
          timestamp: isoUs(barUs(d, i)),
          close: s + d + i / 7,
          ...(extra ? { note: i % 2 ? null : `n${s}-${i}`, n: i === 3 ? null : 2n ** 62n + BigInt(i) } : {}),
        })),
      )
    await storage.write(evolving, day(0, false))
    await storage.write(evolving, day(1, true))
    rows = await storage.read(evolving)
  })

  const from = (union: boolean) =>
    `read_parquet('${dir}/${evolving}/**/*.parquet', hive_partitioning = true, union_by_name = ${union})`

  it('every row and column identical to read(), nulls where older files lack the column', async () => {
    const duck = await query(`SELECT symbol, epoch_us(timestamp) AS us, close, note, n FROM ${from(true)} ORDER BY symbol, us`)
    const mine = rowsOf(rows)
    expect(rows.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp', 'close', 'note', 'n'])
    expect(
      duck.map((r) => [r.symbol, BigInt(r.us as bigint), r.close, r.note, r.n === null ? null : BigInt(r.n as bigint)]),
    ).toEqual(mine.map((r) => [r.symbol, BigInt(r.timestamp as number), r.close, r.note, r.n]))
  })

  it('without union_by_name the later columns are missing (the first file decides): the documented trap', async () => {
    const cols = await query(`DESCRIBE SELECT * FROM ${from(false)}`)
    expect(cols.map((c) => c.column_name)).not.toContain('note')
  })
})
