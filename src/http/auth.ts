/**
 * Bearer-token auth: `Authorization: Bearer <token>` checked in constant time against the
 * configured tokens, then the route's scope. `admin` implies `read` and `write`. Failed attempts
 * are slowed (each waits `delayMs`) and, per client address, limited (`limit` failures within
 * `windowMs`, then 429 for every attempt from that address until the window ends); the table of
 * addresses is bounded (`maxClients`, the least recently failing dropped first).
 */

import type { Context, MiddlewareHandler } from 'hono'
import {
  ForbiddenError,
  ReadsDisabledError,
  TooManyFailuresError,
  UnauthorizedError,
  WritesDisabledError,
} from '../core/errors.js'
import type { ApiToken } from './app-types.js'

export type Scope = ApiToken['scopes'][number]

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

export interface FailurePolicy {
  /** Every failed authentication is answered after this long (default 250 ms). */
  delayMs: number
  /** Failures from one address within `windowMs` after which it gets 429 (default 20). */
  limit: number
  /** Default 60 s. */
  windowMs: number
  /** Addresses remembered at most (default 10,000): memory stays bounded whatever the traffic. */
  maxClients: number
}

export const DEFAULT_FAILURE_POLICY: FailurePolicy = { delayMs: 250, limit: 20, windowMs: 60_000, maxClients: 10_000 }

/** Failed authentications per client address in a fixed window, in a bounded map (oldest failure dropped first). */
export class FailureLimiter {
  private readonly clients = new Map<string, { count: number; since: number }>()
  constructor(
    private readonly policy: FailurePolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `address` may try again, or 0. */
  blockedFor(address: string): number {
    const entry = this.clients.get(address)
    if (!entry) return 0
    const left = entry.since + this.policy.windowMs - this.now()
    if (left <= 0) {
      this.clients.delete(address)
      return 0
    }
    return entry.count >= this.policy.limit ? Math.ceil(left / 1000) : 0
  }

  fail(address: string): void {
    const t = this.now()
    const entry = this.clients.get(address)
    this.clients.delete(address)
    const current = entry && t - entry.since < this.policy.windowMs ? entry : { count: 0, since: t }
    current.count++
    this.clients.set(address, current)
    if (this.clients.size > this.policy.maxClients) this.clients.delete(this.clients.keys().next().value as string)
  }

  get size(): number {
    return this.clients.size
  }
}

export function hasScope(token: ApiToken, scope: Scope): boolean {
  return token.scopes.includes(scope) || token.scopes.includes('admin')
}

export interface AuthConfig {
  tokens: ApiToken[]
  openWrites: boolean
  /** With no tokens: `true` (default) serves reads to anyone; `false` refuses them (403). */
  publicReads?: boolean
  /** The caller's address, for the failure limit; undefined: failures are only delayed. */
  clientAddress?: (c: Context) => string | undefined
  failures?: Partial<FailurePolicy>
  /** Clock for the failure window (tests). */
  now?: () => number
}

export type RequireScope = ((scope: Scope) => MiddlewareHandler) & {
  /**
   * The token the request presents, if it is valid (counted and slowed like any failure when it
   * is not); null without one. Never throws: for routes open to all that show more to a token holder.
   */
  identify(c: Context): Promise<ApiToken | null>
}

/**
 * Middleware factory: `requireScope('write')` on a route. With no tokens configured, `read`
 * routes are open, and `write` and `admin` routes are open only with `openWrites` (the local
 * server on loopback); a public Worker without tokens serves reads only.
 */
export function createAuth(config: AuthConfig): RequireScope {
  const { tokens, openWrites } = config
  const publicReads = config.publicReads ?? true
  const policy = { ...DEFAULT_FAILURE_POLICY, ...config.failures }
  const limiter = new FailureLimiter(policy, config.now)
  const addressOf = (c: Context) => config.clientAddress?.(c)
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

  /** A failed attempt: counted against the address, answered after the delay. */
  async function failed(address: string | undefined): Promise<void> {
    if (address !== undefined) limiter.fail(address)
    if (policy.delayMs > 0) await new Promise((r) => setTimeout(r, policy.delayMs))
  }

  /** The presented token if valid; throws 401/429 (`quiet`: returns null instead). */
  async function authenticate(c: Context, quiet: boolean): Promise<ApiToken | null> {
    const header = c.req.header('authorization')
    const m = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null
    if (!m) {
      if (quiet) return null
      throw new UnauthorizedError(header ? "expected 'Authorization: Bearer <token>'" : 'a bearer token is required')
    }
    const address = addressOf(c)
    const wait = address === undefined ? 0 : limiter.blockedFor(address)
    if (wait > 0) {
      if (quiet) return null
      throw new TooManyFailuresError(wait)
    }
    const token = await identify(m[1])
    if (token) return token
    await failed(address)
    if (quiet) return null
    throw new UnauthorizedError('unknown bearer token')
  }

  const requireScope = ((scope: Scope): MiddlewareHandler =>
    async (c, next) => {
      if (tokens.length === 0) {
        if ((scope === 'write' || scope === 'admin') && !openWrites) throw new WritesDisabledError(scope)
        if (scope === 'read' && !publicReads && !openWrites) throw new ReadsDisabledError()
        return next()
      }
      const token = (await authenticate(c, false))!
      if (!hasScope(token, scope)) throw new ForbiddenError(scope)
      return next()
    }) as RequireScope
  requireScope.identify = (c) => (tokens.length === 0 ? Promise.resolve(null) : authenticate(c, true))
  return requireScope
}
