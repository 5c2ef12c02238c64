/**
 * Row retention with archiving on PostgreSQL, exact and re-runnable (issue 17): rows older than
 * a cutoff are archived, then deleted, and the archive holds exactly the rows deleted.
 *
 * - A retention cut (`friday_retention`: dataset, cut id, cutoff, progress) is recorded before
 *   the first archive is written. A run that finds an unfinished cut (the last one crashed)
 *   finishes it first, under its cutoff and names, before starting a new one.
 * - Rows are read in key order, `batchSize` at a time, with their `xmin` (the version of the
 *   row). Batch `n` of cut `c` is archived under the name `c-<n>`: a re-run writes the same name
 *   again (replacing it), never a second copy.
 * - The batch is then deleted in one transaction, by key *and* version: a row upserted after it
 *   was archived has another version and stays (the next run archives its new value). Should
 *   any row of the batch stay, the batch's archive is rewritten with the rows deleted only, in
 *   that transaction before it commits. Partition metadata is updated in the same transaction,
 *   as is the cut's progress.
 */

import { newId } from '../../core/ids.js'
import { sortTable } from '../../core/table.js'
import type { PartitionRef, Table } from '../../core/types.js'
import type { Catalog, DatasetRow } from './catalog.js'
import { type Partitions, refOfDay } from './partitions.js'
import { FIRST_STORABLE_US, selectList, tableFromRows } from './read.js'
import type { Session } from './session.js'
import { tsParam, usOf } from './sql.js'

/** Where expired rows go. `put` of a name already written replaces it. */
export interface RowArchive {
  put(name: string, rows: Table): Promise<void>
  /** Removes what `put(name)` stored; nothing stored under `name` is fine. */
  remove(name: string): Promise<void>
}

export interface ExpireRowsOptions {
  /** Rows with `timestamp < cutoff` (epoch milliseconds) expire. */
  cutoff: number
  /** Archive for the expired rows; without one they are deleted only. */
  archive?: RowArchive
  /** Rows per archive (default 500,000). */
  batchSize?: number
}

export interface ExpireRowsResult {
  rowsExpired: number
  /** Names of the archives written (and kept), in order. */
  archives: string[]
  partitions: PartitionRef[]
}

interface Cut {
  id: string
  cutoffUs: number
  next: number
  after: [string, string] | null
  resumed: boolean
}

const CUT_COLUMNS = `dataset text COLLATE "C" PRIMARY KEY, cut_id text NOT NULL, cutoff timestamptz NOT NULL,
  next_batch integer NOT NULL DEFAULT 0, after_symbol text COLLATE "C", after_ts timestamptz`

export class Retention {
  constructor(
    private readonly session: Session,
    private readonly catalog: Catalog,
    private readonly partitions: Partitions,
  ) {}

  private get cuts(): string {
    return this.catalog.qualifiedName('friday_retention')
  }

