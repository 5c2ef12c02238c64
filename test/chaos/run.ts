/**
 * `npm run chaos -- [--store local|s3|pg|neon|mongo ...] [--duration 60] [--seed 42] [--writers 3]`
 *
 * The fault-injection harness (issue 11): per store, writers, a reader and a maintainer under
 * SIGKILL/SIGSTOP and network faults, then a final check with every fault stopped. Prints a
 * summary per store; exits 1 when any store has a failure. A run is replayed (as far as timing
 * allows) with the same --seed.
 */

import { Command, Option } from 'commander'
import { type ChaosSummary, formatSummary, runChaos } from './harness.js'
import { STORE_KINDS, type StoreKind } from './open-storage.js'

const program = new Command('chaos')
  .addOption(new Option('--store <kind...>', 'stores to run').choices(STORE_KINDS).default(STORE_KINDS))
  .option('--duration <seconds>', 'chaos phase per store', (v) => Number(v), 60)
  .option('--seed <n>', 'PRNG seed (default: random, printed)', (v) => Number(v))
  .option('--writers <n>', 'writer processes', (v) => Number(v), 3)
  .option('--gc-grace <seconds>', 'gc grace period of the processes during the run', (v) => Number(v), 10)
  .option('--dir <path>', 'log directory (default: a temp dir per store)')
  .parse()

const opts = program.opts<{
  store: StoreKind[]
  duration: number
  seed?: number
  writers: number
  gcGrace: number
  dir?: string
}>()
const seed = opts.seed ?? Math.floor(Math.random() * 1e9)
console.log(`chaos: seed ${seed}, ${opts.duration} s per store, stores ${opts.store.join(', ')}`)
const results: ChaosSummary[] = []
for (const store of opts.store) {
  const s = await runChaos({
    store,
    seed,
    durationS: opts.duration,
    writers: opts.writers,
    gcGraceSeconds: opts.gcGrace,
    dir: opts.dir ? `${opts.dir}/${store}` : undefined,
    log: (l) => console.log(l),
  })
  results.push(s)
  console.log(formatSummary(s))
}
const failed = results.filter((s) => s.failures.length > 0)
console.log(
  failed.length
    ? `chaos: FAILED on ${failed.map((s) => `${s.store} (${s.failures.length})`).join(', ')}; replay with --seed ${seed}`
    : `chaos: no failures (seed ${seed})`,
)
process.exit(failed.length ? 1 : 0)
