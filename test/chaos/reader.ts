/**
 * A chaos reader process: reads the whole dataset again and again (alternating `read` and
 * `scan`), then the writers' logs, and checks the read against them (`checker.ts`), logging one
 * line per check until SIGTERM. A read that fails is counted, not judged: faults make reads fail.
 *
 *   node --import tsx test/chaos/reader.ts '<json ChildArgs>'
 */

import type { Table } from '../../src/core/types.js'
import { buildOps, checkSnapshot, ERR_SLACK_MS, indexOps, KILL_SLACK_MS, snapshotOf } from './checker.js'
import { type ChildArgs, childLog, sleep } from './child.js'
import { readAll } from './log-file.js'
import { DATASET, type LogLine } from './model.js'
import { openStorage } from './open-storage.js'

const args = JSON.parse(process.argv[2]) as ChildArgs
const log = childLog(args, 'checks')
const storage = openStorage(args.spec)
let stopping = false
process.on('SIGTERM', () => {
  stopping = true
})

async function readAllRows(useScan: boolean): Promise<Table> {
  if (!useScan) return storage.read(DATASET, { columns: ['op'] })
  const batches: Table[] = []
  for await (const b of storage.scan(DATASET, { columns: ['op'], batchSize: 7 })) batches.push(b)
  if (batches.length === 0) return storage.read(DATASET, { columns: ['op'], limit: 0 })
  const { concat } = await import('../../src/core/table.js')
  return concat(batches, batches[0].schema)
}

for (let n = 0; !stopping; n++) {
  const at = Date.now()
  let table: Table
  try {
    table = await readAllRows(n % 2 === 1)
  } catch (err) {
    const e = err as Error
    log.append({ t: 'check', at, ok: false, readError: `${e?.name}: ${e?.message}`.slice(0, 300) })
    await sleep(50 + Math.random() * args.pauseMs)
    continue
  }
  const lines = readAll<LogLine>(args.dir, '.ops.jsonl')
  const ops = buildOps(lines, { errSlackMs: ERR_SLACK_MS, killSlackMs: KILL_SLACK_MS })
  const snap = snapshotOf(table)
  const violations = checkSnapshot(snap, ops, indexOps(ops), at, args.atomicity ?? 'partition')
  log.append({
    t: 'check',
    at,
    ok: true,
    via: n % 2 === 1 ? 'scan' : 'read',
    rows: snap.rows,
    violations: violations.slice(0, 20),
    nViolations: violations.length,
  })
  await sleep(50 + Math.random() * args.pauseMs)
}
await storage.close().catch(() => undefined)
log.close()
process.exit(0)
