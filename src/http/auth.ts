/**
 * Bearer-token auth: `Authorization: Bearer <token>` checked in constant time against the
 * configured tokens, then the route's scope. `admin` implies `read` and `write`.
 */

import type { MiddlewareHandler } from 'hono'
import { ForbiddenError, StorageError, UnauthorizedError } from '../errors.js'
import type { ApiToken } from './app.js'

export type Scope = ApiToken['scopes'][number]

/** Writes refused because the server has no tokens and was not told writes are open. */
export class WritesDisabledError extends StorageError {
  constructor(scope: 'write' | 'admin' = 'write') {
    super(403, 'forbidden', `${scope === 'write' ? 'writes' : 'admin routes'} disabled: configure API_TOKENS`, { scope })
  }
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
}

/** Compares two fixed-length digests without exiting early. */
function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ (b[i] ?? 0)
  return diff === 0
}

/**
 * `a === b` in time independent of where they differ: both strings are hashed (SHA-256) and the
 * digests compared with a loop that never exits early, so neither content nor length leaks.
 */
export async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([sha256(a), sha256(b)])
  return digestsEqual(da, db)
}

export function hasScope(token: ApiToken, scope: Scope): boolean {
  return token.scopes.includes(scope) || token.scopes.includes('admin')
}

export interface AuthConfig {
  tokens: ApiToken[]
  openWrites: boolean
}

/**
 * Middleware factory: `requireScope('write')` on a route. With no tokens configured, `read`
 * routes are open, and `write` and `admin` routes are open only with `openWrites` (the local
 * server on loopback); a public Worker without tokens serves reads only.
 */
export function createAuth(config: AuthConfig): (scope: Scope) => MiddlewareHandler {
  const { tokens, openWrites } = config
  let digests: Promise<{ token: ApiToken; digest: Uint8Array }[]> | undefined
  const known = () => {
    digests ??= Promise.all(tokens.map(async (token) => ({ token, digest: await sha256(token.token) })))
    return digests
  }

  /** The configured token matching the presented one; every token is compared (no early exit). */
  async function identify(presented: string): Promise<ApiToken | null> {
    const digest = await sha256(presented)
    let found: ApiToken | null = null
    for (const entry of await known()) if (digestsEqual(digest, entry.digest)) found = entry.token
    return found
  }

  return (scope) => async (c, next) => {
    if (tokens.length === 0) {
      if ((scope === 'write' || scope === 'admin') && !openWrites) throw new WritesDisabledError(scope)
      return next()
    }
    const header = c.req.header('authorization')
    const m = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null
    if (!m) throw new UnauthorizedError(header ? "expected 'Authorization: Bearer <token>'" : 'a bearer token is required')
    const token = await identify(m[1])
    if (!token) throw new UnauthorizedError('unknown bearer token')
    if (!hasScope(token, scope)) throw new ForbiddenError(scope)
    return next()
  }
}
