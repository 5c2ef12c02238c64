/**
 * `npm run bench:runtimes` (and the runtimes section of `npm run bench`, which runs this file as
 * a child process): cold start and 10k-row NDJSON ingest of every runtime-matrix cell, workerd
 * through Miniflare, the Worker bundle's size. Prints the tables, writes bench/results/runtimes.json.
 *   npx tsx bench/runtimes-main.ts [--runs=N] [--only=node24,bun,workerd,workerd-miniflare,...]
 * Exits 1 when a cell or a bundle failed (after writing the results), 2 on a usage error.
 */

import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Running } from '../test/helpers/runtime-process.js'
import { stop } from '../test/helpers/runtime-process.js'
import { writeJson } from './report.js'
import { formatRuntimes, runRuntimeBench } from './runtimes.js'

let args: { runs: string; only?: string }
try {
  args = parseArgs({ options: { runs: { type: 'string', default: '5' }, only: { type: 'string' } } }).values as typeof args
} catch (err) {
  console.error((err as Error).message)
  process.exit(2)
}
const runs = Number(args.runs)
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs: expected a positive integer, got ${args.runs}`)
  process.exit(2)
}

// children run in process groups of their own: on Ctrl-C or a kill, stop them before leaving
const active = new Set<Running>()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping ${active.size} runtime process(es)`)
    await Promise.all([...active].map((r) => stop(r)))
    process.exit(130)
  })
}

const results = await runRuntimeBench({
  runs,
  only: args.only?.split(',').map((s) => s.trim()),
  onChild: (running, isActive) => (isActive ? active.add(running) : active.delete(running)),
})
console.log(`\n${formatRuntimes(results)}`)
const out = join(import.meta.dirname, 'results', 'runtimes.json')
await writeJson(out, results)
console.log(`results written to ${out}`)
const failed = results.cells.filter((c) => c.status === 'failed').length + results.bundles.filter((b) => 'error' in b).length
if (failed > 0) {
  console.error(`${failed} cell(s) or bundle(s) FAILED`)
  process.exitCode = 1
}
