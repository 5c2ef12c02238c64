/** `friday serve`: the HTTP API on Node until SIGINT/SIGTERM. */

import type { CliContext } from './context.js'

export interface ServeOptions {
  host: string
  port: number
}

export async function serve(ctx: CliContext, opts: ServeOptions): Promise<void> {
  // loaded here so the other commands do not load the HTTP stack
  const { startNodeServer } = await import('../server/node-server.js')
  const server = await startNodeServer({ host: opts.host, port: opts.port, config: ctx.config, env: ctx.env })
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  process.stderr.write(`friday: ${signal}, shutting down\n`)
  await server.close()
}
