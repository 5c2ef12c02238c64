/**
 * The chaos harness (test/chaos/, `npm run chaos`) in a bounded run per store: writers, a reader
 * and (lakes) a maintainer under SIGKILL, SIGSTOP and the store's network faults, then the final
 * check. Asserts no failure, and that faults, kills and checks really happened (a run that
 * injected nothing proves nothing). A store whose server is absent is skipped with a message;
 * under CI that is an error. Replay a failure with `npm run chaos -- --store <s> --seed <seed>`.
 * CHAOS_SEED and CHAOS_DURATION (seconds per store, default 25) override the defaults.
 */

import { describe, expect, it } from 'vitest'
import { formatSummary, runChaos } from './chaos/harness.js'
import { STORE_KINDS } from './chaos/open-storage.js'

const SEED = Number(process.env.CHAOS_SEED ?? 20_240_102)
const DURATION_S = Number(process.env.CHAOS_DURATION ?? 25)

describe('chaos', () => {
  for (const store of STORE_KINDS) {
    it(
      `${store}: no invariant broken under kills, stops and faults (seed ${SEED})`,
      async (ctx) => {
        const s = await runChaos({ store, seed: SEED, durationS: DURATION_S, writers: 3 })
        if (s.skipped) {
          console.warn(`chaos ${store} skipped: ${s.skipped}`)
          ctx.skip()
          return
        }
        console.log(formatSummary(s))
        const ops = Object.values(s.ops).reduce((n, k) => n + k.ok + k.err + k.unknown, 0)
        const acked = Object.values(s.ops).reduce((n, k) => n + k.ok, 0)
        expect(ops).toBeGreaterThan(50)
        expect(acked).toBeGreaterThan(20)
        expect(s.kills).toBeGreaterThan(0)
        expect(s.stops).toBeGreaterThan(0)
        expect(s.checks.reader).toBeGreaterThan(0)
        expect(s.checks.final).toBeGreaterThan(0)
        if (store !== 'local') expect(Object.values(s.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
        if (store === 'pg' || store === 'neon') expect(Object.keys(s.faults).some((k) => k.startsWith('pg-restart'))).toBe(true)
        if (store === 'local' || store === 's3') expect(s.maintenance.maintainOk).toBeGreaterThan(0)
        expect(s.failures.map((f) => `${f.kind}: ${f.message}`)).toEqual([])
      },
      (DURATION_S + 120) * 1000,
    )
  }
})
