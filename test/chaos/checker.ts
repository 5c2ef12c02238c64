/**
 * The chaos checker: what a read of the dataset may legally show, given the writers' logs.
 *
 * Each write stores its op id in every row and never writes a key twice, so a value names the one
 * write that put it there. From the logs each op has a start (intent logged before the call: at or
 * before the real start) and an end (the logged acknowledgement, at or after the real end; for an
 * error, the error's time plus `errSlackMs`; for a killed process, its kill time plus
 * `killSlackMs`; for a call still running, infinity). Logged intervals contain the real ones, so
 * every rule below errs on the side of "legal":
 *
 * - A write Y *surely follows* L when Y.start > L.end (Y began after L was over).
 * - An op *touches* a key when it sets it (its rows) or removes it (a replace's span, per
 *   `types.ts`: the batch's symbols between the batch's min and max timestamp inclusive, minus
 *   its own rows; a delete's filter: symbols (absent = all), start inclusive, end exclusive).
 * - Constraints at a read are the acknowledged ops that ended before the read started (at the final
 *   check: every acknowledged op): each has landed, in an order compatible with real time.
 * - The last effect on key k can be op L only if no constraint Y touching k surely follows L.
 * - A value X at k is legal iff X exists, X's rows contain k, and X can be last on k.
 * - An absent k is legal iff no constraint sets k, or some op removing k can be last on k.
 * - Atomicity (`partition`): if X is visible at k, each other row k2 of X in k's partition shows X,
 *   or a value (or absence) left by an op that could have landed after X (its end >= X.start).
 *   `types.ts`: "Each partition commit is atomic: readers see all of its rows or none."
 */

import { DuplicateKeyError } from '../../src/core/errors.js'
import type { Table } from '../../src/core/types.js'
import {
  ALL_KEYS,
  type KeyId,
  keyId,
  type LogLine,
  type OpIntent,
  type OpKind,
  type OpOutcome,
  parseKey,
  partitionOf,
} from './model.js'

export interface Op {
  id: string
  proc: string
  kind: OpKind
  start: number
  end: number
  status: 'ok' | 'err' | 'unknown'
  errName?: string
  error?: string
  rows: KeyId[]
  rowSet: Set<KeyId>
  intent: OpIntent
}

export interface Violation {
  kind: string
  message: string
  key?: KeyId
  ops?: string[]
}

/** An op that failed may still land this long after its error was returned (a request already on the wire). */
export const ERR_SLACK_MS = 2_000
/** Requests of a killed process may still land this long after the kill. */
export const KILL_SLACK_MS = 2_000

export interface OpsOptions {
  errSlackMs: number
  killSlackMs: number
  /** Processes known dead (SIGKILLed or exited), with the time they died. */
  deadAt?: Map<string, number>
}

export function buildOps(lines: LogLine[], o: OpsOptions): Map<string, Op> {
  const ops = new Map<string, Op>()
  const outcomes = new Map<string, OpOutcome>()
  for (const l of lines) {
    if (l.t === 'intent') {
      const rows = l.rows ?? []
      ops.set(l.op, {
        id: l.op,
        proc: l.proc,
        kind: l.kind,
        start: l.at,
        end: Number.POSITIVE_INFINITY,
        status: 'unknown',
        rows,
        rowSet: new Set(rows),
        intent: l,
      })
    } else if (l.t === 'ok' || l.t === 'err') outcomes.set(l.op, l)
  }
  for (const op of ops.values()) {
    const out = outcomes.get(op.id)
    if (out?.t === 'ok') {
      op.status = 'ok'
      op.end = out.at
    } else if (out?.t === 'err') {
      op.status = 'err'
      op.end = out.at + o.errSlackMs
      op.errName = out.name
      op.error = out.error
    } else {
      const dead = o.deadAt?.get(op.proc)
      if (dead !== undefined) op.end = dead + o.killSlackMs
    }
  }
  return ops
}

