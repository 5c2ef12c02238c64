/**
 * The op log of one storage instance: applies the configured levels, keeps records in memory
 * and stores them in batches through the backend's `OpLogStore`, and removes old ones.
 *
 * - Batching: a flush writes everything buffered as one batch (one object per UTC day on the
 *   lake, one statement on postgres, one `insertMany` on mongodb). It runs when `flushRecords`
 *   are buffered, `flushIntervalMs` after the first buffered record, on `flush()`/`settle()`,
 *   and on `close()`. One flush at a time; records arriving meanwhile wait for the next.
 * - Failures never reach the operation that reported: a failed flush is logged, its records
 *   go back to the buffer (oldest dropped beyond `maxBuffered`, counted in `dropped`) and the
 *   next flush retries them.
 * - Exit: on Node and Bun, records still buffered when the event loop runs empty (a script
 *   that never calls `close()`) are flushed on `beforeExit`, once per log (a failed exit flush
 *   is logged, not retried forever). The flush timer is unref'd, so it never keeps a process
 *   alive. Records buffered when the process is killed, or exits with `process.exit()`, are lost.
 *   On Workers the entry point hands `settle()` to `ctx.waitUntil`.
 * - Retention runs after a flush at most every `retentionEveryMs` (default hourly), and on
 *   `applyRetention()` (the maintenance runner).
 * - Levels: `logOperations` keeps every record; `logErrors` keeps failed ones even when
 *   `logOperations` is off and prints them to the runtime's log: `console.error` for failures
 *   (5xx, unexpected errors), `console.warn` for refused input (4xx: validation, conflicts);
 *   `logPerformance` off zeroes `durationMs`, `bytes` and `requests` (the fields stay, so the
 *   record shape never changes) and the summary has no percentiles.
 */

import type { OpKind, OpLog, OpLogQuery, OpLogStore, OpLogSummary, OpRecord, OpSummaryEntry } from '../core/oplog-types.js'
import { Reservoir } from '../reservoir.js'
import { ActivityTracker } from './activity.js'
import { errorOf, matches, mergeNewest, newestFirst, newOpRecord, noRequests } from './records.js'

export interface OpLogOptions {
  /** Where records are stored; null keeps the newest `maxBuffered` in memory only. */
  store: OpLogStore | null
  logOperations?: boolean
  logPerformance?: boolean
  logErrors?: boolean
  /** Stored records older than this are removed (default 90, as `metadata_logging.retention_days`). */
  retentionDays?: number
  /** Flush when this many records are buffered (default 500). */
  flushRecords?: number
  /** Flush at most this long after the first buffered record (default 5,000 ms). */
  flushIntervalMs?: number
  /** Records kept in memory while the store is failing (default 10,000). */
  maxBuffered?: number
  /** Minimum time between automatic retention runs (default 1 hour; the first runs after the first flush). `Infinity`: only `applyRetention()`. */
  retentionEveryMs?: number
  /** The clock for record times and retention cutoffs, epoch ms (default `Date.now`). Timers use real time. */
  now?: () => number
  /**
   * Where failed operations and op-log failures are printed: `error` level for failures
   * (`console.error` by default), `warn` for refused input (4xx, `console.warn`).
   */
  logger?: (message: string, level: 'error' | 'warn') => void
  /**
   * Print each failed operation to `logger` (default true; a server's log). A command-line tool
   * that reports the failure itself turns this off so the error is shown once; failed records
   * are still kept, and the op log's own failures (flush, retention) are still printed.
   */
  printFailures?: boolean
  /**
   * Waits before the retries of a failed flush inside `settle()` (default 1 s, then 3 s). A
   * runtime that stops work with the request (Workers) may never run the retry timer, so
   * `settle()` retries itself before giving up (the records stay buffered for the next flush).
   */
  settleRetriesMs?: number[]
}

const DAY_MS = 86_400_000

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The process events this module uses, where the runtime has them (Node, Bun; not Workers). */
type ExitEvents = { on?: (event: 'beforeExit', listener: () => void) => unknown }

/** Logs holding unflushed records, flushed when the event loop runs empty (`beforeExit`). */
const pendingAtExit = new Set<BufferedOpLog>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  try {
    const proc = (globalThis as { process?: ExitEvents }).process
    // the flushes keep the loop alive until they settle; then beforeExit fires again and finds
    // nothing left (or only logs whose exit flush failed, which are not retried)
    proc?.on?.('beforeExit', () => {
      for (const log of [...pendingAtExit]) void log.flushAtExit()
    })
  } catch {
    // a runtime without process events: records are flushed by the timer, flush() and close()
  }
}

