/**
 * The chaos harness's shared vocabulary: the small, overlapping key space, the seeded PRNG, the
 * operations writers send and the lines they log about them (see `oplog-file.ts`).
 *
 * Every row a write stores carries the write's op id in the `op` column, and a batch never holds a
 * key twice, so the value found at a key names exactly one write that could have put it there.
 */

export const SYMBOLS = ['AA', 'BB', 'CC']
export const DAYS = ['2024-01-02', '2024-01-03', '2024-01-04']
/** Timestamps per symbol-day: 14:30, 14:31... (few keys, so writes collide often). */
export const SLOTS = 4
export const DATASET = 'chaos'
const MINUTE = 60_000

export type OpKind = 'upsert' | 'append' | 'replace' | 'delete'
export const OP_KINDS: OpKind[] = ['upsert', 'append', 'replace', 'delete']

/** A key as `symbol@epochMs`. */
export type KeyId = string

export const keyId = (symbol: string, ms: number): KeyId => `${symbol}@${ms}`

export function parseKey(k: KeyId): { symbol: string; ms: number } {
  const at = k.lastIndexOf('@')
  return { symbol: k.slice(0, at), ms: Number(k.slice(at + 1)) }
}

export const msOf = (day: string, slot: number): number => Date.parse(`${day}T14:30:00Z`) + slot * MINUTE

/** Every key of the key space, in (symbol, timestamp) order. */
export const ALL_KEYS: KeyId[] = SYMBOLS.flatMap((s) =>
  DAYS.flatMap((d) => Array.from({ length: SLOTS }, (_, i) => keyId(s, msOf(d, i)))),
)

/** The partition of a key under the default `['symbol', 'date']` partitioning (the one every store here uses). */
export function partitionOf(k: KeyId): string {
  const { symbol, ms } = parseKey(k)
  return `${symbol}/${new Date(ms).toISOString().slice(0, 10)}`
}

/** A write (rows) or a delete (filter), as logged before it is sent. */
export interface OpIntent {
  t: 'intent'
  op: string
  proc: string
  kind: OpKind
  /** Epoch ms, logged (and fsync'd) before the call starts. */
  at: number
  /** Keys written (upsert, append, replace), in batch order; each row's `op` column is `op`. */
  rows?: KeyId[]
  /** delete: the filter (`end` exclusive; absent symbols = all). */
  del?: { symbols?: string[]; start?: number; end?: number }
}

export interface OpOutcome {
  t: 'ok' | 'err'
  op: string
  /** Epoch ms, logged after the call settled. */
  at: number
  /** ok: rowsWritten / rowsDeleted. */
  rows?: number
  /** err: `name: message`. */
  error?: string
  /** err: the error's class name (DuplicateKeyError...). */
  name?: string
}

/** Maintainer lines: one per maintain()/gc() call. */
export interface MaintLine {
  t: 'maint'
  proc: string
  what: 'maintain' | 'gc'
  at: number
  ok: boolean
  compacted?: number
  orphans?: number
  error?: string
}

export type LogLine = OpIntent | OpOutcome | MaintLine

/** sfc32 seeded through splitmix32: small, fast, and the same sequence for the same seed. */
export function rng(seed: number): () => number {
  let h = seed >>> 0
  const next32 = () => {
    h = (h + 0x9e3779b9) >>> 0
    let z = h
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = next32()
  let b = next32()
  let c = next32()
  let d = next32()
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t / 4294967296
  }
}

export const pickOne = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)]
export const between = (lo: number, hi: number, r: () => number): number => lo + Math.floor(r() * (hi - lo + 1))

function subset<T>(xs: readonly T[], n: number, r: () => number): T[] {
  const copy = [...xs]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy.slice(0, n)
}

/** Rows of one batch: 1-2 symbols x 1-2 days, each slot of those symbol-days with probability 0.6 (at least one row). */
function batchKeys(r: () => number): KeyId[] {
  const syms = subset(SYMBOLS, between(1, 2, r), r)
  const days = subset(DAYS, r() < 0.7 ? 1 : 2, r)
  const keys: KeyId[] = []
  for (const s of syms) for (const d of days) for (let i = 0; i < SLOTS; i++) if (r() < 0.6) keys.push(keyId(s, msOf(d, i)))
  if (keys.length === 0) keys.push(keyId(syms[0], msOf(days[0], between(0, SLOTS - 1, r))))
  return subset(keys, keys.length, r) // shuffled: the store sorts
}

/** The next random operation of a writer (without op id and time). */
export function randomOp(r: () => number): Pick<OpIntent, 'kind' | 'rows' | 'del'> {
  const x = r()
  if (x < 0.4) return { kind: 'upsert', rows: batchKeys(r) }
  // appends of 1-2 keys: they succeed often enough to add files beside the ones upserts rewrite
  if (x < 0.6) return { kind: 'append', rows: subset(ALL_KEYS, between(1, 2, r), r) }
  if (x < 0.8) return { kind: 'replace', rows: batchKeys(r) }
  const start = msOf(pickOne(DAYS, r), between(0, SLOTS - 1, r))
  const end = start + (r() < 0.2 ? 86_400_000 : 0) + between(1, SLOTS, r) * MINUTE
  const del: OpIntent['del'] = { start, end }
  if (r() < 0.6) del.symbols = subset(SYMBOLS, between(1, 2, r), r)
  if (r() < 0.1) delete del.start
  return { kind: 'delete', del }
}

/** Rows to send for a write intent. */
export function rowsOf(intent: OpIntent): { symbol: string; timestamp: number; op: string }[] {
  return (intent.rows ?? []).map((k) => {
    const { symbol, ms } = parseKey(k)
    return { symbol, timestamp: ms, op: intent.op }
  })
}
