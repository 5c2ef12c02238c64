/** `friday serve`: the HTTP API on Node until SIGINT/SIGTERM. */

import type { CliContext } from './context.js'

export interface ServeOptions {
  /** `--host`; unset: `HOST`, else 127.0.0.1. */
  host?: string
  /** `--port`; unset: `PORT`, else 8787. */
  port?: number
}

export async function serve(ctx: CliContext, opts: ServeOptions): Promise<void> {
  // loaded here so the other commands do not load the HTTP stack
  const { startNodeServer, listenOptionsFromEnv } = await import('../server/node-server.js')
  const fromEnv = listenOptionsFromEnv(ctx.env) // validated even when a flag wins, so a bad PORT is never silently ignored
  const server = await startNodeServer({
    host: opts.host ?? fromEnv.host,
    port: opts.port ?? fromEnv.port,
    config: ctx.config,
    env: ctx.env,
  })
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  process.stderr.write(`friday: ${signal}, shutting down\n`)
  await server.close()
}
