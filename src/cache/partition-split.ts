/** Table helpers of the read cache: partitioning of a listed path, splitting a read by partition, sizes, copies. */

import { ALLOWED_PARTITIONINGS, groupByPartition, type PartitionKey } from '../core/partitioning.js'
import { take } from '../core/table.js'
import type { Column, Table } from '../core/types.js'

/**
 * The partition keys of a hive path as listed by `listPartitions` (`symbol=AAPL/date=2024-01-02`
 * → `['symbol', 'date']`); null when they are not a partitioning the cache can split by.
 */
export function partitionKeysOf(path: string): PartitionKey[] | null {
  const keys = path.split('/').map((seg) => seg.slice(0, Math.max(0, seg.indexOf('='))))
  const known = ALLOWED_PARTITIONINGS.find((p) => p.length === keys.length && p.every((k, i) => k === keys[i]))
  return known ? [...known] : null
}

/** The cache key part for a column set: `*` for all columns, else the sorted requested non-key columns. */
export function columnsKey(columns: readonly string[] | undefined): string {
  if (columns === undefined) return '*'
  const names = [...new Set(columns)].filter((c) => c !== 'symbol' && c !== 'timestamp').sort()
  return JSON.stringify(names)
}

/**
 * Rows of `table` (sorted by symbol then timestamp) grouped by the partition they belong to, by
 * path. Each group is a copy, so an entry never pins the buffers of a bigger read.
 */
export function splitByPartition(table: Table, partitionBy: PartitionKey[]): Map<string, Table> {
  const out = new Map<string, Table>()
  for (const g of groupByPartition(table, partitionBy)) out.set(g.ref.path, take(table, g.index))
  return out
}

/** Estimated memory of a table: typed arrays by byte length, strings by length plus a pointer each. */
export function tableBytes(table: Table): number {
  let bytes = 0
  for (const col of Object.values(table.columns)) {
    if (col.type !== 'string') {
      bytes += col.values.byteLength + (col.type === 'int64' ? (col.nulls?.byteLength ?? 0) : 0)
      continue
    }
    const v = col.values
    bytes += v.length * 8
    // a run of the same value is usually one string (e.g. the symbol column)
    for (let i = 0; i < v.length; i++) {
      const s = v[i]
      if (s !== null && s !== v[i - 1]) bytes += 16 + s.length * 2
    }
  }
  return Math.ceil(bytes)
}

/** A copy of `table` sharing no array with it. */
export function copyTable(table: Table): Table {
  const columns: Record<string, Column> = {}
  for (const [name, col] of Object.entries(table.columns)) {
    if (col.type === 'int64') columns[name] = { type: 'int64', values: col.values.slice(), nulls: col.nulls?.slice() }
    else columns[name] = { type: col.type, values: col.values.slice() } as Column
  }
  return { length: table.length, schema: table.schema, columns }
}
