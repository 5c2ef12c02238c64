/** Timing runs, their medians, and rendering results as a text table and a JSON file. */

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
