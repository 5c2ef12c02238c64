/**
 * Fan-out that owns its promises: a call returns (or throws) only after every task it started
 * has settled, starts no new task once one failed, and tells each running task to stop before
 * its next irreversible step (`signal`). `Promise.all` over `p-limit` does neither: it rejects at
 * the first error while the other tasks keep running, and queued ones start later.
 */

import pLimit from 'p-limit'

export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown } | { ok: false; skipped: true }

/** Runs `fn` over `items` (at most `concurrency` at once); waits for all; never rejects. */
export async function settleAll<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<Settled<R>[]> {
  const stop = new AbortController()
  const limit = pLimit(Math.max(1, concurrency))
  return Promise.all(
    items.map((item) =>
      limit(async (): Promise<Settled<R>> => {
        if (stop.signal.aborted) return { ok: false, skipped: true }
        try {
          return { ok: true, value: await fn(item, stop.signal) }
        } catch (error) {
          if (!stop.signal.aborted) stop.abort(error)
          else if (isAbort(error, stop.signal)) return { ok: false, skipped: true }
          return { ok: false, error }
        }
      }),
    ),
  )
}

/** Like `settleAll`, then throws the first failure (in item order) once everything has settled. */
export async function runAll<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  const settled = await settleAll(items, concurrency, fn)
  const failed = settled.find((s): s is { ok: false; error: unknown } => !s.ok && 'error' in s)
  if (failed) throw failed.error
  return settled.map((s) => (s as { ok: true; value: R }).value)
}

function isAbort(error: unknown, signal: AbortSignal): boolean {
  return error === signal.reason || (error instanceof Error && error.name === 'AbortError')
}

/** `Promise.all` that settles every promise before it throws the first rejection (in order). */
export async function allOwned<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises)
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) throw failed.reason
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value)
}

/** A promise that resolves after `ms` milliseconds (retry backoff). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
