/**
 * Browser defences of the open local server (no tokens, writes open): only loopback `Host`
 * values, no foreign `Origin`. Plus the opt-in escaping of formula-like CSV values.
 */

import type { MiddlewareHandler } from 'hono'
import { ForeignRequestError } from '../core/errors.js'
import type { Table } from '../core/types.js'

/** The names a loopback server answers to, as they appear in a `Host` header. */
export const LOOPBACK_HOST_NAMES = ['localhost', '127.0.0.1', '[::1]'] as const

export interface HostGuardOptions {
  /** Host names besides the loopback ones (lower case, IPv6 in brackets). */
  allowedHosts?: string[]
  /** The port the `Host` must carry (absent = 80); undefined or 0: any port. */
  port?: number | (() => number | undefined)
}

/** `name[:port]` of a Host header or URL host, lower-cased; null when it is not one. */
function splitHost(host: string): { name: string; port: number | undefined } | null {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host.toLowerCase())
  return m ? { name: m[1], port: m[2] === undefined ? undefined : Number(m[2]) } : null
}

/**
 * Middleware: 403 unless the `Host` (header, else the URL's) is a loopback or allowed name on the
 * server's port, and any `Origin` is `http://` one of those hosts.
 */
export function hostGuard(options: HostGuardOptions): MiddlewareHandler {
  const names = new Set<string>([...LOOPBACK_HOST_NAMES, ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())])
  const portOf = typeof options.port === 'function' ? options.port : () => options.port as number | undefined
  const allowed = (host: string, defaultPort: number) => {
    const h = splitHost(host)
    if (!h || !names.has(h.name)) return false
    const port = portOf()
    return !port || (h.port ?? defaultPort) === port
  }
  return async (c, next) => {
    const host = c.req.header('host') ?? new URL(c.req.url).host
    if (!allowed(host, 80)) throw new ForeignRequestError('host', host)
    const origin = c.req.header('origin')
    if (origin !== undefined) {
      let ok = false
      try {
        const url = new URL(origin)
        ok = url.protocol === 'http:' && url.origin === origin && allowed(url.host, 80)
      } catch {
        ok = false // 'null' (sandboxed frames, file:, redirects) and anything unparsable
      }
      if (!ok) throw new ForeignRequestError('origin', origin)
    }
    return next()
  }
}

/** Starts a value a spreadsheet would evaluate as a formula (OWASP CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/

/** `table` with every string value that starts like a formula prefixed with `'` (shares the other columns). */
export function escapeFormulas(table: Table): Table {
  let columns: Table['columns'] | undefined
  for (const [name, col] of Object.entries(table.columns)) {
    if (col.type !== 'string' || !col.values.some((x) => x !== null && FORMULA_START.test(x))) continue
    columns ??= { ...table.columns }
    columns[name] = { type: 'string', values: col.values.map((x) => (x !== null && FORMULA_START.test(x) ? `'${x}` : x)) }
  }
  return columns ? { ...table, columns } : table
}
