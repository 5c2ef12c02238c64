/**
 * The final check, once every fault and process has stopped, over a direct connection:
 * (lakes) one `maintain()` to finish what a killed maintainer left; the whole dataset read back
 * and checked against every writer's log (`checker.ts`, horizon = infinity: every acknowledged op
 * is a constraint); (databases) `gc({ graceMs: 0 })`, which on MongoDB settles the metadata of
 * partitions a killed writer left between its rows and its metadata commit; `verify()`; (lakes) `gc({ graceMs: 0 })`, then no data file may remain that no
 * manifest references, `verify()` again, and a second read equal to the first.
 */

import type { PartitionManifest, Table } from '../../src/core/types.js'
import { buildOps, checkOutcomes, checkSnapshot, ERR_SLACK_MS, indexOps, KILL_SLACK_MS, snapshotOf } from './checker.js'
import type { StoreEnv } from './envs.js'
import type { Failure } from './harness.js'
import { DATASET, type LogLine } from './model.js'
import { openStorage } from './open-storage.js'

const DATA_FILE_RE = /^(.*)\/(part-[^/]+\.parquet)$/

async function retry<T>(what: string, fn: () => Promise<T>, failures: Failure[]): Promise<T | null> {
  let last: unknown
  for (let i = 0; i < 5; i++) {
    try {
      return await fn()
    } catch (err) {
      last = err
      await new Promise((r) => setTimeout(r, 500 * (i + 1)))
    }
  }
  failures.push({
    kind: 'final-error',
    message: `${what} failed 5 times with no fault injected: ${(last as Error)?.stack ?? last}`,
  })
  return null
}

export async function finalCheck(
  env: StoreEnv,
  lines: LogLine[],
  deadAt: Map<string, number>,
): Promise<{ failures: Failure[]; checks: number; figures: Record<string, number | string | boolean> }> {
  const failures: Failure[] = []
  const figures: Record<string, number | string | boolean> = {}
  let checks = 0
  const storage = openStorage(env.direct)
  const lake = env.objectStore !== undefined
  try {
    if (lake) {
      const rep = await retry('maintain()', () => storage.maintain!({ owner: 'chaos-maintainer' }), failures)
      if (rep) {
        figures.finalCompacted = rep.totals.partitionsCompacted
        for (const d of rep.datasets) {
          if (d.skipped) figures.maintainSkipped = d.skipped
          for (const e of d.errors) failures.push({ kind: 'final-maintain', message: `${e.partition}: ${e.message}` })
        }
      }
    }
    const read = (): Promise<Table> => storage.read(DATASET, { columns: ['op'] })
    const first = await retry('read()', read, failures)
    const ops = buildOps(lines, { errSlackMs: ERR_SLACK_MS, killSlackMs: KILL_SLACK_MS, deadAt })
    const index = indexOps(ops)
    if (first) {
      const snap = snapshotOf(first)
      figures.rows = snap.rows
      checks++
      for (const v of checkSnapshot(snap, ops, index, Number.POSITIVE_INFINITY, env.atomicity)) {
        failures.push({ kind: `final:${v.kind}`, message: v.message })
      }
    }
    checks++
    for (const v of checkOutcomes(ops, lines)) failures.push({ kind: `final:${v.kind}`, message: v.message })

    const verify = async (when: string) => {
      const rep = await retry(`verify() ${when}`, () => storage.verify(DATASET), failures)
      if (!rep) return
      checks++
      figures[`verify${when}`] = rep.ok
      for (const p of rep.problems)
        failures.push({ kind: `verify:${p.problem}`, message: `${when}: ${p.partition}/${p.file ?? ''} ${p.message}` })
    }
    if (!lake) {
      // MongoDB commits rows and metadata separately: gc settles what a killed writer left (all are dead now)
      const gc = await retry('gc({ graceMs: 0 })', () => storage.gc({ graceMs: 0 }), failures)
      if (gc) figures.partitionsRepaired = gc.keys.length
    }
    await verify('Before')

    if (lake) {
      const gc = await retry('gc({ graceMs: 0 })', () => storage.gc({ graceMs: 0 }), failures)
      if (gc) figures.finalGcDeleted = gc.filesDeleted
      const store = env.objectStore!()
      try {
        const { objects } = await store.list(`${DATASET}/`)
        const dirs = new Map<string, string[]>()
        for (const o of objects) {
          const m = DATA_FILE_RE.exec(o.key)
          if (m) dirs.set(m[1], [...(dirs.get(m[1]) ?? []), m[2]])
          // the dataset directory holds only data files (metadata lives under _friday/<dataset>/)
          else failures.push({ kind: 'foreign-object', message: `${o.key} is in the dataset directory but is no data file` })
        }
        let files = 0
        let orphans = 0
        for (const [dir, names] of dirs) {
          const path = dir.slice(DATASET.length + 1)
          const m: PartitionManifest | null = await storage.getManifest(DATASET, path)
          const live = new Set(m?.files.map((f) => f.name) ?? [])
          for (const n of names) {
            files++
            if (!live.has(n)) {
              orphans++
              failures.push({ kind: 'orphan-file', message: `${dir}/${n} is referenced by no manifest after gc with grace 0` })
            }
          }
        }
        figures.dataFiles = files
        figures.orphans = orphans
        checks++
      } finally {
        await store.close()
      }
      await verify('AfterGc')
      const second = await retry('read() after gc', read, failures)
      if (first && second) {
        checks++
        const a = snapshotOf(first).values
        const b = snapshotOf(second).values
        const diff = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k))
        if (diff.length) {
          failures.push({
            kind: 'changed-by-maintenance',
            message: `gc/maintenance changed ${diff.length} keys: ${diff
              .slice(0, 5)
              .map((k) => `${k} ${a.get(k)} -> ${b.get(k)}`)
              .join(', ')}`,
          })
        }
      }
    }
  } finally {
    await storage.close().catch(() => undefined)
  }
  return { failures, checks, figures }
}
