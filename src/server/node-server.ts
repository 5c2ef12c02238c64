/**
 * The HTTP API on Node (and the listen policy the Bun entry shares): storage from config and
 * environment, the app with its tokens, a listening socket, and a banner saying how to reach it.
 * Without API tokens the API is open, so it only ever listens on a loopback address, answers only
 * to loopback `Host` names on its port and to no foreign `Origin` (see `createApp`), and refuses
 * CORS; with tokens, every token must be strong (`checkDeployment`).
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Context, Hono } from 'hono'
import { parseConfig } from '../config/load.js'
import { ConfigError } from '../core/errors.js'
import type { DataStorage } from '../core/types.js'
import { type AppOptions, createApp } from '../http/app.js'
import { bodyLimitsFromConfig } from '../http/body-limits.js'
import { checkDeployment, httpOptionsFromEnv } from '../http/config.js'
import { createStorage, type Env, nativeCodecs } from '../node.js'

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 8787
/** `close()` waits this long for running requests before cutting their connections. */
const CLOSE_GRACE_MS = 10_000

export interface ServerOptions {
  /** Interface to listen on; default `127.0.0.1`. Anything but loopback requires API tokens. */
  host?: string
  /** TCP port; default 8787, 0 picks a free one. */
  port?: number
  /** A config object for `createStorage` (default: defaults plus environment overrides). */
  config?: unknown
  /** Environment for config overrides and HTTP options (`API_TOKENS`...); default `process.env`. */
  env?: Env
  /** Where the banner goes; default `console.log`. */
  log?: (line: string) => void
}

export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8787`. */
  url: string
  /** Stops accepting connections, waits for open ones, then closes the storage. */
  close(): Promise<void>
}

/**
 * `HOST` and `PORT` from the environment (empty values count as unset), for entry points where
 * flags or options win over them: `friday serve --host/--port`, then `HOST`/`PORT`, then
 * 127.0.0.1:8787. A `PORT` that is not an integer from 0 to 65535 is a `ConfigError` naming it.
 */
export function listenOptionsFromEnv(env: Env): { host?: string; port?: number } {
  const host = env.HOST?.trim() || undefined
  const raw = env.PORT?.trim()
  if (!raw) return { host }
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    const message = `expected an integer from 0 to 65535, got ${JSON.stringify(env.PORT)}`
    throw new ConfigError(`invalid PORT: ${message}`, [{ path: 'PORT', message }])
  }
  return { host, port: Number(raw) }
}

/** True for addresses only this machine can reach: `localhost`, 127.0.0.0/8, `::1`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1'
}

/** Storage and app for one server, after checking that an open API stays on loopback. */
export interface PreparedServer {
  app: Hono
  storage: DataStorage
  host: string
  port: number
  /** No API tokens: every route is open (and the host is loopback). */
  open: boolean
  /** Tells the app the port actually bound (with port 0), which `Host` headers must carry. */
  setPort(port: number): void
}

/**
 * The peer address of a request: the socket's on Node (`@hono/node-server` puts the
 * `IncomingMessage` in `c.env.incoming`), `server.requestIP()` on Bun (`c.env` is the server),
 * `info.remoteAddr` on Deno (`c.env` is the `Deno.serve` handler's info).
 */
export function socketAddress(c: Context): string | undefined {
  const env = c.env as
    | {
        incoming?: { socket?: { remoteAddress?: string } }
        requestIP?: (r: Request) => { address: string } | null
        remoteAddr?: { hostname?: string }
      }
    | undefined
  return env?.incoming?.socket?.remoteAddress ?? env?.requestIP?.(c.req.raw)?.address ?? env?.remoteAddr?.hostname ?? undefined
}

/** `host` as a Host header names it: IPv6 in brackets. */
function hostHeaderName(host: string): string {
  const h = host.toLowerCase()
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h
}

/**
 * Validates host and port, builds storage (`createStorage(config, env)`, Node/Bun backends) and
 * the app. Throws, before building anything, when there are no tokens and the host is not
 * loopback, or when the port is not an integer from 0 to 65535.
 */
export function prepareServer(options: ServerOptions = {}): PreparedServer {
  const env = options.env ?? process.env
  const host = options.host || DEFAULT_HOST
  const port = options.port ?? DEFAULT_PORT
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port ${JSON.stringify(port)}: expected an integer from 0 to 65535`)
  }
  const http = httpOptionsFromEnv(env)
  checkDeployment(http, 'local')
  const open = !http.tokens?.length
  if (open && !isLoopbackHost(host)) {
    throw new Error(
      `refusing to listen on ${host} without API tokens: the API would be open to the network. ` +
        `Set API_TOKENS (e.g. API_TOKENS='<secret>=read+write') or listen on 127.0.0.1.`,
    )
  }
  const parsed = parseConfig(options.config, env).storage
  const limits = bodyLimitsFromConfig(parsed.limits)
  const storage = createStorage(options.config, env)
  let bound = port
  const app = createApp({
    storage,
    ...http,
    openWrites: open,
    allowedHosts: [...(http.allowedHosts ?? []), hostHeaderName(host)],
    port: () => bound,
    clientAddress: socketAddress,
    limits,
    timeUnit: parsed.ingest.time_unit,
    // native Snappy for the Parquet responses (the lakes get theirs from createStorage)
    codecs: nativeCodecs(),
  } satisfies AppOptions)
  return { app, storage, host, port, open, setPort: (p) => (bound = p) }
}

/** The lines printed once the server listens: URL, whether it is open, curl commands to try. */
export function serverBanner(url: string, open: boolean): string[] {
  const auth = open ? '' : "-H 'Authorization: Bearer <token>' "
  const row = '[{"symbol":"AAPL","timestamp":"2024-01-02T14:30:00Z","close":187.3}]'
  return [
    `Friday API listening on ${url}`,
    open
      ? 'No API_TOKENS set: the API is open (reads and writes) to programs on this machine; requests from web pages (other Host or Origin) are refused.'
      : 'API tokens required: send Authorization: Bearer <token>.',
    'Try:',
    `  curl ${url}/healthz`,
    `  curl ${auth}-H 'Content-Type: application/json' --data '${row}' ${url}/v1/datasets/bars_1m/rows`,
    `  curl ${auth}'${url}/v1/datasets/bars_1m/rows?symbols=AAPL&format=csv'`,
  ]
}

function formatUrl(host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
  return `http://${h}:${port}`
}

/** Starts the API on Node (`@hono/node-server`); resolves once it listens. */
export async function startNodeServer(options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => console.log(line))
  const { app, storage, host, port, open, setPort } = prepareServer(options)
  let server: Server
  let address: AddressInfo
  try {
    address = await new Promise<AddressInfo>((resolve, reject) => {
      server = serve({ fetch: app.fetch, hostname: host, port }, resolve) as Server // HTTP/1.1: no createServer option
      server.once('error', reject)
    })
  } catch (err) {
    await storage.close()
    const code = (err as { code?: string }).code
    if (code === 'EADDRINUSE') throw new Error(`cannot listen on ${formatUrl(host, port)}: the port is in use`, { cause: err })
    throw err
  }
  setPort(address.port)
  const url = formatUrl(host, address.port)
  for (const line of serverBanner(url, open)) log(line)
  let closing: Promise<void> | undefined
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeIdleConnections()
        // requests still running (a long streamed read) get a grace period, then are cut
        setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref()
      }).finally(() => storage.close())
      return closing
    },
  }
}
