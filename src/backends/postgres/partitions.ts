/**
 * Partition metadata of the Postgres backend: the lake's partitioning (symbol + UTC date by
 * default) applied to table rows. Writers lock the `friday_partitions` rows they touch (in path
 * order, so concurrent writers do not deadlock), change the data, then recompute each touched
 * partition's rows, canonical bytes, min/max and checksum from the data and bump its version,
 * all in the data's transaction.
 */

import { isoOrNull } from '../../core/describe.js'
import { type PartitionKey, pathOf, timeRangeOf } from '../../core/partitioning.js'
import type { PartitionInfo, PartitionManifest, PartitionRef, Schema } from '../../core/types.js'
import type { Catalog, DatasetRow } from './catalog.js'
import type { PgQueryable } from './pool-types.js'
import type { Session } from './session.js'
import { rowTextExpr, tsParam, usOf } from './sql.js'

export interface PartitionRow {
  path: string
  symbol: string | null
  period: string | null
  version: number
  commitId: string | null
  committedAt: string | null
  rows: number
  bytes: number
  minTs: number | null
  maxTs: number | null
  checksum: string | null
  symbols: string[]
}

export const PARTITION_COLUMNS =
  'path, symbol, period, version, commit_id, committed_at, rows, bytes, min_ts, max_ts, checksum, symbols'

export function parsePartitionRow(r: any): PartitionRow {
  return {
    path: r.path,
    symbol: r.symbol,
    period: r.period,
    version: Number(r.version),
    commitId: r.commit_id,
    committedAt: r.committed_at === null ? null : new Date(r.committed_at).toISOString(),
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    minTs: r.min_ts === null ? null : Number(r.min_ts),
    maxTs: r.max_ts === null ? null : Number(r.max_ts),
    checksum: r.checksum,
    symbols: [...(r.symbols as string[])].sort(),
  }
}

/** The partition values of a metadata row. */
export function refOfRow(partitionBy: PartitionKey[], row: Pick<PartitionRow, 'symbol' | 'period'>): PartitionRef {
  const values: Record<string, string> = {}
  for (const k of partitionBy) values[k] = k === 'symbol' ? (row.symbol as string) : (row.period as string)
  return { values, path: pathOf(partitionBy, values) }
}

/** The partition of a row given its symbol and UTC day `YYYY-MM-DD`. */
export function refOfDay(partitionBy: PartitionKey[], symbol: string, day: string): PartitionRef {
  const values: Record<string, string> = {}
  for (const k of partitionBy) values[k] = k === 'symbol' ? symbol : k === 'date' ? day : day.slice(0, 7)
  return { values, path: pathOf(partitionBy, values) }
}

/** SQL condition: table row `t` belongs to the partition of metadata row `alias`. */
function memberOf(partitionBy: PartitionKey[], alias: string): string {
  const conds: string[] = []
  if (partitionBy.includes('symbol')) conds.push(`t.symbol = ${alias}.symbol`)
  if (partitionBy.includes('date') || partitionBy.includes('month'))
    conds.push(`t."timestamp" >= ${alias}.lo AND t."timestamp" < ${alias}.hi`)
  return conds.join(' AND ') || 'true'
}

/**
 * A subquery computing the stats of the partition of metadata row `alias` from its rows: count,
 * canonical bytes, min/max µs, `sha256:` of the concatenated per-row SHA-256 digests in key
 * order, symbols (sorted). The inner `OFFSET 0` keeps the row text a computed column, built once per row
 * (inlined, it would be built once for the size and again for the digest).
 */
export function statsSubquery(catalog: Catalog, ds: DatasetRow, alias = 'pp'): string {
  // partitioned by symbol, every row has the partition's symbol: no need to sort them for DISTINCT
  const symbols = ds.partitionBy.includes('symbol')
    ? `CASE WHEN count(*) > 0 THEN ARRAY[${alias}.symbol] ELSE '{}' END`
    : `coalesce(array_agg(DISTINCT r.symbol), '{}')`
  return `SELECT count(*)::bigint AS rows,
      coalesce(sum(octet_length(r.line)), 0)::bigint AS bytes,
      ${usOf('min(r.ts)')} AS min_ts, ${usOf('max(r.ts)')} AS max_ts,
      'sha256:' || encode(sha256(coalesce(string_agg(sha256(convert_to(r.line, 'UTF8')), ''::bytea ORDER BY r.symbol, r.ts), ''::bytea)), 'hex') AS checksum,
      ${symbols}::text[] AS symbols
    FROM (SELECT t.symbol, t."timestamp" AS ts, ${rowTextExpr('t', ds.schema)} AS line
          FROM ${catalog.dataTable(ds)} t WHERE ${memberOf(ds.partitionBy, alias)} OFFSET 0) r`
}

export class Partitions {
  constructor(
    private readonly session: Session,
    private readonly catalog: Catalog,
  ) {}

