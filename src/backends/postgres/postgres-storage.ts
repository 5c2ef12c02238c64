/**
 * A `StorageDriver` on PostgreSQL (`createPostgresStorage` puts the front on it): one table per dataset, metadata tables for schemas and
 * partitions (see `catalog.ts`). Web-standard: it receives a pool (`pg.Pool` or Neon's `Pool`).
 */

import { DescribeTotals } from '../../core/describe.js'
import type { DriverGc, DriverRead, DriverScan, DriverWrite, StorageDriver } from '../../core/driver.js'
import { ClosedError, ConfigError, ValidationError } from '../../core/errors.js'
import { ALL_ROWS, type TimeSymbolFilter } from '../../core/filter.js'
import { createDataStorage, type FrontedStorage } from '../../core/front.js'
import { newId } from '../../core/ids.js'
import { checkDatasetName } from '../../core/keys.js'
import type { OpLogStore } from '../../core/oplog-types.js'
import { checkPartitionBy, type PartitionKey, parsePath, pathOf } from '../../core/partitioning.js'
import { emptyTable, KEY_SCHEMA, sortTable } from '../../core/table.js'
import type {
  DatasetDescription,
  DeleteResult,
  GcReport,
  InputColumns,
  InputRow,
  PartitionInfo,
  PartitionManifest,
  StoreRequestStats,
  Table,
  VerifyProblem,
  VerifyReport,
  WriteResult,
} from '../../core/types.js'
import { DEFAULT_LIMITS, type InputLimits } from '../../table/limits.js'
import { applyTimeUnit } from '../../table/normalize.js'
import { Catalog, type DatasetRow } from './catalog.js'
import { MERGE_SINCE } from './merge.js'
import { PostgresOpLogStore } from './oplog-store.js'
import {
  infoOf,
  manifestOf,
  PARTITION_COLUMNS,
  type PartitionRow,
  Partitions,
  parsePartitionRow,
  refOfDay,
  statsSubquery,
} from './partitions.js'
import type { PgPoolLike, PgQueryResult } from './pool-types.js'
import {
  codeUnitKey,
  filterSql,
  needsCodeUnitOrder,
  PAST_STORABLE_US,
  projection,
  type RowFilter,
  rowFilter,
  selectList,
  tableFromRows,
} from './read.js'
import { type ExpireRowsOptions, type ExpireRowsResult, Retention } from './retention.js'
import { Session } from './session.js'
import { ReadSnapshot } from './snapshot.js'
import { tsParam } from './sql.js'
import { DEFAULT_TIMEOUTS } from './timeouts.js'
import { BULK_ROWS, prepareBatch, type WriteContext, writeBatch } from './write.js'

export interface PostgresStorageOptions {
  /** A `pg.Pool`, a Neon `Pool`, or anything with `query` and `connect` (see `PgPoolLike`). */
  pool: PgPoolLike
  /** PostgreSQL schema for all tables (default `public`); created if missing. */
  schema?: string
  /** Backend name reported by `storage.backend` (default `postgres`). */
  backend?: string
  /** Partitioning of new datasets, as in the lake (default `['symbol', 'date']`). */
  partitionBy?: PartitionKey[]
  /** `close()` also ends the pool (default false: whoever created the pool ends it). */
  ownsPool?: boolean
  /**
   * Writes of at least this many rows (default 10,000) are loaded into a staging table and merged
   * with set-based statements; smaller ones are sent as `INSERT ... SELECT FROM unnest(...)`
   * statements (fewer round trips). 0 stages every write.
   */
  bulkRows?: number
  /**
   * Load staging tables with a binary `COPY ... FROM STDIN` when the client supports it (`pg`
   * and Neon clients do; default true); false, or a client without it: unnest statements.
   */
  copy?: boolean
  /**
   * How long a `scan` keeps its snapshot (and its pooled connection) while the consumer does not
   * ask for the next batch, in ms (default 60,000; 0: no limit). Past it the connection is
   * released and the scan's next request fails. Set it above the longest time the consumer
   * spends on one batch.
   */
  scanIdleTimeoutMs?: number
  /** Columns per dataset and per write, partitions per write (default `DEFAULT_LIMITS`). */
  limits?: InputLimits
}

