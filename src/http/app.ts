/**
 * The HTTP API (`/v1`) over one `DataStorage`, as a Hono app: Web-standard only, so the same app
 * runs on Workers, Bun and Node. Every parameter is validated (valibot, `params.ts`) before the
 * storage is touched; every error is a `StorageError` rendered by one handler as
 * `{ "error": { "code", "message", "details" } }` (`details` always present, `{}` when empty).
 *
 * | route                                              | scope | success |
 * |----------------------------------------------------|-------|---------|
 * | `GET /healthz`                                     | none  | 200 `{ ok, backend, checkedMs }` (503 `unhealthy`) |
 * | `GET /v1/stats`                                    | admin | 200 `StatsSnapshot` plus `oplog` (`OpLogSummary`, or `{ enabled: false }`) |
 * | `GET /v1/oplog`                                    | read  | 200 `{ enabled, records, next }` (`since`, `until`, `dataset`, `op`, `limit`) |
 * | `GET /v1/cache/stats`                              | read  | 200 `ReadCacheStats` (hits, misses, evictions...), or `{ enabled: false }` |
 * | `POST /v1/maintenance/run`                         | admin | 200 `MaintenanceReport` (`dataset`, `dry_run`); 501 `not_supported` |
 * | `GET /v1/datasets`                                 | read  | 200 `{ datasets }` |
 * | `GET /v1/datasets/:dataset`                        | read  | 200 `DatasetDescription` |
 * | `GET /v1/datasets/:dataset/partitions`             | read  | 200 `{ partitions }` (`symbol`, `symbols`, `start`, `end`) |
 * | `GET /v1/datasets/:dataset/partitions/manifest`    | read  | 200 `PartitionManifest` (`path`, or `symbol`/`date`/`month`: any partitioning) |
 * | `GET /v1/datasets/:dataset/partitions/:symbol/:date` | read | 200 `PartitionManifest` (symbol/date and symbol/month datasets) |
 * | `GET /v1/datasets/:dataset/rows`                   | read  | 200 rows as json/ndjson/csv/parquet (`symbols`, `start`, `end`, `columns`, `limit`, `format`) |
 * | `POST /v1/datasets/:dataset/rows`                  | write | 200 `{ rowsWritten, partitions }` (`mode`) |
 * | `DELETE /v1/datasets/:dataset/rows`                | write | 200 `{ rowsDeleted, partitions }` (`symbols`, `start`, `end` or `all=true`) |
 * | `POST /v1/datasets/:dataset/training-set`          | read  | 200 matrix/windows description + per-segment `.npy` (or Parquet) links or inline base64 (`routes/training.ts`) |
 * | `GET /v1/datasets/:dataset/training-set/:segment/:part` | read | 200 `X.npy`, `y.npy`, `timestamps.npy`, `symbols.npy` or `data.parquet` (`spec`, `fp`); 409 `conflict` once the data changed |
 *
 * Each route group lives in `routes/` (one file each); this file holds the cross-cutting middleware,
 * the error rendering and the list of route registrations.
 *
 * Decisions:
 * - Unknown datasets: every dataset-scoped route answers 404 `not_found` for a dataset that does
 *   not exist (rows GET/DELETE, partitions, describe, manifest); only `POST .../rows` creates one.
 *   The check costs nothing when there are results: it runs only when a read, delete or
 *   partition listing comes back empty (`describe` for rows, which also gives the empty result
 *   its columns; `listDatasets` for the others).
 * - Unknown query parameters are a 400 (a typo like `?symbol=` would otherwise read everything);
 *   a scalar parameter given twice is a 400; `symbols`/`columns` may repeat or be comma lists.
 * - `DELETE .../rows` with no filter needs `all=true`; `all=true` together with a filter is a
 *   400 (ambiguous).
 * - `start`/`end`: epoch milliseconds (digits) or ISO-8601; `end` before `start` is a 400.
 * - With no tokens: reads are open unless `publicReads: false` (the Worker's default); writes,
 *   admin routes and `/v1/stats` are open only with `openWrites`. Auth runs before parameter
 *   validation, so an unauthenticated caller learns nothing else.
 * - Open local mode (no tokens, `openWrites`): the server is for programs on this machine, not
 *   for web pages. Only loopback `Host` values (`localhost`, `127.0.0.1`, `[::1]`, plus
 *   `allowedHosts`, with the server's `port`) are served (a DNS-rebinding page sends its own
 *   name), a request with a foreign `Origin` is refused (a cross-site form or `text/plain`
 *   POST), both 403 `forbidden`; CORS cannot be enabled (`ConfigError`).
 * - Every response carries `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.
 * - A failing backend (`store_error`, `commit_in_doubt`) is answered with a generic message, its
 *   safe codes (`sqlstate`, `reason`, `outcome`, `driverCode`) and a `ref`; the driver's message
 *   goes to the server log under that `ref`. `/healthz` names the failure's code only, unless the
 *   caller presents a valid token (or the server is the open local one).
 * - CSV output writes values as stored: a value like `=HYPERLINK(...)` is a formula to a
 *   spreadsheet. `csv_escape_formulas=true` prefixes string values starting with `=`, `+`, `-`,
 *   `@`, tab or carriage return with `'` (OWASP's CSV-injection advice); the data is then not
 *   exact, so it is opt-in.
 * - Unknown paths are 404 before auth; a known path with another method is 405 with `Allow`.
 * - Rows are streamed; the first batch is read before the response starts, so a bad filter
 *   (e.g. an unknown column) is still a 400 rather than a broken 200. A later failure cannot
 *   change the 200: the body ends with an error record (NDJSON line / JSON element
 *   `{"error":{...}}`, an unclosed CSV quote) and the connection is cut without the end of the
 *   chunked body, so clients see an error, never a complete body (`tableResponse`).
 * - `bytes.in`/`bytes.out` in stats count request/response bodies as streamed; latency is time
 *   to the response (headers), not to the last byte of a stream.
 */

