/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): the functions with the most self time,
 * and (with --total) the most inclusive time, optionally only inside a time window.
 *   npx tsx bench/cpuprofile-top.ts <file.cpuprofile> [--top=30] [--total] [--from=ms] [--to=ms]
 */

import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '30' },
    total: { type: 'boolean', default: false },
    from: { type: 'string' },
    to: { type: 'string' },
  },
})
if (!positionals[0]) throw new Error('usage: cpuprofile-top.ts <file.cpuprofile> [--top=N] [--total] [--from=ms] [--to=ms]')
const prof = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const label = (n: ProfileNode) => {
  const f = n.callFrame
  const url = f.url.replace(/^file:\/\//, '')
  const where = url
    ? `${url.includes('node_modules') ? url.slice(url.lastIndexOf('node_modules/') + 13) : relative(process.cwd(), url)}:${f.lineNumber + 1}`
    : ''
  return `${f.functionName || '(anonymous)'} ${where}`.trim()
}

const from = args.from === undefined ? Number.NEGATIVE_INFINITY : Number(args.from) * 1000
const to = args.to === undefined ? Number.POSITIVE_INFINITY : Number(args.to) * 1000
const self = new Map<string, number>()
const total = new Map<string, number>()
let t = 0
let sampled = 0
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i]
  if (t < from || t > to) continue
  const dt = prof.timeDeltas[i + 1] ?? 0
  sampled += dt
  const leaf = byId.get(prof.samples[i])!
  self.set(label(leaf), (self.get(label(leaf)) ?? 0) + dt)
  const seen = new Set<string>()
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const l = label(byId.get(id)!)
    if (seen.has(l)) continue
    seen.add(l)
    total.set(l, (total.get(l) ?? 0) + dt)
  }
}

const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title} (of ${(sampled / 1000).toFixed(0)} ms sampled)`)
  const rows = [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))
  for (const [name, us] of rows) {
    console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / sampled).toFixed(1).padStart(5)}%  ${name}`)
  }
}
show('self time', self)
if (args.total) show('inclusive time', total)
