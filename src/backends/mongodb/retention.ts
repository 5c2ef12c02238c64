/**
 * Row retention on MongoDB (`maintain()`): rows older than `row_retention_days` are archived as
 * Parquet to `_friday/<dataset>/_archive/rows/<cut>-<seq>.parquet[.gz|.zst]` in the archive store (when
 * one is configured), then deleted. Safe without transactions:
 * - a *cut* (one retention pass with one cutoff) is journaled in `friday_retention`, one document
 *   per dataset: before an archive is stored, its key and the `{ _id, w }` of its rows are
 *   recorded there. A run that died between the archive and the delete is finished by the next
 *   run with the same key and rows: the archive already stored is not written again (each row is
 *   archived once), a missing one is written from those rows as they still are;
 * - the delete matches `{ _id, w }` of the rows archived: a row upserted between the archive and
 *   the delete (new write stamp) stays, and the next batch of the pass archives it anew.
 * Without an archive store rows are deleted directly (nothing to keep). The partitions touched
 * carry a write intent while it runs (see catalog.ts), so the catalog counts what is stored.
 */

import type { Filter, ObjectId } from 'mongodb'
import { codecSuffix, compress } from '../../core/archive-codec.js'
import { CommitConflictError } from '../../core/errors.js'
import { newId } from '../../core/ids.js'
import { rowArchiveRoot } from '../../core/layout.js'
import type { RotationPolicy } from '../../core/rotation-policy.js'
import { sortTable } from '../../core/table.js'
import type {
  DatasetMaintenance,
  MaintenanceOptions,
  MaintenanceReport,
  PartitionRef,
  Schema,
  StoreRequestStats,
} from '../../core/types.js'
import { StepRecorder } from '../../maintenance/op-records.js'
import { emptyDatasetReport, finishReport } from '../../maintenance/report.js'
import { encodeParquet, type ParquetCodecs } from '../../parquet/index.js'
import type { ObjectStore } from '../../stores/types.js'
import { loadDataset, loadPartitions, markPending } from './catalog.js'
import { countRead, countWritten, isDuplicateKey, type MongoContext, rowsCollection } from './context.js'
import { metaId, projectionOf, type RowDoc, TableBuilder } from './documents.js'
import { deleteExact } from './writes.js'

/** The retention journal: one document per dataset with a cut in progress. */
export const RETENTION = 'friday_retention'
/** Rows per archive file (their `{ _id, w }` are journaled: ~50 bytes each). */
const ARCHIVE_ROWS = 50_000

type RowKey = { _id: ObjectId; w: ObjectId | null }

interface CutDoc {
  _id?: ObjectId
  dataset: string
  /** Id of the cut (a ULID): archive keys are `<cut>-<seq>`. */
  cut: string
  /** Rows with `t` below this (epoch µs) expire in this cut. */
  cutoff: number
  /** Number of the next archive of the cut. */
  seq: number
  /** The archive being stored and the rows it holds, until they are deleted. */
  pending: { key: string; rows: RowKey[] } | null
}

export interface RetentionDeps {
  ctx: MongoContext
  backend: string
  policy: RotationPolicy
  archiveStore?: () => ObjectStore
  /** Parquet codecs of the archives (default `jsCodecs()`). */
  archiveCodecs?: ParquetCodecs
  listDatasets(): Promise<string[]>
  stats(): StoreRequestStats
  /** Recomputes and commits partitions' metadata, dropping the intent `writeId`. */
  refresh(ds: string, refs: PartitionRef[], writeId: string): Promise<void>
  /** Settles the partitions of `ds` with stale write intents (see `MongoStorage.gc`); returns their keys. */
  repair(ds: string, dryRun: boolean): Promise<string[]>
}

/** One maintenance run: row retention per dataset (the op-log records and report of `maintainRows`). */
export async function maintainRetention(deps: RetentionDeps, options: MaintenanceOptions): Promise<MaintenanceReport> {
  const { policy } = deps
  const startedAt = new Date()
  const t0 = performance.now()
  const before = deps.stats()
  const rec = new StepRecorder(options.sink, deps.stats)
  const now = options.now ?? Date.now
  const dryRun = options.dryRun ?? false
  const names = options.dataset !== undefined ? [options.dataset] : await deps.listDatasets()
  const reports: DatasetMaintenance[] = []
  const store = policy.rowRetentionMs !== null && !dryRun ? deps.archiveStore?.() : undefined
  try {
    for (const ds of names) {
      const r = emptyDatasetReport(ds)
      reports.push(r)
      await repairDataset(deps, rec, ds, dryRun, r)
      if (policy.rowRetentionMs === null) continue
      const cutoff = now() - policy.rowRetentionMs
      try {
        await rec.step(
          'retention',
          ds,
          () => expireDataset(deps, ds, cutoff * 1000, dryRun, store, r),
          () => ({
            rows: r.rowsExpired,
            bytes: r.archiveBytesWritten,
            details: { rowsExpired: r.rowsExpired, archivesWritten: r.archivesWritten, cutoff: new Date(cutoff).toISOString() },
          }),
        )
      } catch (err) {
        r.errors.push({ partition: null, message: err instanceof Error ? err.message : String(err) })
      }
    }
  } finally {
    await store?.close()
  }
  const report = finishReport(deps.backend, dryRun, startedAt, t0, reports)
  rec.emit('maintain', options.dataset ?? null, startedAt, t0, before, {
    rows: report.totals.rowsExpired,
    details: { dryRun, ...report.totals },
  })
  return report
}

