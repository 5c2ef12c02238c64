/** `GET /healthz`: lists the datasets within `HEALTH_TIMEOUT_MS`; 503 `unhealthy` naming only what the caller may see. */

import type { Context, Hono } from 'hono'
import { HealthTimeout, StorageError, UnhealthyError } from '../../core/errors.js'
import type { Env } from '../app-types.js'
import type { RouteContext } from './context.js'

/** `GET /healthz` gives up on the backend after this long (503). */
export const HEALTH_TIMEOUT_MS = 5_000

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HealthTimeout(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Why the health check failed, safe for an unauthenticated caller: a typed storage error's code
 * and message, the timeout, or else only the error's code/name (`ECONNREFUSED`, `TypeError`),
 * never a raw message that could carry hosts or paths (that goes to the log).
 */
function healthReason(err: unknown, detailed: boolean): string {
  if (err instanceof StorageError) return detailed ? `${err.code}: ${err.message}` : err.code
  if (err instanceof HealthTimeout) return err.message
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) return code
  return err instanceof Error ? err.name : 'unknown error'
}

/** `details(c)`: whether the failure may be explained to this caller (a token holder, or the open local server). */
export function registerHealthRoutes(
  app: Hono<Env>,
  { storage, op }: RouteContext,
  details: (c: Context<Env>) => Promise<boolean>,
): void {
  app.get('/healthz', op('healthz'), async (c) => {
    const t0 = performance.now()
    try {
      await withTimeout(storage.listDatasets(), HEALTH_TIMEOUT_MS)
    } catch (err) {
      const checkedMs = Math.round(performance.now() - t0)
      throw new UnhealthyError(storage.backend, checkedMs, healthReason(err, await details(c)), err)
    }
    return c.json({ ok: true, backend: storage.backend, checkedMs: Math.round(performance.now() - t0) })
  })
}
