/// <reference types="bun-types" />
/**
 * Bun entry: the HTTP API with `Bun.serve` on HOST:PORT (default 127.0.0.1:8787) over the storage
 * that the environment configures (local Parquet in ./data by default). `bun functions/bun.ts`
 *
 * Typed by `bun-types` (the reference above). Bun's globals differ from Node's (e.g. its
 * `ReadableStream`), so this file is type-checked as its own program (`tsconfig.bun.json`, part
 * of `npm run typecheck`) and `tsconfig.json` leaves it out: the rest of the code never sees them.
 */

import { listenOptionsFromEnv, prepareServer, serverBanner } from '../src/server/node-server.js'

try {
  const { app, storage, host, port, open, setPort } = prepareServer({ ...listenOptionsFromEnv(process.env), env: process.env })
  // app.fetch(request, server): the app reads the peer address through server.requestIP
  const server = Bun.serve({ hostname: host, port, fetch: app.fetch })
  setPort(server.port ?? port)
  for (const line of serverBanner(server.url.origin, open)) console.log(line)
  const stop = () => {
    server
      .stop()
      .then(() => storage.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (err) {
  console.error(`friday: ${(err as Error).message}`)
  process.exit(1)
}
