/**
 * The metadata tables of the Postgres backend and the per-dataset data tables.
 *
 * - `friday_datasets`: one row per dataset: its schema (the source of truth, like the lake's
 *   `_dataset.json`), partitioning and data table name.
 * - `friday_partitions`: one row per (dataset, partition path): version, commit id, rows,
 *   canonical bytes, min/max µs, checksum and symbols; updated in the data's transaction.
 * - `friday_appends`: written by earlier versions (fingerprints of committed appends); no longer
 *   used (`append-check.ts` compares values instead) and left alone where it exists.
 * - `ds_<dataset>` (see `tableNameOf`; the catalog records each dataset's table): the rows,
 *   primary key (symbol, timestamp), symbol in the "C" collation so ORDER BY matches the
 *   contract's code-unit order for BMP symbols.
 */

import { ConflictError } from '../../core/errors.js'
import type { PartitionKey } from '../../core/partitioning.js'
import type { ColumnSchema, Schema } from '../../core/types.js'
import type { PgQueryable } from './pool-types.js'
import type { Session } from './session.js'
import { ident, indexNamesOf, qualified, SQL_TYPES, tableNameOf } from './sql.js'

export interface DatasetRow {
  name: string
  table: string
  schema: Schema
  partitionBy: PartitionKey[]
}

export class Catalog {
  readonly datasets: string
  readonly partitions: string
  /** `server_version_num` (e.g. 150004), known after `setup()`; 0 before. */
  serverVersion = 0

  constructor(
    private readonly session: Session,
    readonly schemaName: string,
  ) {
    this.datasets = qualified(schemaName, 'friday_datasets')
    this.partitions = qualified(schemaName, 'friday_partitions')
  }

  /** `"schema"."name"` of a table in this catalog's schema. */
  qualifiedName(name: string): string {
    return qualified(this.schemaName, name)
  }

  dataTable(row: Pick<DatasetRow, 'table'>): string {
    return qualified(this.schemaName, row.table)
  }

