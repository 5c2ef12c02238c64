/** Hive partitioning: partition values of a row, their paths, and grouping a batch by partition. */

import { ConfigError } from './errors.js'
import { decodePathValue, encodePathValue } from './keys.js'
import { dayOf, endOfPeriodUs, monthOf, startOfPeriodUs, US_PER_DAY } from './time.js'
import type { PartitionRef, Table } from './types.js'

/** Partition keys. `date` is the UTC day (YYYY-MM-DD), `month` the UTC month (YYYY-MM). */
export type PartitionKey = 'symbol' | 'date' | 'month'

export const ALLOWED_PARTITIONINGS: PartitionKey[][] = [['symbol', 'date'], ['symbol', 'month'], ['date'], ['month'], ['symbol']]

export function checkPartitionBy(p: PartitionKey[]): PartitionKey[] {
  if (!ALLOWED_PARTITIONINGS.some((a) => a.length === p.length && a.every((k, i) => k === p[i]))) {
    throw new ConfigError(`partition_by ${JSON.stringify(p)} is not supported`, [
      { path: 'partition_by', message: `expected one of ${ALLOWED_PARTITIONINGS.map((a) => JSON.stringify(a)).join(', ')}` },
    ])
  }
  return p
}

export function periodOf(key: 'date' | 'month', us: number): string {
  return key === 'date' ? dayOf(us) : monthOf(us)
}

export function pathOf(partitionBy: PartitionKey[], values: Record<string, string>): string {
  return partitionBy.map((k) => `${k}=${k === 'symbol' ? encodePathValue(values[k]) : values[k]}`).join('/')
}

export function refOf(partitionBy: PartitionKey[], values: Record<string, string>): PartitionRef {
  return { values, path: pathOf(partitionBy, values) }
}

const PERIOD_RE = { date: /^\d{4}-\d{2}-\d{2}$/, month: /^\d{4}-\d{2}$/ }

/** Parses a hive path (`symbol=AAPL/date=2024-01-02`) into values; null if it does not fit the partitioning. */
export function parsePath(partitionBy: PartitionKey[], path: string): Record<string, string> | null {
  const segs = path.replace(/\/+$/, '').split('/')
  if (segs.length !== partitionBy.length) return null
  const values: Record<string, string> = {}
  for (let i = 0; i < segs.length; i++) {
    const key = partitionBy[i]
    const prefix = `${key}=`
    if (!segs[i].startsWith(prefix)) return null
    const raw = segs[i].slice(prefix.length)
    try {
      values[key] = key === 'symbol' ? decodePathValue(raw) : raw
    } catch {
      return null
    }
    if (key !== 'symbol' && !PERIOD_RE[key].test(values[key])) return null
    if (key === 'symbol' && encodePathValue(values[key]) !== raw) return null
  }
  return values
}

/** The time range [start, end) in epoch µs covered by a partition (infinite without a period key). */
export function timeRangeOf(values: Record<string, string>): [number, number] {
  const period = values.date ?? values.month
  if (!period) return [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY]
  return [startOfPeriodUs(period), endOfPeriodUs(period)]
}

export interface PartitionGroup {
  ref: PartitionRef
  /** Row indexes of the batch in this partition, in batch order. */
  index: number[]
}

/** Groups the rows of a batch by partition, in order of first appearance. */
export function groupByPartition(table: Table, partitionBy: PartitionKey[]): PartitionGroup[] {
  const sym = table.columns.symbol.values as string[]
  const ts = table.columns.timestamp.values as Float64Array
  const groups = new Map<string, PartitionGroup>()
  let last: PartitionGroup | undefined
  let lastSym = ''
  let lastDay = Number.NaN
  for (let i = 0; i < table.length; i++) {
    // the same symbol on the same UTC day is the same partition under every partitioning
    const day = Math.floor(ts[i] / US_PER_DAY)
    if (last && sym[i] === lastSym && day === lastDay) {
      last.index.push(i)
      continue
    }
    const values: Record<string, string> = {}
    for (const k of partitionBy) values[k] = k === 'symbol' ? sym[i] : periodOf(k, ts[i])
    const path = pathOf(partitionBy, values)
    let g = groups.get(path)
    if (!g) {
      g = { ref: { values, path }, index: [] }
      groups.set(path, g)
    }
    g.index.push(i)
    last = g
    lastSym = sym[i]
    lastDay = day
  }
  return [...groups.values()]
}
