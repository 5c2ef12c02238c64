/**
 * One chaos run against one store: writers, a reader and (lakes) a maintainer as child
 * processes; SIGKILL and SIGSTOP/SIGCONT of writers and the maintainer, and the store's own faults
 * (HTTP proxy, TCP proxy, PostgreSQL restarts), from a seeded schedule; then, with every fault
 * stopped, the final check (`final-check.ts`). Returns the run's summary; `failures` must be empty.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildArgs } from './child.js'
import { type StoreEnv, setupEnv } from './envs.js'
import { finalCheck } from './final-check.js'
import { readAll } from './log-file.js'
import { between, type LogLine, type MaintLine, OP_KINDS, pickOne, rng } from './model.js'
import type { StoreKind } from './open-storage.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface ChaosOptions {
  store: StoreKind
  durationS: number
  seed: number
  writers?: number
  /** gc grace period of every process during the run (the final check collects with grace 0). */
  gcGraceSeconds?: number
  /** Where logs go (default: a new temp dir). */
  dir?: string
  /** Progress lines. */
  log?: (line: string) => void
}

export interface Failure {
  kind: string
  message: string
}

export interface ChaosSummary {
  store: StoreKind
  seed: number
  skipped?: string
  dir: string
  durationMs: number
  /** By kind: ok / err / unknown (killed, or never answered). */
  ops: Record<string, { ok: number; err: number; unknown: number }>
  /** Errors of failed ops, by error name. */
  errors: Record<string, number>
  faults: Record<string, number>
  kills: number
  stops: number
  crashes: number
  checks: { reader: number; readerReadErrors: number; final: number }
  maintenance: { maintainOk: number; maintainErr: number; compacted: number; gcOk: number; gcErr: number; orphansRemoved: number }
  final: Record<string, number | string | boolean>
  failures: Failure[]
}

type Role = 'writer' | 'reader' | 'maint'

interface Proc {
  role: Role
  slot: number
  name: string
  child: ChildProcess
  expectedExit: boolean
  stopped: boolean
  exited: Promise<void>
}

const SCRIPT: Record<Role, string> = {
  writer: 'test/chaos/writer.ts',
  reader: 'test/chaos/reader.ts',
  maint: 'test/chaos/maintainer.ts',
}
const PAUSE_MS: Record<Role, number> = { writer: 40, reader: 250, maint: 600 }
const STOP_GRACE_MS = 30_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function runChaos(o: ChaosOptions): Promise<ChaosSummary> {
  const log = o.log ?? (() => undefined)
  const runId = `${Date.now().toString(36)}-${o.seed.toString(36)}-${o.store}`
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `friday-chaos-${o.store}-`))
  mkdirSync(dir, { recursive: true })
  const summary: ChaosSummary = {
    store: o.store,
    seed: o.seed,
    dir,
    durationMs: 0,
    ops: Object.fromEntries(OP_KINDS.map((k) => [k, { ok: 0, err: 0, unknown: 0 }])),
    errors: {},
    faults: {},
    kills: 0,
    stops: 0,
    crashes: 0,
    checks: { reader: 0, readerReadErrors: 0, final: 0 },
    maintenance: { maintainOk: 0, maintainErr: 0, compacted: 0, gcOk: 0, gcErr: 0, orphansRemoved: 0 },
    final: {},
    failures: [],
  }
  const t0 = Date.now()
  const env = await setupEnv(o.store, o.seed, o.gcGraceSeconds ?? 10, runId)
  if ('skip' in env) {
    summary.skipped = env.skip
    return summary
  }
  try {
    await chaos(o, env, dir, summary, log)
  } finally {
    await env.cleanup().catch((err) => log(`cleanup of ${o.store} failed: ${(err as Error).message}`))
  }
  summary.durationMs = Date.now() - t0
  return summary
}

