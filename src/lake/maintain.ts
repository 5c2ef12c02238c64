/**
 * One maintenance run over lake datasets: per dataset, under its lease, (1) finish journals a
 * crashed run left and find partitions due under the rotation policy, (2) compact them,
 * archiving the replaced files, (3) row retention (rows past `row_retention_days` are removed,
 * the files they were in archived) and archive retention, (4) gc of orphan data files past the
 * grace period. Each step reports to the op-log sink; the run returns a `MaintenanceReport`.
 */

import pLimit from 'p-limit'
import { runAll } from '../concurrency.js'
import { StorageError } from '../core/errors.js'
import { newId } from '../core/ids.js'
import { evaluate, type RotationPolicy } from '../core/rotation-policy.js'
import type {
  CompactedPartition,
  DatasetMaintenance,
  MaintenanceOptions,
  MaintenanceReport,
  PartitionManifest,
  PartitionRef,
} from '../core/types.js'
import { StepRecorder } from '../maintenance/op-records.js'
import { emptyDatasetReport, finishReport } from '../maintenance/report.js'
import { expireArchives } from './archive-retention.js'
import { compactionPlanner, rewriteWithArchive } from './compaction.js'
import { type DatasetDoc, type LakeContext, manifestBase } from './context.js'
import { finishJournal, listJournals } from './journal.js'
import { Lease } from './lease.js'
import { collectGarbage } from './maintenance.js'
import { rewritePlanner } from './planners.js'
import { findPartitions } from './read-path.js'

/** A lease outlives a crashed run by this long; a live run renews it every third of it. */
export const LEASE_TTL_MS = 10 * 60_000
/** Partitions compacted at once by one run. */
const COMPACT_CONCURRENCY = 4

interface Run {
  ctx: LakeContext
  policy: RotationPolicy
  rec: StepRecorder
  now: () => number
  dryRun: boolean
  owner: string
  options: MaintenanceOptions
}

export async function maintainLake(
  ctx: LakeContext,
  backend: string,
  policy: RotationPolicy,
  datasets: DatasetDoc[],
  options: MaintenanceOptions,
): Promise<MaintenanceReport> {
  const startedAt = new Date()
  const t0 = performance.now()
  const before = ctx.store.stats()
  const run: Run = {
    ctx,
    policy,
    rec: new StepRecorder(options.sink, () => ctx.store.stats()),
    now: options.now ?? Date.now,
    dryRun: options.dryRun ?? false,
    owner: options.owner ?? `maintain-${newId()}`,
    options,
  }
  const reports: DatasetMaintenance[] = []
  for (const doc of datasets) reports.push(await maintainDataset(run, doc))
  const report = finishReport(backend, run.dryRun, startedAt, t0, reports)
  run.rec.emit('maintain', options.dataset ?? null, startedAt, t0, before, {
    partitions: reports.flatMap((r) => r.compacted.map((c) => c.partition)),
    bytes: report.totals.bytesBefore - report.totals.bytesAfter,
    details: { dryRun: run.dryRun, ...report.totals, skipped: reports.filter((r) => r.skipped).map((r) => r.dataset) },
    error: reports.some((r) => r.errors.length)
      ? new StorageError(500, 'maintenance_errors', reports.flatMap((r) => r.errors.map((e) => e.message)).join('; '))
      : undefined,
  })
  return report
}