import { type Context, Hono } from 'hono'
import { cors } from 'hono/cors'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { BodiesBusyError, ConfigError, MethodNotAllowedError, NotFoundError, TooManyFailuresError } from '../core/errors.js'
import type { TimeUnit } from '../core/time.js'
import type { DataStorage } from '../core/types.js'
import type { ParquetCodecs } from '../parquet/index.js'
import type { AppAccessOptions, Env } from './app-types.js'
import { createAuth, type FailurePolicy } from './auth.js'
import { BodyGate, type BodyLimits, DEFAULT_BODY_LIMITS } from './body-limits.js'
import { DEFAULT_TRAINING_LIMITS, type TrainingLimits } from './config.js'
import { hostGuard } from './guard.js'
import { publicError } from './public-error.js'
import { registerCatalogRoutes } from './routes/catalog.js'
import { op, type RouteContext } from './routes/context.js'
import { registerDeleteRoutes } from './routes/delete.js'
import { registerHealthRoutes } from './routes/health.js'
import { registerMaintenanceRoutes } from './routes/maintenance.js'
import { registerOplogRoutes } from './routes/oplog.js'
import { registerRowsRoutes } from './routes/rows.js'
import { registerStatsRoutes } from './routes/stats.js'
import { registerTrainingRoutes } from './routes/training.js'
import { HttpStats } from './stats.js'

export { HEALTH_TIMEOUT_MS } from './routes/health.js'