interface OpStats {
  ok: number
  error: number
  durations: Reservoir
}

export class BufferedOpLog implements OpLog {
  /** Store activity of the storage this log belongs to (its flushes are activity too). */
  readonly activity = new ActivityTracker()
  readonly logOperations: boolean
  readonly logPerformance: boolean
  readonly logErrors: boolean
  readonly retentionDays: number
  readonly now: () => number
  private readonly store: OpLogStore | null
  private readonly flushRecords: number
  private readonly flushIntervalMs: number
  private readonly maxBuffered: number
  private readonly retentionEveryMs: number
  private readonly logger: (message: string, level: 'error' | 'warn') => void
  private readonly startedAt: number
  private buffer: OpRecord[] = []
  /** Real time (Date.now) the oldest buffered record arrived. */
  private bufferedSince = 0
  private inFlight: OpRecord[] | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private lastRetention: number | null = null
  private readonly ops = new Map<OpKind, OpStats>()
  private recorded = 0
  private flushed = 0
  private dropped = 0
  private batches = 0
  private lastError: OpLogSummary['lastError'] = null
  private closed = false
  private readonly printFailures: boolean
  private readonly settleRetriesMs: number[]
  /** The exit flush failed: not tried again at the next `beforeExit`. */
  private exitFlushFailed = false

  constructor(options: OpLogOptions) {
    this.store = options.store
    this.logOperations = options.logOperations ?? true
    this.logPerformance = options.logPerformance ?? true
    this.logErrors = options.logErrors ?? true
    this.retentionDays = options.retentionDays ?? 90
    this.flushRecords = options.flushRecords ?? 500
    this.flushIntervalMs = options.flushIntervalMs ?? 5_000
    this.maxBuffered = options.maxBuffered ?? 10_000
    this.retentionEveryMs = options.retentionEveryMs ?? 3_600_000
    this.now = options.now ?? Date.now
    this.logger = options.logger ?? ((message, level) => (level === 'warn' ? console.warn(message) : console.error(message)))
    this.printFailures = options.printFailures ?? true
    this.settleRetriesMs = options.settleRetriesMs ?? [1_000, 3_000]
    this.startedAt = this.now()
  }

  // ---- taking records --------------------------------------------------------------------

  record(input: OpRecord): void {
    if (this.closed) return
    const failed = input.outcome === 'error'
    if (failed && this.logErrors && this.printFailures)
      this.logger(describeFailure(input), (input.error?.status ?? 500) < 500 ? 'warn' : 'error')
    if (!(this.logOperations || (failed && this.logErrors))) return
    const r = this.logPerformance ? input : { ...input, durationMs: 0, bytes: 0, requests: noRequests() }
    this.count(r)
    if (this.buffer.length === 0) this.bufferedSince = Date.now()
    this.buffer.push(r)
    if (this.buffer.length > this.maxBuffered) this.drop(this.buffer.length - this.maxBuffered)
    if (!this.store) return
    if (!this.exitFlushFailed) {
      installExitHook()
      pendingAtExit.add(this)
    }
    if (this.buffer.length >= this.flushRecords) void this.flush()
    else this.arm(this.flushIntervalMs)
  }

  private count(r: OpRecord): void {
    this.recorded++
    let s = this.ops.get(r.op)
    if (!s) {
      s = { ok: 0, error: 0, durations: new Reservoir() }
      this.ops.set(r.op, s)
    }
    s[r.outcome]++
    if (this.logPerformance) s.durations.add(r.durationMs)
  }

  private drop(n: number): void {
    this.buffer.splice(0, n)
    this.dropped += n
  }

  /** A flush `ms` from now unless one is already scheduled; the timer never keeps a process alive. */
  private arm(ms: number): void {
    if (this.timer || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.flush()
    }, ms)
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  // ---- storing ---------------------------------------------------------------------------

  async flush(): Promise<void> {
    // Polls instead of awaiting the other flush's promise: on Workers a promise settled by
    // another request's I/O must not be awaited across requests.
    while (this.inFlight) await delay(5)
    await this.flushOnce()
  }