  /**
   * Creates missing metadata rows for `refs` and locks them all FOR UPDATE, in path order.
   * Until the transaction ends no other writer changes these partitions.
   */
  async lock(db: PgQueryable, ds: DatasetRow, refs: PartitionRef[]): Promise<void> {
    if (!refs.length) return
    const sorted = [...new Map(refs.map((r) => [r.path, r])).values()].sort((a, b) => (a.path < b.path ? -1 : 1))
    const paths = sorted.map((r) => r.path)
    const symbols = sorted.map((r) => r.values.symbol ?? null)
    const periods = sorted.map((r) => r.values.date ?? r.values.month ?? null)
    const ranges = sorted.map((r) => timeRangeOf(r.values))
    const lo = ranges.map(([a]) => (Number.isFinite(a) ? tsParam(a) : null))
    const hi = ranges.map(([, b]) => (Number.isFinite(b) ? tsParam(b) : null))
    const P = this.catalog.partitions
    await this.session.run(
      db,
      'put',
      `INSERT INTO ${P} (dataset, path, symbol, period, lo, hi)
       SELECT $1, p.path, p.symbol, p.period, p.lo, p.hi
       FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[]) AS p(path, symbol, period, lo, hi)
       ORDER BY p.path COLLATE "C"
       ON CONFLICT (dataset, path) DO NOTHING`,
      [ds.name, paths, symbols, periods, lo, hi],
    )
    await this.session.run(
      db,
      'head',
      `SELECT 1 FROM ${P} WHERE dataset = $1 AND path = ANY($2::text[]) ORDER BY path FOR UPDATE`,
      [ds.name, paths],
    )
  }

  /**
   * Locks the non-empty partitions that may hold rows of `symbols` (null = all) within
   * `[minUs, maxUs]` (µs, inclusive; infinite = open) and returns them.
   */
  async lockOverlapping(
    db: PgQueryable,
    ds: DatasetRow,
    symbols: string[] | null,
    minUs: number,
    maxUs: number,
  ): Promise<PartitionRef[]> {
    const values: unknown[] = [ds.name]
    const conds = ['dataset = $1', 'rows > 0']
    if (symbols) {
      values.push(symbols)
      conds.push(`symbols && $${values.length}::text[]`)
    }
    if (Number.isFinite(minUs)) {
      values.push(minUs)
      conds.push(`max_ts >= $${values.length}`)
    }
    if (Number.isFinite(maxUs)) {
      values.push(maxUs)
      conds.push(`min_ts <= $${values.length}`)
    }
    const res = await this.session.run(
      db,
      'list',
      `SELECT symbol, period FROM ${this.catalog.partitions} WHERE ${conds.join(' AND ')} ORDER BY path FOR UPDATE`,
      values,
    )
    return res.rows.map((r) => refOfRow(ds.partitionBy, r))
  }

  /**
   * Commits the (locked) partitions `paths`: version + 1 and the commit id each, and their stats
   * recomputed from the data (`recompute` false: the write changed no row, the stats stand).
   */
  async commit(db: PgQueryable, ds: DatasetRow, paths: string[], commitId: string, recompute = true): Promise<void> {
    if (!paths.length) return
    const P = this.catalog.partitions
    const stats = recompute
      ? `, (rows, bytes, min_ts, max_ts, checksum, symbols) = (${statsSubquery(this.catalog, ds, 'p')})`
      : ''
    await this.session.run(
      db,
      'put',
      `UPDATE ${P} AS p SET version = p.version + 1, commit_id = $3, committed_at = now()${stats}
       WHERE p.dataset = $1 AND p.path = ANY($2::text[])`,
      [ds.name, [...new Set(paths)], commitId],
    )
  }
}

export function infoOf(partitionBy: PartitionKey[], row: PartitionRow): PartitionInfo {
  return {
    ...refOfRow(partitionBy, row),
    version: row.version,
    rows: row.rows,
    bytes: row.bytes,
    files: row.rows > 0 ? 1 : 0,
    firstTimestamp: isoOrNull(row.minTs),
    lastTimestamp: isoOrNull(row.maxTs),
  }
}

/**
 * The manifest of a partition. There are no files: `files` holds one pseudo-file describing
 * the partition's slice of the table (named `part-<commitId>.parquet` because the manifest
 * format requires that shape; `bytes` = size of the canonical row text, `checksum` = SHA-256
 * over the per-row digests, see `statsSubquery`), or none when the partition is empty.
 */
export function manifestOf(dataset: string, partitionBy: PartitionKey[], schema: Schema, row: PartitionRow): PartitionManifest {
  const committedAt = row.committedAt ?? new Date(0).toISOString()
  const commitId = row.commitId ?? ''
  return {
    format: 'friday.partition-manifest',
    formatVersion: 1,
    dataset,
    partition: refOfRow(partitionBy, row),
    version: row.version,
    commitId,
    committedAt,
    schema,
    files:
      row.rows > 0
        ? [
            {
              name: `part-${commitId}.parquet`,
              rows: row.rows,
              bytes: row.bytes,
              minTs: row.minTs as number,
              maxTs: row.maxTs as number,
              checksum: row.checksum ?? '',
              columns: {},
              symbols: row.symbols,
              createdAt: committedAt,
            },
          ]
        : [],
    rows: row.rows,
    bytes: row.bytes,
    minTs: row.minTs,
    maxTs: row.maxTs,
  }
}
