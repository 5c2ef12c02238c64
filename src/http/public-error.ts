/**
 * What a client is shown of an error, in an error body or in the error record that ends a
 * stream: a `StorageError`'s code, message and details; for backend failures (`store_error`,
 * `commit_in_doubt`) a generic message, the safe codes and a `ref`, the driver's or store's text
 * staying in the server log under that `ref`; `internal_error` for anything else.
 */

import { HTTPException } from 'hono/http-exception'
import { StorageError } from '../core/errors.js'

export interface PublicError {
  status: number
  code: string
  message: string
  details: Record<string, unknown>
  /** The `StorageError` behind it (a wrapped one for anything else). */
  error: StorageError
}

/** Details of a backend failure that are codes, not text, and may be shown. */
const SAFE_DETAILS = new Set(['sqlstate', 'reason', 'outcome', 'driverCode', 'what', 'status'])

/** `details.written` of a failed multi-partition write: partition paths and counts, shown as they are. */
function safeWritten(x: unknown): unknown {
  if (typeof x !== 'object' || x === null) return undefined
  const w = x as Record<string, unknown>
  const paths = (v: unknown) => (Array.isArray(v) ? v.filter((p) => typeof p === 'string') : [])
  return {
    committed: paths(w.committed),
    rowsCommitted: typeof w.rowsCommitted === 'number' ? w.rowsCommitted : 0,
    inDoubt: paths(w.inDoubt),
    notWritten: paths(w.notWritten),
  }
}

/** `where` names the request in the log line (e.g. `POST /v1/datasets/x/rows`). */
export function publicError(err: unknown, where: string): PublicError {
  let e: StorageError
  if (err instanceof StorageError) e = err
  else if (err instanceof HTTPException)
    e = new StorageError(err.status, err.status === 404 ? 'not_found' : 'http_error', err.message)
  else {
    console.error(`[http] ${where} failed:`, err)
    e = new StorageError(500, 'internal_error', 'internal error')
  }
  let message = e.message
  let details: Record<string, unknown> = e.details ?? {}
  if (e.status >= 500 && err instanceof StorageError) {
    const backendFailure = e.code === 'store_error' || e.code === 'commit_in_doubt'
    const ref = backendFailure ? crypto.randomUUID().slice(0, 8) : undefined
    console.error(`[http] ${where} failed${ref ? ` (ref ${ref})` : ''}:`, err)
    if (ref) {
      // driver and store messages can carry hosts, buckets, table names, SQL: they stay in the log
      const written = safeWritten(details.written)
      details = Object.fromEntries(Object.entries(details).filter(([k, x]) => SAFE_DETAILS.has(k) && typeof x !== 'object'))
      if (written) details.written = written
      details.ref = ref
      message =
        e.code === 'commit_in_doubt'
          ? `the commit${typeof details.what === 'string' ? ` of '${details.what}'` : ''} may or may not have been applied: retrying the same call is safe (ref ${ref}; the server log has the details)`
          : `the storage backend failed (ref ${ref}; the server log has the details)`
      if (written) message += `; ${describeWritten(written as WrittenShape)}`
    }
  }
  return { status: e.status, code: e.code, message, details, error: e }
}

interface WrittenShape {
  committed: string[]
  rowsCommitted: number
  inDoubt: string[]
}

function describeWritten(w: WrittenShape): string {
  const said: string[] = []
  if (w.committed.length) said.push(`${w.rowsCommitted} row(s) in ${w.committed.length} partition(s) were committed`)
  if (w.inDoubt.length) said.push(`${w.inDoubt.length} partition(s) may or may not have been committed`)
  return said.length ? `${said.join('; ')} (details.written); nothing else was written` : 'nothing was written'
}