  /** The `beforeExit` flush: once; a failure is logged by the flush and not retried at exit. */
  async flushAtExit(): Promise<void> {
    pendingAtExit.delete(this)
    await this.flush()
    if (this.buffer.length > 0 && this.lastError) {
      this.exitFlushFailed = true
      pendingAtExit.delete(this)
    }
  }

  async settle(): Promise<void> {
    if (!this.store || (this.buffer.length === 0 && !this.inFlight)) return
    const due = this.bufferedSince + this.flushIntervalMs - Date.now()
    if (this.buffer.length > 0 && due > 0) await delay(due)
    await this.flush()
    for (const wait of this.settleRetriesMs) {
      // stored, or nothing failed (records buffered since are another request's to settle)
      if (this.buffer.length === 0 || this.lastError === null || this.closed) return
      await delay(wait)
      await this.flush()
    }
  }

  private async flushOnce(): Promise<void> {
    this.disarm()
    if (!this.store || this.buffer.length === 0) return
    const batch = this.buffer
    this.buffer = []
    this.inFlight = batch
    const end = this.activity.begin()
    try {
      await this.store.append(batch)
      this.flushed += batch.length
      this.batches++
      this.lastError = null
      if (this.buffer.length === 0) pendingAtExit.delete(this)
    } catch (err) {
      this.fail('flush', err, `${batch.length} records kept for the next flush`)
      this.buffer = batch.concat(this.buffer)
      if (this.buffer.length > this.maxBuffered) this.drop(this.buffer.length - this.maxBuffered)
      if (!this.closed) this.arm(this.flushIntervalMs)
      return
    } finally {
      this.inFlight = null
      end()
    }
    const due = this.lastRetention === null || this.now() - this.lastRetention >= this.retentionEveryMs
    if (Number.isFinite(this.retentionEveryMs) && due) {
      await this.applyRetention().catch((err) => this.fail('retention', err, 'retried after the next flush'))
    }
  }

  private fail(what: string, err: unknown, consequence: string): void {
    const e = errorOf(err)
    this.lastError = { ...e, at: new Date(this.now()).toISOString() }
    this.logger(`[oplog] ${what} failed (${consequence}): ${e.code}: ${e.message}`, 'error')
  }

  async applyRetention(): Promise<number> {
    if (!this.store) return 0
    const started = this.now()
    this.lastRetention = started
    const cutoff = started - this.retentionDays * DAY_MS
    const t0 = performance.now()
    const end = this.activity.begin()
    let removed: number
    try {
      removed = await this.store.removeBefore(cutoff)
    } finally {
      end()
    }
    if (removed > 0) {
      this.record(
        newOpRecord('retention', {
          startedAt: started,
          rows: removed,
          durationMs: performance.now() - t0,
          details: { target: 'oplog', cutoff: new Date(cutoff).toISOString(), retentionDays: this.retentionDays },
        }),
      )
    }
    return removed
  }

  // ---- reading ---------------------------------------------------------------------------

  async query(q: OpLogQuery): Promise<OpRecord[]> {
    const memory = [...(this.inFlight ?? []), ...this.buffer].filter((r) => matches(r, q)).sort(newestFirst)
    if (!this.store || q.limit === 0) return memory.slice(0, q.limit)
    const end = this.activity.begin()
    let stored: OpRecord[]
    try {
      stored = await this.store.query(q)
    } finally {
      end()
    }
    return mergeNewest([memory, stored], q.limit)
  }

  summary(): OpLogSummary {
    const operations: Partial<Record<OpKind, OpSummaryEntry>> = {}
    for (const [op, s] of [...this.ops].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [p50Ms, p99Ms] = s.durations.percentiles(50, 99)
      operations[op] = { ok: s.ok, error: s.error, p50Ms, p99Ms }
    }
    return {
      enabled: true,
      startedAt: new Date(this.startedAt).toISOString(),
      recorded: this.recorded,
      flushed: this.flushed,
      pending: this.buffer.length + (this.inFlight?.length ?? 0),
      dropped: this.dropped,
      batches: this.batches,
      lastError: this.lastError,
      operations,
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    await this.flush()
    this.closed = true
    this.disarm()
    pendingAtExit.delete(this)
  }
}

function describeFailure(r: OpRecord): string {
  const where = r.dataset ? ` ${r.dataset}` : ''
  const e = r.error ?? { code: 'error', message: 'failed' }
  return `[oplog] ${r.op}${where} failed after ${Math.round(r.durationMs)} ms: ${e.code}: ${e.message}`
}