type PageRun = (kind: 'get', text: string, values: unknown[], array: boolean) => Promise<PgQueryResult>
const SCHEMA_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const DATASET_TTL_MS = 5_000

/** The PostgreSQL driver: arguments arrive checked by the front (`createPostgresStorage`, `createStorage`). */
export class PostgresStorage implements StorageDriver {
  readonly backend: string
  private readonly session: Session
  private readonly catalog: Catalog
  private readonly partitions: Partitions
  private readonly partitionBy: PartitionKey[]
  private readonly ownsPool: boolean
  private readonly bulkRows: number
  private readonly limits: InputLimits
  private readonly copy: boolean
  private readonly scanIdleTimeoutMs: number
  private ready: Promise<void> | null = null
  private closed = false
  private readonly cache = new Map<string, { row: DatasetRow; at: number }>()

  constructor(options: PostgresStorageOptions) {
    const schema = options.schema ?? 'public'
    if (!SCHEMA_RE.test(schema)) {
      const message = `expected a PostgreSQL schema name (letters, digits, '_'), got ${JSON.stringify(schema)}`
      throw new ConfigError(`postgres schema: ${message}`, [{ path: 'schema', message }])
    }
    if (!options.pool || typeof options.pool.query !== 'function' || typeof options.pool.connect !== 'function') {
      throw new ConfigError('postgres: a pool with query() and connect() is required', [{ path: 'pool', message: 'required' }])
    }
    this.backend = options.backend ?? 'postgres'
    this.partitionBy = checkPartitionBy(options.partitionBy ?? ['symbol', 'date'])
    this.ownsPool = options.ownsPool ?? false
    this.bulkRows = options.bulkRows ?? BULK_ROWS
    if (typeof this.bulkRows !== 'number' || !(this.bulkRows >= 0)) {
      const message = `expected a number >= 0, got ${JSON.stringify(options.bulkRows)}`
      throw new ConfigError(`postgres bulkRows: ${message}`, [{ path: 'bulkRows', message }])
    }
    this.copy = options.copy ?? true
    this.limits = options.limits ?? DEFAULT_LIMITS
    this.scanIdleTimeoutMs = options.scanIdleTimeoutMs ?? DEFAULT_TIMEOUTS.idleInTransactionTimeoutMillis
    const idle = this.scanIdleTimeoutMs
    if (typeof idle !== 'number' || !Number.isInteger(idle) || idle < 0 || idle > 2_147_483_647) {
      const message = `expected a whole number of milliseconds >= 0 (0: no limit), got ${JSON.stringify(options.scanIdleTimeoutMs)}`
      throw new ConfigError(`postgres scanIdleTimeoutMs: ${message}`, [{ path: 'scanIdleTimeoutMs', message }])
    }
    this.session = new Session(options.pool)
    this.catalog = new Catalog(this.session, schema)
    this.partitions = new Partitions(this.session, this.catalog)
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Metadata tables exist (created once per instance; a failure is retried on the next call). */
  private ensureReady(): Promise<void> {
    if (this.closed) throw new ClosedError()
    this.ready ??= this.catalog.setup().catch((err) => {
      this.ready = null
      throw err
    })
    return this.ready
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.ownsPool) await this.session.pool.end?.()
  }

  requestStats(): StoreRequestStats {
    return this.session.stats()
  }

  /** The op log's table in this backend's schema, through this backend's pool (see `oplog-store.ts`). */
  opLogStore(): OpLogStore {
    return new PostgresOpLogStore(this.session, this.catalog.schemaName, () => this.ensureReady())
  }

  /**
   * The dataset row. Reads load it fresh (one indexed lookup) so they see columns other
   * instances added; writes may use a cached copy because they re-check it in their transaction.
   */
  private async dataset(ds: string, fresh = true): Promise<DatasetRow | null> {
    await this.ensureReady()
    const hit = this.cache.get(ds)
    if (!fresh && hit && Date.now() - hit.at < DATASET_TTL_MS) return hit.row
    const row = await this.catalog.load(this.session.pool, ds)
    if (row) this.cache.set(ds, { row, at: Date.now() })
    else this.cache.delete(ds)
    return row
  }