  /** Archives then deletes the rows of `ds` older than the cutoff (see the file comment). */
  async expire(ds: DatasetRow, options: ExpireRowsOptions): Promise<ExpireRowsResult> {
    const out: ExpireRowsResult = { rowsExpired: 0, archives: [], partitions: [] }
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 500_000))
    // no stored row lies before FIRST: an earlier cutoff means the same (and PostgreSQL could not parse it)
    const cutoffUs = Math.max(Math.floor(options.cutoff) * 1000, FIRST_STORABLE_US)
    const archive = options.archive
    if (!archive) {
      await this.deleteBatch(ds, null, cutoffUs, out)
      return out
    }
    await this.catalog.ensureTable(this.cuts, CUT_COLUMNS)
    for (let round = 0; round < 2; round++) {
      const cut = await this.openCut(ds.name, cutoffUs)
      if (!cut) return out
      await this.runCut(ds, cut, archive, batchSize, out)
      if (!cut.resumed) break // a finished crashed cut is followed by this run's own
    }
    return out
  }

  /** The unfinished cut of the dataset, or a new one when there are expired rows. */
  private async openCut(dataset: string, cutoffUs: number): Promise<Cut | null> {
    const s = this.session
    const parse = (r: any, resumed: boolean): Cut => ({
      id: r.cut_id,
      cutoffUs: Number(r.cutoff_us),
      next: Number(r.next_batch),
      after: r.after_symbol === null ? null : [r.after_symbol, r.after_ts],
      resumed,
    })
    const cols = `cut_id, ${usOf('cutoff')} AS cutoff_us, next_batch, after_symbol, ${usOf('after_ts')}::text AS after_us, after_ts::text AS after_ts`
    const old = await s.run(s.pool, 'head', `SELECT ${cols} FROM ${this.cuts} WHERE dataset = $1`, [dataset])
    if (old.rows.length) return parse(old.rows[0], true)
    const created = await s.run(
      s.pool,
      'put',
      `INSERT INTO ${this.cuts} (dataset, cut_id, cutoff) VALUES ($1, $2, $3::timestamptz)
       ON CONFLICT (dataset) DO NOTHING RETURNING ${cols}`,
      [dataset, newId(), tsParam(cutoffUs)],
    )
    if (created.rows.length) return parse(created.rows[0], false)
    const other = await s.run(s.pool, 'head', `SELECT ${cols} FROM ${this.cuts} WHERE dataset = $1`, [dataset])
    return other.rows.length ? parse(other.rows[0], true) : null
  }

  private async runCut(ds: DatasetRow, cut: Cut, archive: RowArchive, batchSize: number, out: ExpireRowsResult) {
    const s = this.session
    const table = this.catalog.dataTable(ds)
    for (;;) {
      const fresh = (await this.catalog.load(s.pool, ds.name)) ?? ds
      const values: unknown[] = [tsParam(cut.cutoffUs)]
      let cond = 't."timestamp" < $1::timestamptz'
      if (cut.after) {
        values.push(cut.after[0], cut.after[1])
        cond += ` AND (t.symbol, t."timestamp") > ($2::text, $3::timestamptz)`
      }
      values.push(batchSize)
      const res = await s.run(
        s.pool,
        'get',
        `SELECT ${selectList(fresh.schema)}, t.xmin::text, t."timestamp"::text FROM ${table} t WHERE ${cond}
         ORDER BY t.symbol, t."timestamp" LIMIT $${values.length}`,
        values,
        true,
      )
      const name = `${cut.id}-${String(cut.next).padStart(4, '0')}`
      const last = res.rows.length < batchSize
      if (!res.rows.length) {
        if (cut.resumed) await archive.remove(name) // written by the crashed run, its rows gone since
        await s.run(s.pool, 'delete', `DELETE FROM ${this.cuts} WHERE dataset = $1 AND cut_id = $2`, [ds.name, cut.id])
        return
      }
      const n = fresh.schema.length
      const rows = res.rows as unknown[][]
      await archive.put(name, sortTable(tableFromRows(fresh.schema, rows))) // the contract's order within the file
      const kept = await this.deleteBatch(fresh, { rows, n, cut, last, name, archive }, cut.cutoffUs, out)
      if (kept !== -1) out.archives.push(name)
      if (last) return
      cut.next++
      const end = rows[rows.length - 1]
      cut.after = [end[0] as string, end[n + 1] as string]
    }
  }

  /**
   * One transaction: deletes the batch's rows whose version is unchanged (all rows before the
   * cutoff when `batch` is null), rewrites the archive if some stayed, updates partitions and
   * the cut. Returns -1 when no row of the batch was deleted (its archive removed), else 0.
   */
  private async deleteBatch(
    ds: DatasetRow,
    batch: { rows: unknown[][]; n: number; cut: Cut; last: boolean; name: string; archive: RowArchive } | null,
    cutoffUs: number,
    out: ExpireRowsResult,
  ): Promise<number> {
    const s = this.session
    return s.transaction(async (db) => {
      const row = await this.catalog.load(db, ds.name, 'SHARE')
      if (!row) return -1
      const table = this.catalog.dataTable(row)
      let symbols: string[] | null = null
      let where = 't."timestamp" < $1::timestamptz'
      const values: unknown[] = [tsParam(cutoffUs)]
      if (batch) {
        const { rows, n } = batch
        symbols = [...new Set(rows.map((r) => r[0] as string))]
        values.push(
          rows.map((r) => r[0]),
          rows.map((r) => r[n + 1]),
          rows.map((r) => r[n]),
        )
        where = `t.symbol = k.s AND t."timestamp" = k.ts AND t.xmin::text = k.x AND t."timestamp" < $1::timestamptz`
      }
      let minUs = Number.NEGATIVE_INFINITY
      if (batch) {
        minUs = Number.POSITIVE_INFINITY
        for (const r of batch.rows) minUs = Math.min(minUs, Number(r[1]))
      }
      const locked = await this.partitions.lockOverlapping(db, row, symbols, minUs, cutoffUs - 1)
      const res = await s.run(
        db,
        'delete',
        `WITH d AS (DELETE FROM ${table} t ${batch ? 'USING unnest($2::text[], $3::timestamptz[], $4::text[]) AS k(s, ts, x)' : ''}
                    WHERE ${where}
                    RETURNING t.symbol, t."timestamp")
         SELECT symbol, ${usOf('"timestamp"')} AS us, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day FROM d`,
        values,
      )
      let status = 0
      if (batch && res.rows.length < batch.rows.length) {
        // some rows changed after they were archived: the archive keeps only the rows deleted
        const gone = new Set(res.rows.map((r) => `${r.symbol}\u0000${r.us}`))
        const rows = batch.rows.filter((r) => gone.has(`${r[0]}\u0000${r[1]}`))
        if (rows.length) await batch.archive.put(batch.name, sortTable(tableFromRows(row.schema, rows)))
        else {
          await batch.archive.remove(batch.name)
          status = -1
        }
      }
      const refs = new Map<string, PartitionRef>()
      for (const r of res.rows) {
        const ref = refOfDay(row.partitionBy, r.symbol, r.day)
        refs.set(ref.path, ref)
      }
      const lockedPaths = new Set(locked.map((r) => r.path))
      const sorted = [...refs.values()].sort((a, b) => (a.path < b.path ? -1 : 1))
      await this.partitions.lock(
        db,
        row,
        sorted.filter((r) => !lockedPaths.has(r.path)),
      )
      await this.partitions.commit(
        db,
        row,
        sorted.map((r) => r.path),
        newId(),
      )
      if (batch) {
        const { cut, last, rows, n } = batch
        const end = rows[rows.length - 1]
        if (last) await s.run(db, 'delete', `DELETE FROM ${this.cuts} WHERE dataset = $1 AND cut_id = $2`, [row.name, cut.id])
        else
          await s.run(
            db,
            'put',
            `UPDATE ${this.cuts} SET next_batch = $3, after_symbol = $4, after_ts = $5::timestamptz WHERE dataset = $1 AND cut_id = $2`,
            [row.name, cut.id, cut.next + 1, end[0], end[n + 1]],
          )
      }
      out.rowsExpired += res.rows.length
      for (const ref of sorted) if (!out.partitions.some((p) => p.path === ref.path)) out.partitions.push(ref)
      return status
    })
  }
}