async function maintainDataset(run: Run, doc: DatasetDoc): Promise<DatasetMaintenance> {
  const { ctx, rec, dryRun } = run
  const ds = doc.name
  const r = emptyDatasetReport(ds)
  let lease: Lease | null = null
  if (!dryRun) {
    const got = await Lease.acquire(ctx, ds, run.owner, run.options.leaseTtlMs ?? LEASE_TTL_MS)
    if (!got.lease) {
      r.skipped = `lease held by ${got.held.owner} until ${new Date(got.held.expiresAt).toISOString()}`
      return r
    }
    lease = got.lease
  }
  const fail = (partition: string | null, err: unknown) =>
    r.errors.push({ partition, message: err instanceof Error ? err.message : String(err) })
  try {
    // 1. rotate: finish what a crashed run left, then find the partitions over the threshold
    const due = await rec.step(
      'rotate',
      ds,
      async () => {
        if (!dryRun) {
          for (const j of await listJournals(ctx, ds)) {
            const done = await finishJournal(ctx, j, run.now())
            if (done.committed) r.resumed++
            r.archivesWritten += done.archived.length
            r.archiveBytesWritten += done.archived.reduce((s, e) => s + e.storedBytes, 0)
          }
        }
        if (!run.policy.enabled) return [] as { ref: PartitionRef; m: PartitionManifest; reason: string }[]
        const refs = await findPartitions(ctx, ds, doc.partitionBy, {
          symbols: null,
          start: Number.NEGATIVE_INFINITY,
          end: Number.POSITIVE_INFINITY,
        })
        const loaded = await runAll(refs, ctx.concurrency, async (ref) => ({
          ref,
          m: (await ctx.log.load<PartitionManifest>(manifestBase(ds, ref.path))).doc,
        }))
        const out: { ref: PartitionRef; m: PartitionManifest; reason: string }[] = []
        for (const { ref, m } of loaded) {
          if (!m || m.files.length === 0) continue
          r.partitionsChecked++
          const d = evaluate(m, run.policy, run.now())
          if (d.due) out.push({ ref, m, reason: d.reason })
        }
        return out
      },
      (out) => ({
        partitions: out.map((d) => d.ref.path),
        details: { checked: r.partitionsChecked, due: out.length, resumed: r.resumed, enabled: run.policy.enabled },
      }),
    )

    // 2. compact
    const archivedBefore = r.archivesWritten
    const archiveBytesBefore = r.archiveBytesWritten
    await rec.step(
      'compact',
      ds,
      async () => {
        const limit = pLimit(COMPACT_CONCURRENCY)
        let done = 0
        let lost = false
        await Promise.all(
          due.map(({ ref, m, reason }) =>
            limit(async () => {
              try {
                if (dryRun) {
                  const bytes = m.files.reduce((s, f) => s + f.bytes, 0)
                  r.compacted.push(estimate(ref.path, reason, m, bytes, run.policy.maxFileBytes))
                  return
                }
                if (lost || !(await lease!.hold())) {
                  lost = true
                  r.partitionsSkipped.push({ partition: ref.path, reason: 'lease lost to another run' })
                  return
                }
                let skip = ''
                const out = await rewriteWithArchive(
                  ctx,
                  ds,
                  ref,
                  doc.schema,
                  compactionPlanner(ctx, ds, ref, run.policy, run.now(), (why) => (skip = why)),
                  { reason: 'compaction', codec: run.policy.archiveCodec, owner: run.owner, nowMs: run.now(), lease: lease! },
                )
                if (!out.committed) {
                  r.partitionsSkipped.push({ partition: ref.path, reason: skip || 'nothing to compact' })
                  return
                }
                r.compacted.push({
                  partition: ref.path,
                  reason,
                  filesBefore: out.removed.length,
                  filesAfter: out.added.length,
                  bytesBefore: out.removed.reduce((s, f) => s + f.bytes, 0),
                  bytesAfter: out.added.reduce((s, f) => s + f.bytes, 0),
                  rows: out.added.reduce((s, f) => s + f.rows, 0),
                })
                r.archivesWritten += out.archived.length
                r.archiveBytesWritten += out.archived.reduce((s, e) => s + e.storedBytes, 0)
              } catch (err) {
                fail(ref.path, err)
              } finally {
                run.options.onProgress?.({ dataset: ds, done: ++done, total: due.length })
              }
            }),
          ),
        )
        r.compacted.sort((a, b) => (a.partition < b.partition ? -1 : 1))
        return r.compacted
      },
      (c) => ({
        partitions: c.map((x) => x.partition),
        rows: c.reduce((s, x) => s + x.rows, 0),
        bytes: c.reduce((s, x) => s + x.bytesAfter, 0),
        details: {
          filesMerged: c.reduce((s, x) => s + x.filesBefore, 0),
          filesWritten: c.reduce((s, x) => s + x.filesAfter, 0),
          bytesBefore: c.reduce((s, x) => s + x.bytesBefore, 0),
          bytesAfter: c.reduce((s, x) => s + x.bytesAfter, 0),
        },
      }),
    )

    // 3. retention: rows past their age (archived), then archives past theirs
    await rec.step(
      'retention',
      ds,
      async () => {
        if (run.policy.rowRetentionMs !== null) await expireRows(run, doc, r, fail, lease)
        const expired = await expireArchives(ctx, ds, {
          retentionMs: run.policy.archiveRetentionMs,
          graceMs: ctx.gcGraceMs,
          nowMs: run.now(),
          dryRun,
        })
        r.archivesRemoved += expired.removed.length
        return expired
      },
      (e) => ({
        rows: r.rowsExpired,
        bytes: e.removed.reduce((s, x) => s + x.storedBytes, 0),
        details: { rowsExpired: r.rowsExpired, archivesRemoved: e.removed.length, archiveOrphansRemoved: e.orphans.length },
      }),
    )

    run.rec.emit('archive', ds, new Date(), performance.now(), ctx.store.stats(), {
      bytes: r.archiveBytesWritten - archiveBytesBefore,
      details: {
        archivesWritten: r.archivesWritten - archivedBefore,
        resumedArchives: archivedBefore,
        codec: run.policy.archiveCodec,
      },
    })

    // 4. gc: orphans past the grace period
    const gc = await rec.step(
      'gc',
      ds,
      () => collectGarbage(ctx, [ds], ctx.gcGraceMs, dryRun, run.now()),
      (g) => ({ bytes: g.bytesDeleted, details: { filesDeleted: g.filesDeleted, keys: g.keys.length } }),
    )
    r.orphansRemoved = gc.filesDeleted
  } catch (err) {
    fail(null, err)
  } finally {
    await lease?.release()
  }
  return r
}

