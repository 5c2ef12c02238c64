/**
 * A `@neondatabase/serverless` pool for the Postgres backend: the Postgres wire protocol over a
 * WebSocket, so it runs in Workers, Bun and Node (Node 20 needs `webSocketConstructor`, e.g. `ws`).
 * Web-standard: safe in the Worker bundle.
 */

import { Client, Pool } from '@neondatabase/serverless'
import type { PgPoolLike } from './pool-types.js'
import { clientTimeoutSettings, type PostgresTimeouts, resolveTimeouts } from './timeouts.js'

/** `keepAlive` settings are ignored: the connection is a WebSocket. */
export interface NeonPoolOptions extends PostgresTimeouts {
  /** Maximum connections (default 10). */
  max?: number
  /** WebSocket constructor where there is no global `WebSocket` (Node 20: `import ws from 'ws'`). */
  webSocketConstructor?: unknown
  /** A WebSocket-to-TCP proxy for non-Neon servers: `(host, port) => 'proxy:port/v1?address=' + host + ':' + port`. */
  wsProxy?: string | ((host: string, port: number | string) => string)
  /** `wss:` (default true); false for a local relay. */
  useSecureWebSocket?: boolean
  /** Pipelined connection start-up (Neon default 'password'); false for servers without cleartext password auth. */
  pipelineConnect?: 'password' | false
}

/**
 * A Neon serverless pool for `url`. The WebSocket settings apply to this pool's connections only
 * (they are set on each of its clients, not on the global `neonConfig`). The timeouts
 * (`timeouts.ts`) have defaults, as for `pg`.
 */
export function createNeonPool(url: string, options: NeonPoolOptions = {}): PgPoolLike & Pool {
  const t = resolveTimeouts(options)
  const overrides: Record<string, unknown> = {}
  if (options.webSocketConstructor !== undefined) overrides.webSocketConstructor = options.webSocketConstructor
  if (options.wsProxy !== undefined) overrides.wsProxy = options.wsProxy
  if (options.useSecureWebSocket !== undefined) overrides.useSecureWebSocket = options.useSecureWebSocket
  if (options.pipelineConnect !== undefined) overrides.pipelineConnect = options.pipelineConnect
  class ConfiguredClient extends Client {
    constructor(config: ConstructorParameters<typeof Client>[0]) {
      super(config)
      Object.assign(this.neonConfig, overrides)
    }
  }
  class ConfiguredPool extends Pool {
    override Client = ConfiguredClient
  }
  const pool = new ConfiguredPool({ connectionString: url, max: options.max ?? 10, ...clientTimeoutSettings(t) })
  // an idle client losing its connection must not crash the process; the next query reconnects
  pool.on('error', () => undefined)
  return pool
}