  private context(): WriteContext {
    return {
      session: this.session,
      catalog: this.catalog,
      partitions: this.partitions,
      partitionBy: this.partitionBy,
      newCommitId: newId,
      bulkRows: this.bulkRows,
      copy: this.copy,
      useMerge: this.catalog.serverVersion >= MERGE_SINCE,
      limits: this.limits,
    }
  }

  // ---- writes ----------------------------------------------------------------------------

  async write(name: string, input: InputRow[] | InputColumns | Table, request: DriverWrite): Promise<WriteResult> {
    const data = applyTimeUnit(input, request.timeUnit)
    const mode = request.mode
    const known = await this.dataset(name, false)
    // validate everything before the first statement that writes
    const prepared = prepareBatch(
      data,
      known?.schema ?? null,
      mode,
      this.catalog.serverVersion,
      this.limits,
      known?.partitionBy ?? this.partitionBy,
    )
    if (prepared.table.length === 0) return { rowsWritten: 0, partitions: [] }
    const { result, ds } = await this.session
      .transaction(
        (db) => writeBatch(this.context(), db, name, data, mode, prepared),
        `${mode} of ${prepared.table.length} row(s) into dataset ${name}`,
      )
      .catch((err) => {
        throw refusedByServer(err) ?? err
      })
    this.cache.set(name, { row: ds, at: Date.now() })
    return result
  }

  async delete(name: string, filter: TimeSymbolFilter): Promise<DeleteResult> {
    const f = rowFilter(filter)
    if (!(await this.dataset(name))) return { rowsDeleted: 0, partitions: [] }
    if (f.symbols?.length === 0) return { rowsDeleted: 0, partitions: [] }
    return this.session.transaction(async (db) => {
      const ds = await this.catalog.load(db, name, 'SHARE')
      if (!ds) return { rowsDeleted: 0, partitions: [] }
      const locked = await this.partitions.lockOverlapping(db, ds, f.symbols, f.start, f.end - 1)
      const values: unknown[] = []
      const conds = filterSql(f, values)
      const res = await this.session.run(
        db,
        'delete',
        `WITH d AS (DELETE FROM ${this.catalog.dataTable(ds)} t ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''}
                    RETURNING t.symbol, t."timestamp")
         SELECT symbol, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)::bigint AS n FROM d GROUP BY 1, 2`,
        values,
      )
      const counts = new Map<string, { ref: ReturnType<typeof refOfDay>; n: number }>()
      for (const r of res.rows) {
        const ref = refOfDay(ds.partitionBy, r.symbol, r.day)
        const e = counts.get(ref.path)
        if (e) e.n += Number(r.n)
        else counts.set(ref.path, { ref, n: Number(r.n) })
      }
      const lockedPaths = new Set(locked.map((r) => r.path))
      const refs = [...counts.values()].map((e) => e.ref).sort((a, b) => (a.path < b.path ? -1 : 1))
      await this.partitions.lock(
        db,
        ds,
        refs.filter((r) => !lockedPaths.has(r.path)),
      )
      await this.partitions.commit(
        db,
        ds,
        refs.map((r) => r.path),
        newId(),
      )
      let rowsDeleted = 0
      for (const e of counts.values()) rowsDeleted += e.n
      return { rowsDeleted, partitions: refs }
    }, `delete from dataset ${name}`)
  }

  // ---- reads -----------------------------------------------------------------------------

