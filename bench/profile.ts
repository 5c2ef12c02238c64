/**
 * CPU profiles of our write and of our full read of the benchmark bars on a local lake, each
 * step profiled on its own (node:inspector), after an untimed warm-up write:
 *   npx tsx bench/profile.ts [--quick] [--order=time]
 *   npx tsx bench/cpuprofile-top.ts bench/results/prof/write.cpuprofile --total
 */

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createStorage } from '../src/node.js'
import { type BarsSpec, generateBars } from './data.js'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    order: { type: 'string', default: 'symbol' },
  },
})
const spec: BarsSpec = {
  symbols: 20,
  days: args.quick ? 13 : 128,
  barsPerDay: 390,
  order: args.order === 'time' ? 'time' : 'symbol',
  seed: 20240102,
}
const bars = generateBars(spec)
const outDir = join(import.meta.dirname, 'results', 'prof')
await mkdir(outDir, { recursive: true })
const root = await mkdtemp(join(tmpdir(), 'friday-prof-'))
const open = (dir: string) =>
  createStorage(
    { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir }, read_cache: { enabled: false } } },
    {},
  )

const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.setSamplingInterval', { interval: 200 })

async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  await session.post('Profiler.start')
  const t0 = performance.now()
  const result = await fn()
  const ms = performance.now() - t0
  const { profile } = await session.post('Profiler.stop')
  const file = join(outDir, `${name}.cpuprofile`)
  await writeFile(file, JSON.stringify(profile))
  console.log(`${name}: ${ms.toFixed(0)} ms -> ${file}`)
  return result
}

try {
  const warm = open(join(root, 'warm'))
  await warm.write('bars_1m', generateBars({ ...spec, days: 5 }).columns)
  await warm.read('bars_1m')
  await warm.close()

  const dir = join(root, 'lake')
  let s = open(dir)
  await profiled('write', () => s.write('bars_1m', bars.columns))
  await s.close()
  s = open(dir)
  const t = await profiled('read', () => s.read('bars_1m'))
  if (t.length !== bars.rows) throw new Error(`read ${t.length} rows, expected ${bars.rows}`)
  await s.close()
} finally {
  session.disconnect()
  await rm(root, { recursive: true, force: true })
}