/** Settles partitions a dead writer left (`deps.repair`); a `gc` op record only when it found some or failed. */
async function repairDataset(
  deps: RetentionDeps,
  rec: StepRecorder,
  ds: string,
  dryRun: boolean,
  r: DatasetMaintenance,
): Promise<void> {
  const at = new Date()
  const t0 = performance.now()
  const before = deps.stats()
  try {
    const keys = await deps.repair(ds, dryRun)
    r.partitionsRepaired = keys.length
    if (keys.length)
      rec.emit('gc', ds, at, t0, before, {
        partitions: keys.map((k) => k.slice(ds.length + 1)),
        details: { partitionsRepaired: keys.length },
      })
  } catch (err) {
    r.errors.push({ partition: null, message: err instanceof Error ? err.message : String(err) })
    rec.emit('gc', ds, at, t0, before, { error: err })
  }
}

async function expireDataset(
  deps: RetentionDeps,
  ds: string,
  cutoffUs: number,
  dryRun: boolean,
  store: ObjectStore | undefined,
  r: DatasetMaintenance,
): Promise<void> {
  const { ctx } = deps
  const meta = await loadDataset(ctx, ds)
  if (!meta) return
  const rows = ctx.db.collection<RowDoc>(rowsCollection(ds))
  if (dryRun) {
    ctx.stats.get++
    r.rowsExpired = await rows.countDocuments({ t: { $lt: cutoffUs } })
    return
  }
  if (store) await store.ensureContainer()
  const journal = ctx.db.collection<CutDoc>(RETENTION)
  const id = metaId('retention', ds)
  // a cut a crashed run left is finished first (with its own cutoff), then this run's
  for (let cut = await loadCut(ctx, ds); ; cut = await loadCut(ctx, ds)) {
    if (!cut) {
      const fresh: CutDoc = { dataset: ds, cut: newId(), cutoff: cutoffUs, seq: 0, pending: null }
      ctx.stats.put++
      try {
        await journal.insertOne({ _id: id, ...fresh })
      } catch (err) {
        if (isDuplicateKey(err)) continue // another run started one: finish it
        throw err
      }
      cut = fresh
    }
    await runCut(deps, ds, meta.schema, cut, store, r)
    ctx.stats.delete++
    await journal.deleteOne({ _id: id, cut: cut.cut } as Filter<CutDoc>)
    if (cut.cutoff >= cutoffUs) return
  }
}

async function loadCut(ctx: MongoContext, ds: string): Promise<CutDoc | null> {
  ctx.stats.get++
  const doc = await ctx.db
    .collection<CutDoc>(RETENTION)
    .findOne({ _id: metaId('retention', ds), dataset: ds } as Filter<CutDoc>, { projection: { _id: 0 } })
  if (doc) countRead(ctx, [doc])
  return doc
}

async function runCut(
  deps: RetentionDeps,
  ds: string,
  schema: Schema,
  cut: CutDoc,
  store: ObjectStore | undefined,
  r: DatasetMaintenance,
): Promise<void> {
  const { ctx } = deps
  const rows = ctx.db.collection<RowDoc>(rowsCollection(ds))
  const expired = { symbols: null, start: Number.NEGATIVE_INFINITY, end: cut.cutoff }
  const touched = (await loadPartitions(ctx, ds, expired)).map((m) => ({ values: m.values, path: m.path }))
  const writeId = newId()
  await markPending(ctx, ds, touched, writeId, schema)
  if (!store) {
    ctx.stats.delete++
    r.rowsExpired += (await rows.deleteMany({ t: { $lt: cut.cutoff } })).deletedCount
  } else {
    if (cut.pending) await finishPending(ctx, ds, schema, cut, store, r, deps.archiveCodecs)
    for (;;) {
      ctx.stats.get++
      const docs = await rows
        .find(
          { t: { $lt: cut.cutoff } },
          { projection: { ...projectionOf(schema), _id: 1, w: 1 }, limit: ARCHIVE_ROWS, useBigInt64: true },
        )
        .toArray()
      countRead(ctx, docs)
      if (docs.length === 0) break
      const pending = {
        key: `${rowArchiveRoot(ds)}${cut.cut}-${String(cut.seq).padStart(6, '0')}.parquet${codecSuffix(deps.policy.archiveCodec)}`,
        rows: docs.map((d) => ({ _id: d._id!, w: d.w ?? null })),
      }
      await setPending(ctx, ds, cut, pending)
      await storeArchive(ctx, store, deps.policy, pending.key, schema, docs, r, deps.archiveCodecs)
      await deleteArchived(ctx, ds, cut, r)
    }
  }
  await deps.refresh(ds, touched, writeId)
}