async function expireRows(
  run: Run,
  doc: DatasetDoc,
  r: DatasetMaintenance,
  fail: (partition: string | null, err: unknown) => void,
  lease: Lease | null,
): Promise<void> {
  const { ctx } = run
  const cutoffUs = (run.now() - run.policy.rowRetentionMs!) * 1000
  const span = { min: Number.NEGATIVE_INFINITY, max: cutoffUs - 1, symbols: null }
  const refs = await findPartitions(ctx, doc.name, doc.partitionBy, {
    symbols: null,
    start: Number.NEGATIVE_INFINITY,
    end: cutoffUs,
  })
  for (const ref of refs) {
    try {
      if (run.dryRun) {
        const { doc: m } = await ctx.log.load<PartitionManifest>(manifestBase(doc.name, ref.path))
        r.rowsExpired += (m?.files ?? []).filter((f) => f.maxTs < cutoffUs).reduce((s, f) => s + f.rows, 0)
        continue
      }
      let deleted = 0
      const out = await rewriteWithArchive(
        ctx,
        doc.name,
        ref,
        doc.schema,
        rewritePlanner(ctx, doc.name, ref, span, null, (n) => (deleted = n)),
        { reason: 'retention', codec: run.policy.archiveCodec, owner: run.owner, nowMs: run.now(), lease: lease ?? undefined },
      )
      if (out.committed) {
        r.rowsExpired += deleted
        r.archivesWritten += out.archived.length
        r.archiveBytesWritten += out.archived.reduce((s, e) => s + e.storedBytes, 0)
      }
    } catch (err) {
      fail(ref.path, err)
    }
  }
}

/** A dry run's guess: files of about the target size, bytes unchanged. */
function estimate(path: string, reason: string, m: PartitionManifest, bytes: number, target: number): CompactedPartition {
  return {
    partition: path,
    reason,
    filesBefore: m.files.length,
    filesAfter: Math.max(1, Math.ceil(bytes / target)),
    bytesBefore: bytes,
    bytesAfter: bytes,
    rows: m.rows,
  }
}