  async read(dataset: string, options: DriverRead): Promise<Table> {
    const limit = options.limit
    const f = rowFilter(options.filter)
    const ds = await this.dataset(dataset)
    if (!ds) return emptyTable(KEY_SCHEMA)
    const schema = projection(ds.name, ds.schema, options.columns)
    if (limit === 0 || f.symbols?.length === 0) return emptyTable(schema)
    const run = (...q: Parameters<PageRun>) => this.session.run(this.session.pool, ...q)
    const t = await this.page(run, ds, schema, f, limit, null, false)
    if (!needsCodeUnitOrder(t)) return t
    // a symbol that may stand elsewhere in the contract's order: every row read, reorder them here
    if (!Number.isFinite(limit)) return sortTable(t)
    return this.page(run, ds, schema, f, limit, null, true)
  }

  /**
   * One ordered query through `run` (the pool, or a scan's snapshot); `after` = the last key of
   * the previous page (keyset pagination, in the same order as the ORDER BY). `codeUnits`: order
   * symbols by `codeUnitKey` (the contract's order; a sort, no index), else by the primary key
   * ("C": code point order, the same as the contract's unless `needsCodeUnitOrder` says otherwise).
   */
  private async page(
    run: PageRun,
    ds: DatasetRow,
    schema: Table['schema'],
    f: RowFilter,
    limit: number,
    after: [string, number] | null,
    codeUnits: boolean,
  ) {
    const values: unknown[] = []
    const conds = filterSql(f, values)
    const symbol = codeUnits ? codeUnitKey('t.symbol') : 't.symbol'
    if (after) {
      values.push(after[0], tsParam(after[1]))
      const key = codeUnits ? codeUnitKey(`$${values.length - 1}::text`) : `$${values.length - 1}::text`
      conds.push(`(${symbol}, t."timestamp") > (${key}, $${values.length}::timestamptz)`)
    }
    let text = `SELECT ${selectList(schema)} FROM ${this.catalog.dataTable(ds)} t`
    if (conds.length) text += ` WHERE ${conds.join(' AND ')}`
    text += ` ORDER BY ${symbol}, t."timestamp"`
    if (Number.isFinite(limit)) {
      values.push(limit)
      text += ` LIMIT $${values.length}`
    }
    const res = await run('get', text, values, true)
    return tableFromRows(schema, res.rows)
  }

  /**
   * Pages of `batchSize` rows, all read in one snapshot (`snapshot.ts`): one pooled connection
   * in a read-only REPEATABLE READ transaction for the whole scan, so a write committing
   * meanwhile is seen wholly or not at all. The connection is returned when the scan ends, the
   * consumer breaks out or an error ends it; a consumer that neither asks for the next batch nor
   * closes the iterator within `scanIdleTimeoutMs` loses the snapshot (its next request fails).
   */
  async *scan(dataset: string, options: DriverScan): AsyncIterable<Table> {
    const batchSize = options.batchSize
    let remaining = options.limit
    const f = rowFilter(options.filter)
    const ds = await this.dataset(dataset)
    if (!ds || f.symbols?.length === 0 || remaining === 0) return
    const schema = projection(ds.name, ds.schema, options.columns)
    const snap = await ReadSnapshot.open(this.session, this.scanIdleTimeoutMs)
    let failed: unknown
    try {
      let after: [string, number] | null = null
      let codeUnits = false
      const run = (...q: Parameters<PageRun>) => snap.query(...q)
      while (remaining > 0) {
        const want = Math.min(batchSize, remaining)
        let t = await this.page(run, ds, schema, f, want, after, codeUnits)
        if (!codeUnits && needsCodeUnitOrder(t)) {
          // the rows up to `after` stand where they stand in both orders: go on in the contract's
          codeUnits = true
          t = await this.page(run, ds, schema, f, want, after, codeUnits)
        }
        if (t.length === 0) return
        remaining -= t.length
        after = [(t.columns.symbol.values as string[])[t.length - 1], (t.columns.timestamp.values as Float64Array)[t.length - 1]]
        snap.pause()
        yield t
        snap.resume()
        if (t.length < want) return
      }
    } catch (err) {
      failed = err
      throw err
    } finally {
      await snap.close(failed)
    }
  }

  // ---- catalog ---------------------------------------------------------------------------

  async listDatasets(): Promise<string[]> {
    await this.ensureReady()
    return this.catalog.names(this.session.pool)
  }