async function chaos(o: ChaosOptions, env: StoreEnv, dir: string, summary: ChaosSummary, log: (s: string) => void) {
  const r = rng(o.seed)
  const deadAt = new Map<string, number>()
  const procs = new Set<Proc>()
  const incarnations = new Map<string, number>()
  let running = true
  const lake = env.objectStore !== undefined

  const spawnProc = (role: Role, slot: number): Proc => {
    const key = `${role}${slot}`
    const inc = incarnations.get(key) ?? 0
    incarnations.set(key, inc + 1)
    const name = `${role === 'writer' ? 'w' : role === 'reader' ? 'r' : 'm'}${slot}.${inc}`
    const args: ChildArgs = {
      spec: env.spec,
      proc: name,
      seed: (o.seed * 1_000_003 + slot * 7_919 + inc * 104_729) >>> 0,
      dir,
      pauseMs: PAUSE_MS[role],
      atomicity: env.atomicity,
    }
    const err = openSync(join(dir, `${name}.stderr`), 'a')
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT[role], JSON.stringify(args)], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', err],
      env: { ...process.env, AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' },
    })
    closeSync(err)
    const p: Proc = { role, slot, name, child, expectedExit: false, stopped: false, exited: Promise.resolve() }
    p.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        procs.delete(p)
        if (!deadAt.has(name)) deadAt.set(name, Date.now())
        if (!p.expectedExit) {
          summary.crashes++
          let tail = ''
          try {
            tail = readFileSync(join(dir, `${name}.stderr`), 'utf8')
              .trim()
              .split('\n')
              .slice(-12)
              .join('\n')
          } catch {
            // no stderr
          }
          summary.failures.push({ kind: 'process-crash', message: `${name} exited (code ${code}, signal ${signal}):\n${tail}` })
          log(`  ${name} crashed (code ${code}, signal ${signal})`)
          if (running) setTimeout(() => running && spawnProc(role, slot), 300)
        }
        resolve()
      })
    })
    procs.add(p)
    return p
  }

  const writers = o.writers ?? 3
  for (let i = 0; i < writers; i++) spawnProc('writer', i)
  spawnProc('reader', 0)
  if (lake) spawnProc('maint', 0)
  log(`${o.store}: ${writers} writers, 1 reader${lake ? ', 1 maintainer' : ''}; logs in ${dir}`)

  // the schedule: one action every 0.5-1.8 s, kills bounded
  const maxKills = Math.max(3, Math.ceil(o.durationS / 3))
  const end = Date.now() + o.durationS * 1000
  const victims = () => [...procs].filter((p) => p.role !== 'reader' && !p.expectedExit)
  const timers = new Set<NodeJS.Timeout>()
  await sleep(1500) // let the children start (tsx)
  const lastRun = new Map<string, number>(env.actions.map((a) => [a.name, Date.now()]))
  while (Date.now() < end) {
    await sleep(between(500, 1800, r))
    const due = env.actions.find((a) => a.everyMs !== undefined && Date.now() - lastRun.get(a.name)! > a.everyMs)
    if (due) {
      lastRun.set(due.name, Date.now())
      due.run(r)
      continue
    }
    const x = r()
    if (x < 0.25 && summary.kills < maxKills) {
      const v = victims()
      if (!v.length) continue
      const p = pickOne(v, r)
      p.expectedExit = true
      deadAt.set(p.name, Date.now())
      p.child.kill('SIGKILL')
      summary.kills++
      const delay = between(200, 1000, r)
      setTimeout(() => running && spawnProc(p.role, p.slot), delay)
    } else if (x < 0.55) {
      const v = victims().filter((p) => !p.stopped)
      if (!v.length) continue
      const p = pickOne(v, r)
      p.stopped = true
      p.child.kill('SIGSTOP')
      summary.stops++
      const t = setTimeout(
        () => {
          timers.delete(t)
          p.stopped = false
          p.child.kill('SIGCONT')
        },
        between(200, 1500, r),
      )
      timers.add(t)
    } else if (env.actions.length) {
      const total = env.actions.reduce((s, a) => s + a.weight, 0)
      let y = r() * total
      let a = env.actions[0]
      for (const c of env.actions) {
        a = c
        y -= c.weight
        if (y < 0) break
      }
      lastRun.set(a.name, Date.now())
      a.run(r)
    }
  }

  // stop every fault, then every process (writers finish the call in flight)
  log(`${o.store}: stopping faults and processes`)
  await env.quiesce()
  for (const t of timers) clearTimeout(t)
  timers.clear()
  running = false
  for (const p of procs) {
    if (p.stopped) p.child.kill('SIGCONT')
    p.stopped = false
    p.expectedExit = true
    p.child.kill('SIGTERM')
  }
  const deadline = Date.now() + STOP_GRACE_MS
  while (procs.size && Date.now() < deadline) await sleep(100)
  for (const p of [...procs]) {
    summary.failures.push({
      kind: 'hung-process',
      message: `${p.name} did not finish its call within ${STOP_GRACE_MS / 1000} s after faults stopped (killed; see ${p.name}.stderr)`,
    })
    deadAt.set(p.name, Date.now())
    p.child.kill('SIGKILL')
    await p.exited
  }
  summary.faults = env.faultCounts()

  // tally the logs
  const lines = readAll<LogLine>(dir, '.ops.jsonl')
  const outcome = new Map<string, LogLine>()
  for (const l of lines) if (l.t === 'ok' || l.t === 'err') outcome.set(l.op, l)
  for (const l of lines) {
    if (l.t !== 'intent') continue
    const out = outcome.get(l.op)
    const k = summary.ops[l.kind]
    if (out?.t === 'ok') k.ok++
    else if (out?.t === 'err') {
      k.err++
      const name = out.name ?? 'Error'
      summary.errors[name] = (summary.errors[name] ?? 0) + 1
    } else k.unknown++
  }
  for (const l of readAll<{ t: string; ok: boolean; via?: string; violations?: Failure[]; readError?: string }>(
    dir,
    '.checks.jsonl',
  )) {
    if (!l.ok) {
      summary.checks.readerReadErrors++
      continue
    }
    summary.checks.reader++
    for (const v of l.violations ?? []) summary.failures.push({ kind: `reader(${l.via}):${v.kind}`, message: v.message })
  }
  for (const l of readAll<MaintLine>(dir, '.maint.jsonl')) {
    const m = summary.maintenance
    if (l.what === 'maintain') {
      if (l.ok) m.maintainOk++
      else m.maintainErr++
      m.compacted += l.compacted ?? 0
      m.orphansRemoved += l.orphans ?? 0
    } else {
      if (l.ok) m.gcOk++
      else m.gcErr++
      m.orphansRemoved += l.orphans ?? 0
    }
  }

  log(`${o.store}: final check`)
  const fin = await finalCheck(env, lines, deadAt)
  summary.final = fin.figures
  summary.checks.final = fin.checks
  summary.failures.push(...fin.failures)
}

