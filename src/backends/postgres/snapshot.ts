/**
 * The read snapshot of one `scan`: a pooled connection holding a `READ ONLY` `REPEATABLE READ`
 * transaction, so every page of the scan sees the database as of its first statement (a write
 * that commits while the scan runs is seen wholly or not at all, in every partition).
 *
 * The connection is held while the consumer works on a batch. `close()` (the scan's `finally`:
 * end of data, consumer `break`/`return`, error) rolls the transaction back and returns the
 * connection, or destroys it when the scan failed. A consumer that stops asking for batches
 * without closing the iterator (it dropped it) would hold the connection forever: after
 * `idleMs` without a request for the next batch the snapshot destroys the connection itself
 * (the server ends the transaction), and the scan's next request fails with a `StoreError`
 * (`details.reason: 'scan_idle_timeout'`). The server-side
 * `idle_in_transaction_session_timeout` of the transaction is set a little past `idleMs`, so the
 * client's own limit is what normally ends it; `idleMs` 0 turns both off.
 */

import { StoreError } from '../../core/errors.js'
import type { PgClientLike, PgQueryResult } from './pool-types.js'
import { type Session, type StatementKind, wrapDbError } from './session.js'

/** How much longer the server waits than the client before ending an idle scan transaction. */
const SERVER_MARGIN_MS = 10_000

export class ReadSnapshot {
  private client: PgClientLike | null
  private timer: ReturnType<typeof setTimeout> | null = null
  private expired = false

  private constructor(
    private readonly session: Session,
    client: PgClientLike,
    private readonly idleMs: number,
  ) {
    this.client = client
  }

  /** Checks out a connection and starts the transaction (the connection is released if that fails). */
  static async open(session: Session, idleMs: number): Promise<ReadSnapshot> {
    const snap = new ReadSnapshot(session, await session.checkout(), idleMs)
    const serverMs = idleMs > 0 ? Math.min(idleMs + SERVER_MARGIN_MS, 2_147_483_647) : 0
    try {
      // one round trip (simple query protocol, two statements), like the BEGIN of a write: not counted
      await snap.client!.query({
        text: `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL idle_in_transaction_session_timeout = ${serverMs}`,
      })
    } catch (err) {
      snap.destroy(err)
      throw wrapDbError(err)
    }
    return snap
  }

  /** One statement in the snapshot. */
  query(kind: StatementKind, text: string, values: unknown[], array = false): Promise<PgQueryResult> {
    return this.session.run(this.active(), kind, text, values, array)
  }

  /** The consumer has a batch: the idle limit starts (see the file comment). */
  pause(): void {
    if (!this.client || this.idleMs <= 0) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.expired = true
      this.destroy(new Error(`scan idle for ${this.idleMs} ms`))
    }, this.idleMs)
    ;(this.timer as { unref?: () => void }).unref?.() // a forgotten scan does not keep the process alive
  }

  /** The consumer asks for the next batch: throws if the snapshot expired meanwhile. */
  resume(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.active()
  }

  /**
   * Ends the snapshot: on success the transaction is rolled back (it read only) and the
   * connection returned to the pool; after a failure (`failed`), or if the rollback fails, the
   * connection is destroyed. Idempotent.
   */
  async close(failed?: unknown): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const client = this.client
    if (!client) return
    if (failed !== undefined) return this.destroy(failed)
    this.client = null
    try {
      await client.query({ text: 'ROLLBACK' })
    } catch (err) {
      client.release(err instanceof Error ? err : new Error(String(err)))
      return
    }
    client.release()
  }

  private active(): PgClientLike {
    if (this.client) return this.client
    if (this.expired) {
      throw new StoreError(
        `postgres: scan abandoned: no batch was asked for within ${this.idleMs} ms, so its snapshot and connection were released`,
        { reason: 'scan_idle_timeout', idleMs: this.idleMs },
      )
    }
    throw new StoreError('postgres: the scan is closed', { reason: 'scan_closed' })
  }

  /** Destroys the connection (the pool drops it; the server ends its transaction). */
  private destroy(err: unknown): void {
    const client = this.client
    this.client = null
    client?.release(err instanceof Error ? err : new Error(String(err)))
  }
}
