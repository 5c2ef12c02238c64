/**
 * The DuckDB side of the comparison: an in-memory instance holding the same bars in a table
 * (loaded untimed with the appender), its partitioned Parquet write (`COPY ... PARTITION_BY`),
 * and full reads of a hive-partitioned Parquet directory.
 */

import { type DuckDBConnection, DuckDBInstance, DuckDBTimestampTZValue, DuckDBTypeId } from '@duckdb/node-api'
import type { Bars } from './data.js'

export interface Duck {
  con: DuckDBConnection
  threads: number
  version: string
  close(): void
}

export async function openDuck(threads: number): Promise<Duck> {
  const instance = await DuckDBInstance.create(':memory:', { threads: String(threads) })
  const con = await instance.connect()
  // strftime on a TIMESTAMPTZ follows the session time zone; the lake partitions by UTC day
  await con.run("SET TimeZone = 'UTC'")
  const v = await con.runAndReadAll("SELECT version() AS v, current_setting('threads') AS t")
  const row = v.getRowObjectsJS()[0] as { v: string; t: number | bigint }
  return {
    con,
    threads: Number(row.t),
    version: row.v,
    close() {
      con.closeSync()
      instance.closeSync()
    },
  }
}

/** Loads the bars into `table` (timestamp as TIMESTAMPTZ, microseconds, like ours). Untimed. */
export async function loadBars(duck: Duck, bars: Bars, table = 'bars'): Promise<void> {
  const { con } = duck
  await con.run(`DROP TABLE IF EXISTS ${table}`)
  await con.run(
    `CREATE TABLE ${table} (symbol VARCHAR, timestamp TIMESTAMPTZ, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE)`,
  )
  const a = await con.createAppender(table)
  const c = bars.columns
  for (let i = 0; i < bars.rows; i++) {
    a.appendVarchar(c.symbol[i])
    a.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(c.timestamp[i]) * 1000n))
    a.appendDouble(c.open[i])
    a.appendDouble(c.high[i])
    a.appendDouble(c.low[i])
    a.appendDouble(c.close[i])
    a.appendDouble(c.volume[i])
    a.endRow()
  }
  a.flushSync()
  a.closeSync()
}

/** DuckDB's equivalent of our write: one directory per (symbol, UTC date). `dir` must not exist. */
export async function copyPartitioned(duck: Duck, dir: string, table = 'bars'): Promise<void> {
  await duck.con.run(
    `COPY (SELECT *, strftime(timestamp, '%Y-%m-%d') AS date FROM ${table}) TO '${dir}' (FORMAT parquet, PARTITION_BY (symbol, date))`,
  )
}

export const hiveSource = (glob: string) => `read_parquet('${glob}', hive_partitioning = true)`

/** Runs `sql` and materializes the whole result in DuckDB's native columnar chunks; returns the row count. */
export async function materialize(duck: Duck, sql: string): Promise<number> {
  const result = await duck.con.run(sql)
  return result.rowCount
}

/**
 * Runs `sql`, then copies every column into JS memory the way ours returns it (Float64Array
 * for numbers, µs Float64Array for timestamps, string[] for strings), chunk by chunk.
 */
export async function materializeToJs(duck: Duck, sql: string): Promise<number> {
  const result = await duck.con.run(sql)
  const n = result.rowCount
  const out: (Float64Array | (string | null)[])[] = []
  for (let j = 0; j < result.columnCount; j++) {
    out.push(result.columnTypeId(j) === DuckDBTypeId.VARCHAR ? new Array<string | null>(n) : new Float64Array(n))
  }
  let off = 0
  for (let c = 0; c < result.chunkCount; c++) {
    const chunk = result.getChunk(c)
    const rows = chunk.rowCount
    for (let j = 0; j < out.length; j++) {
      const vec = chunk.getColumnVector(j)
      const dst = out[j]
      if (Array.isArray(dst)) {
        for (let r = 0; r < rows; r++) dst[off + r] = vec.getItem(r) as string | null
      } else {
        for (let r = 0; r < rows; r++) {
          const v = vec.getItem(r)
          dst[off + r] = toNumber(v)
        }
      }
    }
    off += rows
  }
  if (off !== n) throw new Error(`materializeToJs: copied ${off} of ${n} rows`)
  return n
}

/** A DOUBLE, TIMESTAMPTZ (µs) or DATE (days) value as a number; null as NaN. */
function toNumber(v: unknown): number {
  if (v === null) return Number.NaN
  if (typeof v === 'number') return v
  if (v instanceof DuckDBTimestampTZValue) return Number(v.micros)
  const o = v as { micros?: bigint; days?: number }
  return o.micros !== undefined ? Number(o.micros) : Number(o.days)
}
