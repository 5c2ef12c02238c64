/**
 * Node entry: the HTTP API on HOST:PORT (default 127.0.0.1:8787) over the storage that the
 * environment configures (local Parquet in ./data by default). `node --import tsx functions/node.ts`
 */

import { listenOptionsFromEnv, startNodeServer } from '../src/server/node-server.js'

try {
  // HOST/PORT (a PORT that is not 0-65535 is an error naming it), else 127.0.0.1:8787
  const server = await startNodeServer({ ...listenOptionsFromEnv(process.env), env: process.env })
  const stop = () => {
    server.close().then(
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
