/**
 * A chaos writer process: random upserts, appends, replaces and deletes on the shared key space
 * until SIGTERM (then it finishes the call in flight and exits). Before each call it logs (and
 * fsyncs) the intent, after it the outcome; a SIGKILL leaves an intent without outcome.
 *
 *   node --import tsx test/chaos/writer.ts '<json ChildArgs>'
 */

import { type ChildArgs, childLog, sleep } from './child.js'
import { DATASET, type OpIntent, type OpOutcome, randomOp, rng, rowsOf } from './model.js'
import { openStorage } from './open-storage.js'

const args = JSON.parse(process.argv[2]) as ChildArgs
const log = childLog(args, 'ops')
const r = rng(args.seed)
const storage = openStorage(args.spec)
let stopping = false
process.on('SIGTERM', () => {
  stopping = true
})

for (let seq = 0; !stopping; seq++) {
  const intent: OpIntent = { t: 'intent', op: `${args.proc}:${seq}`, proc: args.proc, at: 0, ...randomOp(r) }
  intent.at = Date.now()
  log.append(intent)
  let outcome: OpOutcome
  try {
    if (intent.kind === 'delete') {
      const d = intent.del!
      const res = await storage.delete(DATASET, {
        ...(d.symbols ? { symbols: d.symbols } : {}),
        ...(d.start !== undefined ? { start: d.start } : {}),
        ...(d.end !== undefined ? { end: d.end } : {}),
      })
      outcome = { t: 'ok', op: intent.op, at: Date.now(), rows: res.rowsDeleted }
    } else {
      const res = await storage.write(DATASET, rowsOf(intent), { mode: intent.kind })
      outcome = { t: 'ok', op: intent.op, at: Date.now(), rows: res.rowsWritten }
    }
  } catch (err) {
    const e = err as Error
    outcome = {
      t: 'err',
      op: intent.op,
      at: Date.now(),
      name: e?.name ?? 'Error',
      error: `${e?.name}: ${e?.message}`.slice(0, 500),
    }
  }
  log.append(outcome)
  await sleep(r() * args.pauseMs)
}
await storage.close().catch(() => undefined)
log.close()
process.exit(0)
