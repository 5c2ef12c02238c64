/**
 * Deno entry: the HTTP API with `Deno.serve` on HOST:PORT (default 127.0.0.1:8787) over the
 * storage that the environment (`Deno.env`) configures: the local lake in ./data by default,
 * `STORAGE_BACKEND=s3_parquet` for S3. `deno task start` (deno.json), or Deno Deploy.
 *
 * It imports the compiled package (`dist/`, built by `npm ci`/`npm run build`), not `src/`: the
 * sources import `./x.js` for `x.ts`, which Deno resolves only with `--unstable-sloppy-imports`.
 * npm packages come from the project's node_modules (deno.json `"nodeModulesDir": "manual"`).
 *
 * Scheduled maintenance: where `Deno.cron` exists (Deno Deploy; locally `--unstable-cron`) one
 * `maintain()` runs on MAINTENANCE_CRON (default hourly, `off` disables), as the Worker's
 * `scheduled` handler does; elsewhere it is skipped with a line on the log.
 */

import { scheduledMaintenance } from '../dist/maintenance/scheduled.js'
import { listenOptionsFromEnv, prepareServer, serverBanner } from '../dist/server/node-server.js'

/** The part of Deno's API used here (the project does not install Deno's types). */
declare const Deno: {
  env: { toObject(): Record<string, string> }
  serve(
    options: { hostname: string; port: number; onListen?: (addr: { hostname: string; port: number }) => void },
    handler: (request: Request, info: unknown) => Response | Promise<Response>,
  ): { shutdown(): Promise<void> }
  /** Absent without `--unstable-cron` (and on runtimes without cron). */
  cron?: (name: string, schedule: string, handler: () => Promise<void>) => Promise<void>
  addSignalListener(signal: 'SIGINT' | 'SIGTERM', handler: () => void): void
  exit(code: number): never
}

const DEFAULT_SCHEDULE = '0 * * * *' // hourly, as wrangler.toml's [triggers] crons

const env = Deno.env.toObject()
let prepared: ReturnType<typeof prepareServer>
try {
  // HOST/PORT (a PORT that is not 0-65535 is an error naming it), else 127.0.0.1:8787
  prepared = prepareServer({ ...listenOptionsFromEnv(env), env })
} catch (err) {
  console.error(`friday: ${(err as Error).message}`)
  Deno.exit(1)
}
const { app, storage, host, port, open, setPort } = prepared

// Deno Deploy picks up cron jobs registered while the module is evaluated, before serving.
const schedule = env.MAINTENANCE_CRON?.trim() || DEFAULT_SCHEDULE
if (schedule === 'off') console.log('maintenance: MAINTENANCE_CRON=off, no scheduled runs')
else if (typeof Deno.cron !== 'function')
  console.log('maintenance: Deno.cron is not available here (Deno Deploy, or --unstable-cron), no scheduled runs')
else {
  try {
    // scheduledMaintenance logs the summary, flushes the op log and rejects when the run failed
    Deno.cron('friday-maintenance', schedule, () => scheduledMaintenance(storage, `cron ${schedule}`).then(() => undefined))
    console.log(`maintenance: Deno.cron '${schedule}' (UTC)`)
  } catch (err) {
    await storage.close()
    console.error(`friday: invalid MAINTENANCE_CRON ${JSON.stringify(schedule)}: ${(err as Error).message}`)
    Deno.exit(1)
  }
}

// app.fetch(request, info): the app reads the peer address from info.remoteAddr
const server = Deno.serve(
  {
    hostname: host,
    port,
    onListen: (addr) => {
      setPort(addr.port)
      const h = addr.hostname.includes(':') ? `[${addr.hostname}]` : addr.hostname
      for (const line of serverBanner(`http://${h}:${addr.port}`, open)) console.log(line)
    },
  },
  (request, info) => app.fetch(request, info),
)

const stop = () => {
  server
    .shutdown()
    .then(() => storage.close())
    .then(
      () => Deno.exit(0),
      () => Deno.exit(1),
    )
}
Deno.addSignalListener('SIGINT', stop)
Deno.addSignalListener('SIGTERM', stop)