  /**
   * Creates the schema and metadata tables if missing, and learns the server version. Idempotent,
   * and safe when several instances start at once: one transaction serialized by an advisory lock.
   */
  async setup(): Promise<void> {
    const s = this.session
    await s.transaction(async (c) => {
      const version = await s.run(c, 'head', `SELECT current_setting('server_version_num')::int AS v`)
      this.serverVersion = Number(version.rows[0].v)
      await s.run(c, 'head', 'SELECT pg_advisory_xact_lock(hashtext($1))', [`friday.postgres.setup:${this.schemaName}`])
      const exists = await s.run(c, 'head', 'SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schemaName])
      if (!exists.rows.length) await s.run(c, 'put', `CREATE SCHEMA IF NOT EXISTS ${ident(this.schemaName)}`)
      await s.run(
        c,
        'put',
        `CREATE TABLE IF NOT EXISTS ${this.datasets} (
          name text COLLATE "C" PRIMARY KEY,
          table_name text NOT NULL,
          schema jsonb NOT NULL,
          partition_by jsonb NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now()
        )`,
      )
      await s.run(
        c,
        'put',
        `CREATE TABLE IF NOT EXISTS ${this.partitions} (
          dataset text COLLATE "C" NOT NULL REFERENCES ${this.datasets} (name) ON DELETE CASCADE,
          path text COLLATE "C" NOT NULL,
          symbol text COLLATE "C",
          period text,
          lo timestamptz,
          hi timestamptz,
          version integer NOT NULL DEFAULT 0,
          commit_id text,
          committed_at timestamptz,
          rows bigint NOT NULL DEFAULT 0,
          bytes bigint NOT NULL DEFAULT 0,
          min_ts bigint,
          max_ts bigint,
          checksum text,
          symbols text[] NOT NULL DEFAULT '{}',
          PRIMARY KEY (dataset, path)
        )`,
      )
    })
  }

  private readonly extras = new Map<string, Promise<void>>()

  /**
   * Creates an auxiliary table (`CREATE TABLE IF NOT EXISTS <name> (<columns>)`) the first time a
   * feature needs it, once per instance, serialized across instances by an advisory lock; a
   * failure is retried on the next call. Call after `setup()`.
   */
  ensureTable(table: string, columns: string): Promise<void> {
    let p = this.extras.get(table)
    if (!p) {
      const s = this.session
      p = s
        .transaction(async (c) => {
          await s.run(c, 'head', 'SELECT pg_advisory_xact_lock(hashtext($1))', [`friday.postgres.setup:${this.schemaName}`])
          await s.run(c, 'put', `CREATE TABLE IF NOT EXISTS ${table} (${columns})`)
        })
        .catch((err) => {
          this.extras.delete(table)
          throw err
        })
      this.extras.set(table, p)
    }
    return p
  }

  private parse(r: { name: string; table_name: string; schema: Schema; partition_by: PartitionKey[] }): DatasetRow {
    return { name: r.name, table: r.table_name, schema: r.schema, partitionBy: r.partition_by }
  }

  /**
   * The dataset row, optionally locked (`SHARE` by writers, `UPDATE` to change the schema). A
   * data table recorded for more than one dataset (possible in databases written before table
   * names were made unique) is a `ConflictError`: never read or written as if it were one's own.
   */
  async load(db: PgQueryable, name: string, lock?: 'SHARE' | 'UPDATE'): Promise<DatasetRow | null> {
    const res = await this.session.run(
      db,
      'head',
      `SELECT d.name, d.table_name, d.schema, d.partition_by,
              (SELECT array_agg(o.name ORDER BY o.name) FROM ${this.datasets} o WHERE o.table_name = d.table_name AND o.name <> d.name) AS sharers
       FROM ${this.datasets} d WHERE d.name = $1${lock ? ` FOR ${lock} OF d` : ''}`,
      [name],
    )
    if (!res.rows.length) return null
    const sharers = res.rows[0].sharers as string[] | null
    if (sharers?.length) {
      throw new ConflictError(
        `dataset '${name}' shares its table ${res.rows[0].table_name} with ${sharers.map((n) => `'${n}'`).join(', ')}: refusing to mix their rows`,
        { dataset: name, table: res.rows[0].table_name, sharedWith: sharers },
      )
    }
    return this.parse(res.rows[0])
  }

  async names(db: PgQueryable): Promise<string[]> {
    const res = await this.session.run(db, 'list', `SELECT name FROM ${this.datasets}`)
    return res.rows.map((r) => r.name as string).sort()
  }

  /** True when `relation` exists in the schema (table, index, ...) or is some dataset's table. */
  private async taken(db: PgQueryable, relation: string): Promise<boolean> {
    const res = await this.session.run(
      db,
      'head',
      `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2
       UNION ALL SELECT 1 FROM ${this.datasets} WHERE table_name = $2`,
      [this.schemaName, relation],
    )
    return res.rows.length > 0
  }

  /**
   * Creates the dataset row and its data table (inside the caller's transaction) unless another
   * transaction did; returns the row locked FOR UPDATE, and whether this transaction created the
   * table (then it is empty and invisible to everyone else until commit). The table gets a name
   * no other dataset or relation has (`tableNameOf`, its hashed form when the plain one is
   * taken); an existing relation is never reused.
   */
  async create(
    db: PgQueryable,
    name: string,
    schema: Schema,
    partitionBy: PartitionKey[],
  ): Promise<{ row: DatasetRow; created: boolean }> {
    const s = this.session
    let table = await tableNameOf(name)
    const pick = async () => {
      if (!(await this.taken(db, table))) return
      table = await tableNameOf(name, true)
      if (await this.taken(db, table)) {
        throw new ConflictError(`dataset '${name}': its table names ${table} and the plain one are both taken`, {
          dataset: name,
          table,
        })
      }
    }
    const exists = await this.load(db, name)
    if (!exists) await pick()
    const inserted = await s.run(
      db,
      'put',
      `INSERT INTO ${this.datasets} (name, table_name, schema, partition_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO NOTHING RETURNING name`,
      [name, table, JSON.stringify(schema), JSON.stringify(partitionBy)],
    )
    if (inserted.rows.length) {
      const cols = schema
        .filter((c) => c.name !== 'symbol' && c.name !== 'timestamp')
        .map((c) => `, ${ident(c.name)} ${SQL_TYPES[c.type]}`)
        .join('')
      const t = qualified(this.schemaName, table)
      const index = indexNamesOf(table)
      try {
        await s.run(
          db,
          'put',
          `CREATE TABLE ${t} (symbol text COLLATE "C" NOT NULL, "timestamp" timestamptz NOT NULL${cols},
           CONSTRAINT ${ident(index.pkey)} PRIMARY KEY (symbol, "timestamp"))`,
        )
        if (partitionBy[0] !== 'symbol') {
          await s.run(db, 'put', `CREATE INDEX ${ident(index.ts)} ON ${t} ("timestamp")`)
        }
      } catch (err) {
        const sqlstate = (err as { details?: { sqlstate?: string } }).details?.sqlstate
        if (sqlstate !== '42P07' && sqlstate !== '23505') throw err
        // another transaction took the name meanwhile: fail rather than share (a retry picks another)
        throw new ConflictError(`dataset '${name}': table ${table} was created by someone else meanwhile; retry`, {
          dataset: name,
          table,
        })
      }
    }
    const row = await this.load(db, name, 'UPDATE')
    if (!row) throw new Error(`dataset ${name} vanished while being created`)
    return { row, created: inserted.rows.length > 0 }
  }

  /** Adds columns to the data table and the dataset schema; the caller holds the row FOR UPDATE. */
  async addColumns(db: PgQueryable, row: DatasetRow, columns: ColumnSchema[]): Promise<DatasetRow> {
    const s = this.session
    const add = columns.filter((c) => !row.schema.some((x) => x.name === c.name))
    if (!add.length) return row
    await s.run(
      db,
      'put',
      `ALTER TABLE ${this.dataTable(row)} ${add.map((c) => `ADD COLUMN IF NOT EXISTS ${ident(c.name)} ${SQL_TYPES[c.type]}`).join(', ')}`,
    )
    const schema = [...row.schema, ...add]
    await s.run(db, 'put', `UPDATE ${this.datasets} SET schema = $2 WHERE name = $1`, [row.name, JSON.stringify(schema)])
    return { ...row, schema }
  }
}
