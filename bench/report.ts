/** Timing runs, their medians, and rendering results as a text table and a JSON file. */

import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

export interface Timing {
  /** Median of `runs`, milliseconds. */
  medianMs: number
  runs: number[]
  /** Process CPU time (user + system, all threads incl. libuv and DuckDB) of each run, ms. */
  cpuRuns: number[]
  cpuMedianMs: number
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * Runs `setup` (untimed), then times `fn`, `n` times; `check` (untimed) validates each result.
 * Returns every run and their median.
 */
export async function timeRuns<S, R>(
  n: number,
  label: string,
  setup: (run: number) => Promise<S> | S,
  fn: (state: S) => Promise<R>,
  check?: (result: R, state: S) => Promise<void> | void,
): Promise<Timing> {
  const runs: number[] = []
  const cpuRuns: number[] = []
  for (let i = 0; i < n; i++) {
    const state = await setup(i)
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    const result = await fn(state)
    const ms = performance.now() - t0
    const c = process.cpuUsage(c0)
    const cpu = (c.user + c.system) / 1000
    runs.push(ms)
    cpuRuns.push(cpu)
    if (check) await check(result, state)
    process.stdout.write(`  ${label} run ${i + 1}/${n}: ${fmtMs(ms)} (cpu ${fmtMs(cpu)})\n`)
  }
  return { medianMs: median(runs), runs, cpuMedianMs: median(cpuRuns), cpuRuns }
}

/** One timed step of an interleaved comparison. */
export interface Step<S = any, R = any> {
  label: string
  setup: (run: number) => Promise<S> | S
  fn: (state: S) => Promise<R>
  check?: (result: R, state: S) => Promise<void> | void
}

/**
 * Times several steps `n` times each, interleaved (A1 B1 A2 B2 ...), so that a burst of noise on
 * a shared machine hits every side alike. Before each timed run the page cache's dirty pages are
 * flushed (`sync`, untimed): otherwise one side pays for the writeback of the other's files.
 */
export async function timeInterleaved(n: number, steps: Step[]): Promise<Timing[]> {
  const out = steps.map(() => ({ runs: [] as number[], cpuRuns: [] as number[] }))
  for (let i = 0; i < n; i++) {
    for (const [k, step] of steps.entries()) {
      const state = await step.setup(i)
      flushDirtyPages()
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      const result = await step.fn(state)
      const ms = performance.now() - t0
      const c = process.cpuUsage(c0)
      const cpu = (c.user + c.system) / 1000
      out[k].runs.push(ms)
      out[k].cpuRuns.push(cpu)
      if (step.check) await step.check(result, state)
      process.stdout.write(`  ${step.label} run ${i + 1}/${n}: ${fmtMs(ms)} (cpu ${fmtMs(cpu)})\n`)
    }
  }
  return out.map((o) => ({ medianMs: median(o.runs), runs: o.runs, cpuMedianMs: median(o.cpuRuns), cpuRuns: o.cpuRuns }))
}

/** Writes dirty pages back to disk so that a timed step does not inherit earlier writes' I/O. */
export function flushDirtyPages(): void {
  try {
    execFileSync('sync')
  } catch {
    // no sync(1): timings include whatever writeback happens
  }
}

export function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`
}

export const ratio = (ours: number, theirs: number): number => Math.round((ours / theirs) * 100) / 100

export function verdict(pass: boolean): 'PASS' | 'MISS' {
  return pass ? 'PASS' : 'MISS'
}

/** A plain aligned text table: first column left-aligned, the rest right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => (r[j] ?? '').length)))
  const line = (cells: string[]) => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ')
  const sep = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(header), sep, ...rows.map(line)].join('\n')
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`)
}