/** Journals the archive about to be stored (compare-and-set on the cut's sequence number). */
async function setPending(ctx: MongoContext, ds: string, cut: CutDoc, pending: NonNullable<CutDoc['pending']>): Promise<void> {
  ctx.stats.put++
  countWritten(ctx, [pending])
  const res = await ctx.db
    .collection<CutDoc>(RETENTION)
    .updateOne({ _id: metaId('retention', ds), cut: cut.cut, seq: cut.seq, pending: null } as Filter<CutDoc>, {
      $set: { pending },
    })
  if (res.matchedCount !== 1) throw new CommitConflictError(`${ds}/retention`, 1) // another run works on the cut
  cut.pending = pending
}

/**
 * A cut's archive journaled by a run that died: if it was stored, its rows are deleted (not
 * archived again); if not, what is still stored of those exact rows is archived, then deleted.
 */
async function finishPending(
  ctx: MongoContext,
  ds: string,
  schema: Schema,
  cut: CutDoc,
  store: ObjectStore,
  r: DatasetMaintenance,
  codecs: ParquetCodecs | undefined,
): Promise<void> {
  const pending = cut.pending!
  ctx.stats.head++
  if (!(await store.head(pending.key))) {
    const want = new Map(pending.rows.map((k) => [k._id.toHexString(), k.w?.toHexString() ?? null]))
    ctx.stats.get++
    const docs = (
      await ctx.db
        .collection<RowDoc>(rowsCollection(ds))
        .find(
          { _id: { $in: pending.rows.map((k) => k._id) } },
          { projection: { ...projectionOf(schema), _id: 1, w: 1 }, useBigInt64: true },
        )
        .toArray()
    ).filter((d) => want.get(d._id!.toHexString()) === (d.w?.toHexString() ?? null))
    countRead(ctx, docs)
    pending.rows = docs.map((d) => ({ _id: d._id!, w: d.w ?? null }))
    if (docs.length) await storeArchive(ctx, store, null, pending.key, schema, docs, r, codecs)
  }
  await deleteArchived(ctx, ds, cut, r)
}

async function storeArchive(
  ctx: MongoContext,
  store: ObjectStore,
  policy: RotationPolicy | null,
  key: string,
  schema: Schema,
  docs: RowDoc[],
  r: DatasetMaintenance,
  codecs: ParquetCodecs | undefined,
): Promise<void> {
  const builder = new TableBuilder(schema, docs.length)
  for (const d of docs) builder.push(d)
  const codec = policy?.archiveCodec ?? codecOfKey(key)
  const bytes = await compress(codec, encodeParquet(sortTable(builder.build()), { codecs }))
  ctx.stats.put++
  await store.put(key, bytes)
  r.archivesWritten++
  r.archiveBytesWritten += bytes.byteLength
}

function codecOfKey(key: string): RotationPolicy['archiveCodec'] {
  return key.endsWith('.gz') ? 'gzip' : key.endsWith('.zst') ? 'zstd' : 'none'
}

/** Deletes the journaled rows in the version archived, then moves the cut to its next archive. */
async function deleteArchived(ctx: MongoContext, ds: string, cut: CutDoc, r: DatasetMaintenance): Promise<void> {
  const rows = ctx.db.collection<RowDoc>(rowsCollection(ds))
  r.rowsExpired += await deleteExact(ctx, rows, cut.pending!.rows)
  ctx.stats.put++
  const res = await ctx.db
    .collection<CutDoc>(RETENTION)
    .updateOne({ _id: metaId('retention', ds), cut: cut.cut, seq: cut.seq } as Filter<CutDoc>, {
      $set: { pending: null, seq: cut.seq + 1 },
    })
  if (res.matchedCount !== 1) throw new CommitConflictError(`${ds}/retention`, 1)
  cut.pending = null
  cut.seq++
}
