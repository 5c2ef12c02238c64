/**
 * `verify()`: recomputes every partition's stats from its rows and compares them with the
 * committed metadata; also checks that the dataset holds no rows outside committed partitions.
 * Under concurrent writes it may report a partition whose commit has not landed yet.
 */

import { ALL_ROWS } from '../../core/filter.js'
import type { VerifyProblem, VerifyReport } from '../../core/types.js'
import { loadDataset, loadPartitions, partitionStats } from './catalog.js'
import { type MongoContext, rowsCollection } from './context.js'

export async function verifyDatasets(ctx: MongoContext, names: string[]): Promise<VerifyReport> {
  const problems: VerifyProblem[] = []
  let datasets = 0
  let partitions = 0
  let bytes = 0
  for (const ds of names) {
    const meta = await loadDataset(ctx, ds)
    if (!meta) continue
    datasets++
    let committedRows = 0
    for (const m of await loadPartitions(ctx, ds, ALL_ROWS, true)) {
      committedRows += m.rows
      if (m.rows > 0) {
        partitions++
        bytes += m.bytes
      }
      const base = { dataset: ds, partition: m.path }
      let s: Awaited<ReturnType<typeof partitionStats>>
      try {
        s = await partitionStats(ctx, ds, { values: m.values, path: m.path }, meta.schema)
      } catch (err) {
        problems.push({ ...base, problem: 'unreadable', message: `${ds}/${m.path}: ${(err as Error).message}` })
        continue
      }
      if (m.version === 0 && s.rows === 0) continue // a new partition's placeholder (a write's intent), no rows yet
      if (s.rows !== m.rows) {
        problems.push({
          ...base,
          problem: 'row-count-mismatch',
          message: `${ds}/${m.path}: ${s.rows} rows, metadata says ${m.rows}`,
        })
      } else if (s.checksum !== m.checksum) {
        problems.push({
          ...base,
          problem: 'checksum-mismatch',
          message: `${ds}/${m.path}: rows differ from the committed checksum`,
        })
      } else if (s.bytes !== m.bytes) {
        problems.push({
          ...base,
          problem: 'size-mismatch',
          message: `${ds}/${m.path}: ${s.bytes} bytes, metadata says ${m.bytes}`,
        })
      }
    }
    ctx.stats.get++
    const total = await ctx.db.collection(rowsCollection(ds)).countDocuments({})
    if (total !== committedRows) {
      problems.push({
        dataset: ds,
        partition: '*',
        problem: 'row-count-mismatch',
        message: `${ds}: ${total} rows stored, committed partitions count ${committedRows} (a write in progress or one that died before its metadata commit)`,
      })
    }
  }
  return { ok: problems.length === 0, datasets, partitions, files: partitions, bytes, problems }
}
