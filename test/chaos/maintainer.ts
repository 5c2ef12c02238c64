/**
 * A chaos maintainer process (Parquet lakes): `maintain()` under the harness's aggressive
 * rotation policy (compaction above 1 file, archiving, gc of orphans past the short grace
 * period), then `gc()`, in a loop until SIGTERM. One line per call.
 *
 *   node --import tsx test/chaos/maintainer.ts '<json ChildArgs>'
 */

import { type ChildArgs, childLog, sleep } from './child.js'
import type { MaintLine } from './model.js'
import { openStorage } from './open-storage.js'

const args = JSON.parse(process.argv[2]) as ChildArgs
const log = childLog(args, 'maint')
const storage = openStorage(args.spec)
let stopping = false
process.on('SIGTERM', () => {
  stopping = true
})

const line = (what: MaintLine['what'], at: number, extra: Partial<MaintLine>): MaintLine => ({
  t: 'maint',
  proc: args.proc,
  what,
  at,
  ok: true,
  ...extra,
})

while (!stopping) {
  let at = Date.now()
  try {
    // a stable owner: a restarted maintainer takes over the lease its killed predecessor held
    const rep = await storage.maintain!({ owner: 'chaos-maintainer' })
    const errors = rep.datasets.flatMap((d) => d.errors.map((e) => `${e.partition}: ${e.message}`))
    log.append(
      line('maintain', at, {
        ok: errors.length === 0,
        compacted: rep.totals.partitionsCompacted,
        orphans: rep.totals.orphansRemoved,
        ...(errors.length ? { error: errors.join('; ').slice(0, 300) } : {}),
      }),
    )
  } catch (err) {
    const e = err as Error
    log.append(line('maintain', at, { ok: false, error: `${e?.name}: ${e?.message}`.slice(0, 300) }))
  }
  at = Date.now()
  try {
    const rep = await storage.gc()
    log.append(line('gc', at, { orphans: rep.filesDeleted }))
  } catch (err) {
    const e = err as Error
    log.append(line('gc', at, { ok: false, error: `${e?.name}: ${e?.message}`.slice(0, 300) }))
  }
  await sleep(Math.random() * args.pauseMs)
}
await storage.close().catch(() => undefined)
log.close()
process.exit(0)
