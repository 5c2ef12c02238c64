/** Which SQL driver to use for a Postgres URL in this runtime. */

export type PostgresDriver = 'pg' | 'neon'

/** True inside a Cloudflare Worker (no TCP sockets for `pg`). */
export function isWorkerRuntime(): boolean {
  return (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers'
}

/**
 * `neon` for Neon hosts (`*.neon.tech`) and in Workers; `pg` otherwise. An explicit choice
 * wins. A URL that does not parse gives `pg` (node-postgres reports the error on connect).
 */
export function choosePostgresDriver(url: string, explicit?: PostgresDriver | 'auto'): PostgresDriver {
  if (explicit === 'pg' || explicit === 'neon') return explicit
  if (isWorkerRuntime()) return 'neon'
  let host = ''
  try {
    host = new URL(url).hostname.toLowerCase()
  } catch {
    return 'pg'
  }
  return host === 'neon.tech' || host.endsWith('.neon.tech') ? 'neon' : 'pg'
}