  private async partitionRows(ds: DatasetRow, filter: TimeSymbolFilter = ALL_ROWS): Promise<PartitionRow[]> {
    const f = rowFilter(filter)
    if (f.symbols?.length === 0) return []
    const values: unknown[] = [ds.name]
    const conds = ['dataset = $1', 'rows > 0']
    if (f.symbols) {
      values.push(f.symbols)
      conds.push(`symbols && $${values.length}::text[]`)
    }
    if (Number.isFinite(f.start)) {
      values.push(f.start)
      conds.push(`max_ts >= $${values.length}`)
    }
    if (Number.isFinite(f.end)) {
      values.push(f.end)
      conds.push(`min_ts < $${values.length}`)
    }
    const res = await this.session.run(
      this.session.pool,
      'list',
      `SELECT ${PARTITION_COLUMNS} FROM ${this.catalog.partitions} WHERE ${conds.join(' AND ')}`,
      values,
    )
    return res.rows.map(parsePartitionRow).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  async describe(dataset: string): Promise<DatasetDescription | null> {
    const ds = await this.dataset(dataset)
    if (!ds) return null
    const totals = new DescribeTotals()
    for (const p of await this.partitionRows(ds)) totals.add(p, p.symbols, 1)
    return totals.describe(ds)
  }

  async listPartitions(dataset: string, filter: TimeSymbolFilter): Promise<PartitionInfo[]> {
    const ds = await this.dataset(dataset)
    if (!ds) return []
    return (await this.partitionRows(ds, filter)).map((p) => infoOf(ds.partitionBy, p))
  }

  async getManifest(dataset: string, partition: Record<string, string> | string): Promise<PartitionManifest | null> {
    const ds = await this.dataset(dataset)
    if (!ds) return null
    let path: string | null = null
    if (typeof partition === 'string') {
      const values = parsePath(ds.partitionBy, partition)
      path = values ? pathOf(ds.partitionBy, values) : null
    } else if (partition && typeof partition === 'object') {
      const ok =
        ds.partitionBy.every((k) => typeof partition[k] === 'string') && Object.keys(partition).length === ds.partitionBy.length
      const candidate = ok ? pathOf(ds.partitionBy, partition) : null
      path = candidate && parsePath(ds.partitionBy, candidate) ? candidate : null
    }
    if (!path) return null
    const res = await this.session.run(
      this.session.pool,
      'get',
      `SELECT ${PARTITION_COLUMNS} FROM ${this.catalog.partitions} WHERE dataset = $1 AND path = $2 AND version > 0`,
      [ds.name, path],
    )
    if (!res.rows.length) return null
    return manifestOf(ds.name, ds.partitionBy, ds.schema, parsePartitionRow(res.rows[0]))
  }

  // ---- maintenance -----------------------------------------------------------------------

  /**
   * Recomputes every non-empty partition's row count, canonical size and checksum from the
   * data and compares them with the metadata; rows outside every partition are reported too.
   */
  async verify(dataset: string | undefined): Promise<VerifyReport> {
    await this.ensureReady()
    const names = dataset === undefined ? await this.listDatasets() : [dataset]
    const report: VerifyReport = { ok: true, datasets: 0, partitions: 0, files: 0, bytes: 0, problems: [] }
    for (const name of names) {
      const ds = await this.dataset(name)
      if (!ds) continue
      report.datasets++
      const res = await this.session.run(
        this.session.pool,
        'get',
        `SELECT pp.path, pp.rows AS meta_rows, pp.bytes AS meta_bytes, pp.checksum AS meta_checksum, st.rows, st.bytes, st.checksum
         FROM ${this.catalog.partitions} pp CROSS JOIN LATERAL (${statsSubquery(this.catalog, ds)}) st
         WHERE pp.dataset = $1 AND pp.rows > 0 ORDER BY pp.path`,
        [ds.name],
      )
      let covered = 0
      for (const r of res.rows) {
        report.partitions++
        report.files++
        report.bytes += Number(r.meta_bytes)
        covered += Number(r.meta_rows)
        const problem = (kind: VerifyProblem['problem'], message: string) =>
          report.problems.push({ dataset: ds.name, partition: r.path, problem: kind, message })
        if (Number(r.rows) !== Number(r.meta_rows))
          problem('row-count-mismatch', `metadata says ${r.meta_rows} rows, the table has ${r.rows}`)
        else if (Number(r.bytes) !== Number(r.meta_bytes))
          problem('size-mismatch', `metadata says ${r.meta_bytes} bytes, the rows make ${r.bytes}`)
        else if (r.checksum !== r.meta_checksum)
          problem('checksum-mismatch', `metadata says ${r.meta_checksum}, the rows give ${r.checksum}`)
      }
      const total = await this.session.run(
        this.session.pool,
        'get',
        `SELECT count(*)::bigint AS n FROM ${this.catalog.dataTable(ds)}`,
      )
      if (Number(total.rows[0].n) !== covered) {
        report.problems.push({
          dataset: ds.name,
          partition: '*',
          problem: 'row-count-mismatch',
          message: `the table has ${total.rows[0].n} rows, the partitions' metadata ${covered}`,
        })
      }
    }
    report.ok = report.problems.length === 0
    return report
  }

  /**
   * Row retention for the maintenance runner: archives (through `options.archive`) then deletes
   * the rows older than `options.cutoff`, exactly: the archives hold exactly the rows deleted, a
   * row changed after it was archived stays for the next run, and a run after a crash finishes
   * the crashed one under the same archive names instead of archiving its rows again
   * (`retention.ts`). Unknown dataset: nothing expired.
   */
  async expireRows(dataset: string, options: ExpireRowsOptions): Promise<ExpireRowsResult> {
    const name = checkDatasetName(dataset)
    if (typeof options?.cutoff !== 'number' || !Number.isFinite(options.cutoff)) {
      throw new ValidationError([{ field: 'cutoff', message: 'expected epoch milliseconds' }])
    }
    if (options.cutoff * 1000 >= PAST_STORABLE_US) {
      throw new ValidationError([{ field: 'cutoff', message: 'expected epoch milliseconds before year 10000' }])
    }
    const ds = await this.dataset(name)
    if (!ds) return { rowsExpired: 0, archives: [], partitions: [] }
    return new Retention(this.session, this.catalog, this.partitions).expire(ds, options)
  }

  /** Nothing to collect: PostgreSQL reclaims space itself (VACUUM); reports zeros. */
  async gc(_request: DriverGc): Promise<GcReport> {
    await this.ensureReady()
    return { filesDeleted: 0, bytesDeleted: 0, keys: [] }
  }
}

/**
 * A write PostgreSQL refused for what the batch holds (its transaction rolled back: nothing
 * stored) as a 400 instead of a 502: a row wider than a heap page (54000: about 1,000 non-null
 * float64/int64/timestamp columns), more columns than a table may have (54011), or a value
 * PostgreSQL cannot take (class 22, data exception). Null for any other failure.
 */
function refusedByServer(err: unknown): ValidationError | null {
  const sqlstate = (err as { details?: { sqlstate?: unknown } })?.details?.sqlstate
  if (typeof sqlstate !== 'string') return null
  const message =
    sqlstate === '54000'
      ? 'a row of this write is too wide for a PostgreSQL table (at most 8,160 bytes of values a row, about 1,000 non-null float64, int64 or timestamp columns): write fewer columns'
      : sqlstate === '54011'
        ? 'the write would give the dataset more columns than a PostgreSQL table may have (1,600 including dropped ones)'
        : sqlstate.startsWith('22')
          ? `PostgreSQL cannot store a value of this write (SQLSTATE ${sqlstate})`
          : null
  return message ? new ValidationError([{ field: sqlstate.startsWith('54') ? 'columns' : 'rows', message }], { sqlstate }) : null
}

/** A Postgres-backed `DataStorage` (the driver behind the front); nothing is contacted until the first call. */
export function createPostgresStorage(options: PostgresStorageOptions): FrontedStorage<PostgresStorage> {
  return createDataStorage(new PostgresStorage(options))
}