export function removes(op: Op, k: KeyId): boolean {
  const { symbol, ms } = parseKey(k)
  if (op.kind === 'replace') {
    if (op.rowSet.has(k)) return false
    let min = Number.POSITIVE_INFINITY
    let max = Number.NEGATIVE_INFINITY
    let sym = false
    for (const r of op.rows) {
      const p = parseKey(r)
      if (p.ms < min) min = p.ms
      if (p.ms > max) max = p.ms
      if (p.symbol === symbol) sym = true
    }
    return sym && ms >= min && ms <= max
  }
  if (op.kind === 'delete') {
    const d = op.intent.del ?? {}
    return (
      (!d.symbols || d.symbols.includes(symbol)) &&
      (d.start === undefined || ms >= d.start) &&
      (d.end === undefined || ms < d.end)
    )
  }
  return false
}

/** Per key: the ops that set it and the ops that remove it. */
export interface KeyIndex {
  setters: Map<KeyId, Op[]>
  removers: Map<KeyId, Op[]>
}

export function indexOps(ops: Map<string, Op>): KeyIndex {
  const setters = new Map<KeyId, Op[]>(ALL_KEYS.map((k) => [k, []]))
  const removers = new Map<KeyId, Op[]>(ALL_KEYS.map((k) => [k, []]))
  for (const op of ops.values()) {
    for (const k of op.rows) setters.get(k)?.push(op)
    if (op.kind === 'replace' || op.kind === 'delete') for (const k of ALL_KEYS) if (removes(op, k)) removers.get(k)!.push(op)
  }
  return { setters, removers }
}

/** A read, as (key -> op id), plus the structural problems found while decoding it. */
export interface Snapshot {
  values: Map<KeyId, string>
  problems: Violation[]
  rows: number
}

/** Decodes a read result (columns `symbol`, `timestamp`, `op`) and checks order, uniqueness and the key space. */
export function snapshotOf(t: Table): Snapshot {
  const values = new Map<KeyId, string>()
  const problems: Violation[] = []
  const known = new Set(ALL_KEYS)
  const sym = t.columns.symbol?.values as string[] | undefined
  const ts = t.columns.timestamp?.values as Float64Array | undefined
  const op = t.columns.op?.values as (string | null)[] | undefined
  if (t.length > 0 && (!sym || !ts || !op)) {
    problems.push({ kind: 'bad-columns', message: `read returned columns ${Object.keys(t.columns).join(', ')}` })
    return { values, problems, rows: t.length }
  }
  for (let i = 0; i < t.length; i++) {
    const k = keyId(sym![i], ts![i] / 1000)
    if (i > 0) {
      const ps = sym![i - 1]
      const order = ps < sym![i] ? -1 : ps > sym![i] ? 1 : Math.sign(ts![i - 1] - ts![i])
      if (order === 0) problems.push({ kind: 'duplicate-key', key: k, message: `key ${k} returned twice (rows ${i - 1}, ${i})` })
      else if (order > 0) problems.push({ kind: 'unsorted', key: k, message: `row ${i} (${k}) sorts before row ${i - 1}` })
    }
    if (!known.has(k)) problems.push({ kind: 'invented-key', key: k, message: `key ${k} is outside the key space` })
    const v = op![i]
    if (typeof v !== 'string') problems.push({ kind: 'null-value', key: k, message: `op is ${v} at ${k}` })
    else values.set(k, v)
  }
  return { values, problems, rows: t.length }
}

const fmt = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString().slice(11, 23) : 'never')
const desc = (op: Op) =>
  `${op.id} ${op.kind} ${op.status}${op.errName ? `(${op.errName})` : ''} [${fmt(op.start)}, ${fmt(op.end)}]`

/**
 * Checks a snapshot read at `horizon` (the time the read started; +Infinity for the final check,
 * when every acknowledged op is over).
 */