export interface AppOptions extends AppAccessOptions {
  storage: DataStorage
  /**
   * With no tokens: `true` lets writes through (a local server bound to 127.0.0.1); `false`
   * (the default, e.g. a Worker) refuses writes and deletes with 403 'writes disabled: configure API_TOKENS'.
   */
  openWrites?: boolean
  /** Cap on the bytes a training set embeds with `inline: true` (default 16 MiB): 413 `payload_too_large`. */
  maxInlineBytes?: number
  /**
   * Open local mode only: the port the server listens on, which the `Host` header must carry
   * (a function when it is known only once listening). Unset: any port.
   */
  port?: number | (() => number | undefined)
  /** The caller's address, for the limit on failed authentications; unset: failures are only delayed. */
  clientAddress?: (c: Context) => string | undefined
  /** The limits on failed authentications (`DEFAULT_FAILURE_POLICY`). */
  authFailures?: Partial<FailurePolicy>
  /** Bounds and cache of the training-set routes (`DEFAULT_TRAINING_LIMITS`). */
  training?: Partial<TrainingLimits>
  /** Unit of epoch numbers in written bodies when the request names no `time_unit` (config `storage.ingest.time_unit`). */
  timeUnit?: TimeUnit
  /**
   * Limits of the rows route's bodies (`bodyLimitsFromConfig(config.storage.limits)`; default
   * `DEFAULT_BODY_LIMITS`: 60 s to arrive, 1,024 columns, the Parquet claims, 8 parsed at once).
   */
  limits?: Partial<BodyLimits>
  /**
   * Page codecs of the Parquet the app writes (rows `format=parquet`, training-set `data.parquet`).
   * Default `jsCodecs()` (pure JS, the Worker's); the Node/Bun server passes `nativeCodecs()`.
   */
  codecs?: ParquetCodecs
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

/** A JSON error body for any thrown value (see `public-error.ts`). */
function renderError(err: unknown, c: Context<Env>): Response {
  const { error: e, code, message, details, status } = publicError(err, `${c.req.method} ${c.req.path}`)
  c.set('errorCode', code)
  if (e instanceof MethodNotAllowedError) c.header('Allow', e.allowed.join(', '))
  if (e instanceof TooManyFailuresError || e instanceof BodiesBusyError) c.header('Retry-After', String(e.retryAfterSeconds))
  if (status === 401) c.header('WWW-Authenticate', 'Bearer')
  return c.json({ error: { code, message, details } }, status as ContentfulStatusCode)
}

export function createApp(options: AppOptions): Hono {
  const { storage } = options
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const bodyLimits: BodyLimits = { ...DEFAULT_BODY_LIMITS, ...options.limits }
  const bodyGate = new BodyGate(bodyLimits.maxConcurrentBodies, bodyLimits.maxQueuedBodies)
  const stats = new HttpStats()
  const tokens = options.tokens ?? []
  const openWrites = options.openWrites ?? false
  const localOpen = tokens.length === 0 && openWrites
  if (localOpen && options.cors) {
    throw new ConfigError(
      'invalid CORS_ORIGINS: CORS cannot be enabled without API_TOKENS: the open API would be usable from any web page',
      [{ path: 'CORS_ORIGINS', message: 'CORS needs API_TOKENS' }],
    )
  }
  const requireScope = createAuth({
    tokens,
    openWrites,
    publicReads: options.publicReads,
    clientAddress: options.clientAddress,
    failures: options.authFailures,
  })
  /** Whether the health check may say why it failed: to a token holder, or anyone when no public mode was chosen. */
  const healthDetails = async (c: Context<Env>) =>
    tokens.length === 0 ? openWrites || options.publicReads === undefined : (await requireScope.identify(c)) !== null
  const app = new Hono<Env>()

  // ---- cross-cutting ---------------------------------------------------------------------

  app.use('*', async (c, next) => {
    const t0 = performance.now()
    await next()
    const ms = performance.now() - t0
    stats.record(c.get('op') ?? (c.res.status === 404 ? 'not_found' : 'other'), c.res.status, c.get('errorCode'), ms)
    const res = c.res
    const headers = new Headers(res.headers)
    headers.set('X-Content-Type-Options', 'nosniff')
    if (!headers.has('Cache-Control')) headers.set('Cache-Control', 'no-store')
    const body = res.body ? res.body.pipeThrough(stats.counter('out')) : null
    c.res = new Response(body, { status: res.status, statusText: res.statusText, headers })
  })

  if (localOpen) app.use('*', hostGuard({ allowedHosts: options.allowedHosts, port: options.port }))

  if (options.cors) {
    const origins = options.cors.origins
    app.use(
      '*',
      cors({
        origin: origins.length === 1 && origins[0] === '*' ? '*' : origins,
        allowMethods: ['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type', 'Accept'],
        exposeHeaders: ['Content-Type', 'WWW-Authenticate'],
        maxAge: 600,
      }),
    )
  }

  app.onError((err, c) => renderError(err, c))
  app.notFound((c) => renderError(new NotFoundError(`route ${c.req.method} ${c.req.path}`), c))

  const ctx: RouteContext = { storage, requireScope, op, stats }

  // ---- routes ----------------------------------------------------------------------------

  registerHealthRoutes(app, ctx, healthDetails)
  registerStatsRoutes(app, ctx)
  registerOplogRoutes(app, ctx)
  registerMaintenanceRoutes(app, ctx)
  registerCatalogRoutes(app, ctx)
  registerRowsRoutes(app, ctx, { maxBodyBytes, bodyLimits, bodyGate, timeUnit: options.timeUnit, codecs: options.codecs })
  registerDeleteRoutes(app, ctx)
  registerTrainingRoutes(app, {
    ...ctx,
    maxBodyBytes,
    maxBodyReadSeconds: bodyLimits.maxBodyReadSeconds,
    maxInlineBytes: options.maxInlineBytes,
    limits: { ...DEFAULT_TRAINING_LIMITS, ...options.training },
    codecs: options.codecs,
  })

  // ---- wrong methods ---------------------------------------------------------------------

  const routes: [string, string[]][] = [
    ['/healthz', ['GET', 'HEAD']],
    ['/v1/stats', ['GET', 'HEAD']],
    ['/v1/oplog', ['GET', 'HEAD']],
    ['/v1/cache/stats', ['GET', 'HEAD']],
    ['/v1/maintenance/run', ['POST']],
    ['/v1/datasets', ['GET', 'HEAD']],
    ['/v1/datasets/:dataset', ['GET', 'HEAD']],
    ['/v1/datasets/:dataset/rows', ['GET', 'HEAD', 'POST', 'DELETE']],
    ['/v1/datasets/:dataset/training-set', ['POST']],
    ['/v1/datasets/:dataset/training-set/:segment/:part', ['GET', 'HEAD']],
    ['/v1/datasets/:dataset/partitions', ['GET', 'HEAD']],
    ['/v1/datasets/:dataset/partitions/manifest', ['GET', 'HEAD']],
    ['/v1/datasets/:dataset/partitions/:symbol/:date', ['GET', 'HEAD']],
  ]
  for (const [path, allowed] of routes) {
    app.all(path, op('method_not_allowed'), (c) => {
      throw new MethodNotAllowedError(c.req.method, allowed)
    })
  }

  return app as unknown as Hono
}