/** The summary as a few lines of text. */
export function formatSummary(s: ChaosSummary): string {
  if (s.skipped) return `${s.store}: SKIPPED (${s.skipped})`
  const kv = (o: Record<string, unknown>) =>
    Object.entries(o)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(' ')
  const ops = Object.entries(s.ops)
    .map(([k, v]) => `${k} ${v.ok}/${v.err}/${v.unknown}`)
    .join(', ')
  const lines = [
    `${s.store} (seed ${s.seed}, ${(s.durationMs / 1000).toFixed(0)} s, logs ${s.dir})`,
    `  ops ok/err/unknown: ${ops}`,
    `  errors: ${kv(s.errors) || 'none'}`,
    `  faults: ${kv(s.faults) || 'none'}; kills=${s.kills} stops=${s.stops} crashes=${s.crashes}`,
    `  checks: reader=${s.checks.reader} (read errors ${s.checks.readerReadErrors}) final=${s.checks.final}`,
    `  maintenance: ${kv(s.maintenance)}`,
    `  final: ${kv(s.final)}`,
    `  FAILURES: ${s.failures.length}`,
  ]
  const byKind = new Map<string, Failure[]>()
  for (const f of s.failures) byKind.set(f.kind, [...(byKind.get(f.kind) ?? []), f])
  for (const [kind, fs] of byKind) {
    lines.push(`    ${kind} x${fs.length}`)
    for (const f of fs.slice(0, 3)) lines.push(`      ${f.message.replace(/\n/g, '\n      ')}`)
  }
  return lines.join('\n')
}