export function checkSnapshot(
  snap: Snapshot,
  ops: Map<string, Op>,
  index: KeyIndex,
  horizon: number,
  atomicity: 'partition' | 'none',
): Violation[] {
  const out: Violation[] = [...snap.problems]
  const isConstraint = (y: Op) => y.status === 'ok' && y.end < horizon
  /** The constraint that surely follows L on k, if any (L then cannot be the last effect on k). */
  const followerOf = (l: Op, k: KeyId): Op | undefined => {
    for (const y of index.setters.get(k)!) if (y !== l && isConstraint(y) && y.start > l.end) return y
    for (const y of index.removers.get(k)!) if (y !== l && isConstraint(y) && y.start > l.end) return y
    return undefined
  }
  const canBeLast = (l: Op, k: KeyId) => followerOf(l, k) === undefined

  for (const k of ALL_KEYS) {
    const v = snap.values.get(k)
    if (v !== undefined) {
      const x = ops.get(v)
      if (!x) {
        out.push({ kind: 'invented-value', key: k, ops: [v], message: `${k} holds op ${v}, which no writer logged` })
        continue
      }
      if (!x.rowSet.has(k)) {
        out.push({ kind: 'foreign-value', key: k, ops: [v], message: `${k} holds op ${v}, which did not write ${k}` })
        continue
      }
      const y = followerOf(x, k)
      if (y) {
        out.push({
          kind: y.kind === 'delete' || (y.kind === 'replace' && !y.rowSet.has(k)) ? 'resurrected-row' : 'stale-value',
          key: k,
          ops: [x.id, y.id],
          message: `${k} holds ${desc(x)}, but acknowledged ${desc(y)} ${y.rowSet.has(k) ? 'wrote' : 'removed'} ${k} after it`,
        })
      }
    } else {
      const acked = index.setters.get(k)!.filter(isConstraint)
      if (acked.length === 0) continue
      if (index.removers.get(k)!.some((r) => canBeLast(r, k))) continue
      const last = acked.reduce((a, b) => (b.end > a.end ? b : a))
      const rm = index.removers.get(k)!
      out.push({
        kind: 'lost-row',
        key: k,
        ops: [last.id],
        message: `${k} is absent, but acknowledged ${desc(last)} wrote it and no delete/replace can have removed it after (removers: ${
          rm.map(desc).join('; ') || 'none'
        })`,
      })
    }
  }

  if (atomicity === 'partition') {
    const seen = new Set<string>()
    for (const [k, v] of snap.values) {
      const x = ops.get(v)
      if (!x?.rowSet.has(k)) continue
      const part = partitionOf(k)
      if (seen.has(`${x.id} ${part}`)) continue
      seen.add(`${x.id} ${part}`)
      for (const k2 of x.rows) {
        if (k2 === k || partitionOf(k2) !== part) continue
        const v2 = snap.values.get(k2)
        if (v2 === x.id) continue
        if (v2 !== undefined) {
          const l = ops.get(v2)
          if (!l || l.end >= x.start) continue // an unknown value is reported above
          out.push({
            kind: 'torn-partition-write',
            key: k2,
            ops: [x.id, l.id],
            message: `${desc(x)} is visible at ${k} but ${k2} (same partition ${part}) holds ${desc(l)}, which ended before it began`,
          })
        } else if (!index.removers.get(k2)!.some((r) => r.end >= x.start)) {
          out.push({
            kind: 'torn-partition-write',
            key: k2,
            ops: [x.id],
            message: `${desc(x)} is visible at ${k} but its row ${k2} (same partition ${part}) is absent and nothing could have removed it since`,
          })
        }
      }
    }
  }
  return out
}

/** Outcome-level checks of acknowledged ops (independent of what is stored). */
export function checkOutcomes(ops: Map<string, Op>, lines: LogLine[]): Violation[] {
  const out: Violation[] = []
  const rowsOk = new Map<string, number | undefined>()
  for (const l of lines) if (l.t === 'ok') rowsOk.set(l.op, l.rows)
  for (const op of ops.values()) {
    if (op.status === 'ok' && op.kind !== 'delete' && rowsOk.get(op.id) !== op.rows.length) {
      out.push({
        kind: 'wrong-result',
        ops: [op.id],
        message: `${desc(op)} reported rowsWritten ${rowsOk.get(op.id)} for ${op.rows.length} rows`,
      })
    }
    if (op.status === 'err' && op.errName === DuplicateKeyError.name && op.kind !== 'append') {
      out.push({ kind: 'bad-error', ops: [op.id], message: `${desc(op)} failed with ${op.error}` })
    }
  }
  return out
}
