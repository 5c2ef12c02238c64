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
 * | `POST /v1/datasets/:dataset/training-set`          | read  | 200 matrix/windows description + per-segment `.npy` (or Parquet) links or inline base64 (`training-routes.ts`) |
 * | `GET /v1/datasets/:dataset/training-set/:segment/:part` | read | 200 `X.npy`, `y.npy`, `timestamps.npy`, `symbols.npy` or `data.parquet` (`spec`, `fp`); 409 `conflict` once the data changed |
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
import {
  BodiesBusyError,
  ConfigError,
  HealthTimeout,
  LimitExceededError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  StorageError,
  TooManyFailuresError,
  UnhealthyError,
  ValidationError,
} from '../core/errors.js'
import { emptyTable } from '../core/table.js'
import { endOfPeriodUs, parseTimeUs, startOfPeriodUs, type TimeUnit } from '../core/time.js'
import type { DataStorage, Table } from '../core/types.js'
import { bodyFormat, outputFormat, parseBody, tableResponse } from '../formats/index.js'
import { runMaintenance } from '../maintenance/run.js'
import { pageOf } from '../oplog/records.js'
import type { AppAccessOptions, Env } from './app-types.js'
import { createAuth, type FailurePolicy } from './auth.js'
import { BodyGate, type BodyLimits, DEFAULT_BODY_LIMITS } from './body-limits.js'
import { DEFAULT_TRAINING_LIMITS, type TrainingLimits } from './config.js'
import { escapeFormulas, hostGuard } from './guard.js'
import { MaintenanceQuery } from './maintenance-params.js'
import {
  DatasetParam,
  DeleteQuery,
  ManifestQuery,
  NoQuery,
  OplogQuery,
  PartitionsQuery,
  PeriodParam,
  parseParam,
  queryObject,
  ReadQuery,
  SymbolParam,
  WriteQuery,
} from './params.js'
import { publicError } from './public-error.js'
import { HttpStats } from './stats.js'
import { registerTrainingRoutes } from './training-routes.js'

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
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

/** 408: the body did not arrive within `seconds` of the request (`limits.max_body_read_seconds`). */
function bodyTooSlow(seconds: number): LimitExceededError {
  return new LimitExceededError(
    408,
    'max_body_read_seconds',
    seconds,
    `the request body did not arrive within ${seconds} s (limits.max_body_read_seconds): nothing was stored`,
  )
}
/** `GET /healthz` gives up on the backend after this long (503). */
export const HEALTH_TIMEOUT_MS = 5_000

/** 404 for a partition named by keys its dataset is not partitioned by: says which keys it is. */
class PartitionNotFoundError extends StorageError {
  constructor(dataset: string, partition: string, partitionBy: string[]) {
    const query = partitionBy.map((k) => `${k}=...`).join('&')
    super(
      404,
      'not_found',
      `partition ${partition} of dataset '${dataset}' not found: the dataset is partitioned by ${partitionBy.join('/')}; ` +
        `name a partition by ${partitionBy.join(' and ')} (GET /v1/datasets/${dataset}/partitions/manifest?${query}, ` +
        'or ?path= as GET .../partitions lists it)',
      { partitionBy },
    )
  }
}

/** `k=v` segments of a hive path as values (a symbol percent-decoded); segments that do not parse are left out. */
function valuesOfPath(path: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const seg of path.split('/')) {
    const eq = seg.indexOf('=')
    if (eq <= 0) continue
    const key = seg.slice(0, eq)
    try {
      values[key] = key === 'symbol' ? decodeURIComponent(seg.slice(eq + 1)) : seg.slice(eq + 1)
    } catch {
      // a broken escape: not a value to look near
    }
  }
  return values
}

/** A JSON error body for any thrown value (see `public-error.ts`). */
function renderError(err: unknown, c: Context<Env>): Response {
  const { error: e, code, message, details, status } = publicError(err, `${c.req.method} ${c.req.path}`)
  c.set('errorCode', code)
  if (e instanceof MethodNotAllowedError) c.header('Allow', e.allowed.join(', '))
  if (e instanceof TooManyFailuresError || e instanceof BodiesBusyError) c.header('Retry-After', String(e.retryAfterSeconds))
  if (status === 401) c.header('WWW-Authenticate', 'Bearer')
  return c.json({ error: { code, message, details } }, status as ContentfulStatusCode)
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HealthTimeout(`timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Why the health check failed, safe for an unauthenticated caller: a typed storage error's code
 * and message, the timeout, or else only the error's code/name (`ECONNREFUSED`, `TypeError`),
 * never a raw message that could carry hosts or paths (that goes to the log).
 */
function healthReason(err: unknown, detailed: boolean): string {
  if (err instanceof StorageError) return detailed ? `${err.code}: ${err.message}` : err.code
  if (err instanceof HealthTimeout) return err.message
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) return code
  return err instanceof Error ? err.name : 'unknown error'
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

  const op = (name: string) => async (c: Context<Env>, next: () => Promise<void>) => {
    c.set('op', name)
    await next()
  }
  const dataset = (c: Context<Env>) => parseParam(DatasetParam, c.req.param('dataset'), 'dataset')
  const query = <S extends Parameters<typeof parseParam>[0]>(schema: S, c: Context<Env>) =>
    parseParam(schema, queryObject(c.req.queries()), 'query')
  const datasetNotFound = (name: string) => new NotFoundError(`dataset '${name}'`)
  const assertDataset = async (name: string) => {
    if (!(await storage.listDatasets()).includes(name)) throw datasetNotFound(name)
  }

  // ---- health and stats ------------------------------------------------------------------

  app.get('/healthz', op('healthz'), async (c) => {
    const t0 = performance.now()
    try {
      await withTimeout(storage.listDatasets(), HEALTH_TIMEOUT_MS)
    } catch (err) {
      const checkedMs = Math.round(performance.now() - t0)
      throw new UnhealthyError(storage.backend, checkedMs, healthReason(err, await healthDetails(c)), err)
    }
    return c.json({ ok: true, backend: storage.backend, checkedMs: Math.round(performance.now() - t0) })
  })

  app.get('/v1/stats', op('stats'), requireScope('admin'), (c) => {
    query(NoQuery, c)
    return c.json({ ...stats.snapshot(storage.requestStats()), oplog: storage.oplog?.summary() ?? { enabled: false } })
  })

  /**
   * The operation log, newest first: flushed and not yet flushed records. Page back with the
   * returned `next.until` (null: nothing older matches).
   */
  app.get('/v1/oplog', op('oplog.read'), requireScope('read'), async (c) => {
    const q = query(OplogQuery, c)
    const log = storage.oplog
    if (!log) return c.json({ enabled: false, records: [], next: null })
    const ms = (t: string | number | undefined) => (t === undefined ? undefined : parseTimeUs(t)! / 1000)
    const filter = { since: ms(q.since), until: ms(q.until), dataset: q.dataset, op: q.op }
    const page = pageOf(await log.query({ ...filter, limit: q.limit + 1 }), q.limit)
    const next = page.nextUntil === null ? null : { until: new Date(page.nextUntil).toISOString() }
    return c.json({ enabled: true, records: page.records, next })
  })

  /** Counters of the read cache (`storage.read_cache`); `{ enabled: false }` when the storage has none. */
  app.get('/v1/cache/stats', op('cache_stats'), requireScope('read'), (c) => {
    query(NoQuery, c)
    const cache = storage.readCache
    return c.json(cache ? cache.stats() : { enabled: false })
  })

  /** One maintenance run (rotation, compaction, archiving, retention, gc) under the configured policy. */
  app.post('/v1/maintenance/run', op('maintenance.run'), requireScope('admin'), async (c) => {
    const q = query(MaintenanceQuery, c)
    if (q.dataset !== undefined) await assertDataset(q.dataset) // 404, as every dataset-scoped route
    return c.json(await runMaintenance(storage, { dataset: q.dataset, dryRun: q.dry_run === 'true' }))
  })

  // ---- catalog ---------------------------------------------------------------------------

  app.get('/v1/datasets', op('datasets.list'), requireScope('read'), async (c) => {
    query(NoQuery, c)
    return c.json({ datasets: await storage.listDatasets() })
  })

  app.get('/v1/datasets/:dataset', op('datasets.describe'), requireScope('read'), async (c) => {
    const name = dataset(c)
    query(NoQuery, c)
    const description = await storage.describe(name)
    if (!description) throw datasetNotFound(name)
    return c.json(description)
  })

  app.get('/v1/datasets/:dataset/partitions', op('partitions.list'), requireScope('read'), async (c) => {
    const name = dataset(c)
    const q = query(PartitionsQuery, c)
    const symbols =
      q.symbol !== undefined || q.symbols ? [...(q.symbol !== undefined ? [q.symbol] : []), ...(q.symbols ?? [])] : undefined
    const partitions = await storage.listPartitions(name, { symbols, start: q.start, end: q.end })
    if (partitions.length === 0) await assertDataset(name)
    return c.json({ partitions })
  })

  /**
   * 404 for a partition that is not there: the dataset's when it does not exist; else, when a
   * partition of the same symbol or period exists but is keyed otherwise (a `['date']` dataset
   * asked for `symbol` and `date`), a message naming the dataset's partitioning. Bounded work:
   * one filtered partition listing, never a scan of every partition.
   */
  const partitionNotFound = async (name: string, partition: Record<string, string> | string): Promise<never> => {
    const shown = typeof partition === 'string' ? partition : Object.values(partition).join('/')
    const values = typeof partition === 'string' ? valuesOfPath(partition) : partition
    const raw = values.date ?? values.month
    const period = raw !== undefined && /^\d{4}-\d{2}(-\d{2})?$/.test(raw) ? raw : undefined
    const near =
      values.symbol !== undefined || period !== undefined
        ? await storage
            .listPartitions(name, {
              symbols: values.symbol !== undefined ? [values.symbol] : undefined,
              start: period !== undefined ? startOfPeriodUs(period) / 1000 : undefined,
              end: period !== undefined ? endOfPeriodUs(period) / 1000 : undefined,
            })
            .catch((err) => {
              if (err instanceof ValidationError) return [] // e.g. a symbol no partition can have
              throw err
            })
        : []
    if (near.length === 0) {
      await assertDataset(name)
      throw new NotFoundError(`partition ${shown} of dataset '${name}'`)
    }
    const by = Object.keys(near[0].values)
    const keys = Object.keys(values)
    const fits = keys.length === by.length && by.every((k) => keys.includes(k))
    if (fits) throw new NotFoundError(`partition ${shown} of dataset '${name}'`)
    throw new PartitionNotFoundError(name, shown, by)
  }

  /**
   * The manifest of one partition, for any partitioning: `?path=` a hive path as `GET
   * .../partitions` lists it (`date=2024-01-02`, `symbol=EUR%2FUSD/date=2024-01-02`, itself
   * percent-encoded in the query), or the partition's values (`?date=2024-01-02`,
   * `?symbol=EUR/USD&month=2024-01`).
   */
  app.get('/v1/datasets/:dataset/partitions/manifest', op('partitions.manifest'), requireScope('read'), async (c) => {
    const name = dataset(c)
    const { path, ...rest } = query(ManifestQuery, c)
    const partition =
      path ?? (Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Record<string, string>)
    const manifest = await storage.getManifest(name, partition)
    if (!manifest) return partitionNotFound(name, partition)
    return c.json(manifest)
  })

  /**
   * The manifest of one partition of a dataset partitioned by symbol and day (`:date` =
   * `YYYY-MM-DD`) or symbol and month (`:date` = `YYYY-MM`). `:symbol` is percent-encoded in the
   * URL (`EUR%2FUSD`, `%5EGSPC`). Other partitionings: `GET .../partitions/manifest`.
   */
  app.get('/v1/datasets/:dataset/partitions/:symbol/:date', op('partitions.manifest'), requireScope('read'), async (c) => {
    const name = dataset(c)
    const symbol = parseParam(SymbolParam, c.req.param('symbol'), 'symbol')
    const period = parseParam(PeriodParam, c.req.param('date'), 'date')
    query(NoQuery, c)
    const values: Record<string, string> = period.length === 10 ? { symbol, date: period } : { symbol, month: period }
    const manifest = await storage.getManifest(name, values)
    if (!manifest) return partitionNotFound(name, values)
    return c.json(manifest)
  })

  // ---- rows ------------------------------------------------------------------------------

  /** Streams the rows; the first batch is read before the response starts, so filter errors are still a 400. */
  app.get('/v1/datasets/:dataset/rows', op('rows.read'), requireScope('read'), async (c) => {
    const name = dataset(c)
    const q = query(ReadQuery, c)
    const format = outputFormat(q.format, c.req.header('accept'))
    const escapeCsv = q.csv_escape_formulas === 'true'
    if (escapeCsv && format !== 'csv') {
      throw new ValidationError([{ field: 'csv_escape_formulas', message: `applies to format csv only, not ${format}` }])
    }
    const it = storage
      .scan(name, { symbols: q.symbols, start: q.start, end: q.end, columns: q.columns, limit: q.limit })
      [Symbol.asyncIterator]()
    const first = await it.next()
    let batches: AsyncIterable<Table>
    if (first.done) {
      const description = await storage.describe(name)
      if (!description) throw datasetNotFound(name)
      const want = new Set(['symbol', 'timestamp', ...(q.columns ?? description.schema.map((s) => s.name))])
      batches = (async function* () {
        yield emptyTable(description.schema.filter((s) => want.has(s.name)))
      })()
    } else {
      batches = (async function* () {
        yield first.value
        yield* { [Symbol.asyncIterator]: () => it }
      })()
    }
    if (escapeCsv) {
      const raw = batches
      batches = (async function* () {
        for await (const batch of raw) yield escapeFormulas(batch)
      })()
    }
    return tableResponse(batches, format, {
      onError: (err) => console.error(`[http] ${c.req.method} ${c.req.path} failed after the response started:`, err),
    })
  })

  app.post('/v1/datasets/:dataset/rows', op('rows.write'), requireScope('write'), async (c) => {
    const arrived = Date.now()
    const name = dataset(c)
    const { mode, time_unit, types } = query(WriteQuery, c)
    const columns = { timeUnit: time_unit ?? options.timeUnit, types }
    const format = bodyFormat(c.req.header('content-type'))
    const lengthHeader = c.req.header('content-length')
    let declaredLength: number | undefined
    if (lengthHeader !== undefined) {
      if (!/^\d+$/.test(lengthHeader)) {
        throw new ValidationError([
          { field: 'content-length', message: `expected a byte count, got ${JSON.stringify(lengthHeader)}` },
        ])
      }
      declaredLength = Number(lengthHeader)
      if (declaredLength > maxBodyBytes) {
        await c.req.raw.body?.cancel().catch(() => {})
        throw new PayloadTooLargeError(maxBodyBytes)
      }
    }
    const emptyBody = () =>
      new ValidationError([{ field: 'body', message: `the request body is empty: expected ${format} rows` }])
    const raw = c.req.raw.body
    if (!raw || declaredLength === 0) throw emptyBody()
    let received = 0
    const body = raw.pipeThrough(stats.counter('in', (n) => (received = n)))
    const input = await readBodyInTurn(body, async () => {
      // the deadline counts from the request's arrival, time waiting for a turn included
      const seconds = bodyLimits.maxBodyReadSeconds
      const left = seconds - (Date.now() - arrived) / 1000
      if (!(left > 0)) throw bodyTooSlow(seconds)
      return parseBody(body, format, {
        maxBytes: maxBodyBytes,
        declaredLength,
        maxReadSeconds: left,
        maxColumns: bodyLimits.maxColumnsPerRequest,
        parquet: bodyLimits.parquet,
        columns,
      }).catch((err) => {
        throw err instanceof LimitExceededError && err.status === 408 ? bodyTooSlow(seconds) : err
      })
    })
    if (received === 0) throw emptyBody()
    return c.json(await storage.write(name, input, { mode }))
  })

  /** Runs `parse` in a turn of the body gate; a body refused (429) or timed out in the queue is cancelled. */
  async function readBodyInTurn<T>(body: ReadableStream<Uint8Array>, parse: () => Promise<T>): Promise<T> {
    try {
      return await bodyGate.run(parse)
    } catch (err) {
      await body.cancel().catch(() => {})
      throw err
    }
  }

  app.delete('/v1/datasets/:dataset/rows', op('rows.delete'), requireScope('write'), async (c) => {
    const name = dataset(c)
    const q = query(DeleteQuery, c)
    const filtered = q.symbols !== undefined || q.start !== undefined || q.end !== undefined
    if (q.all === 'true' && filtered) {
      throw new ValidationError([
        { field: 'all', message: 'all=true deletes every row; it cannot be combined with symbols, start or end' },
      ])
    }
    if (!filtered && q.all !== 'true') {
      throw new ValidationError([
        { field: 'all', message: 'no filter given: pass symbols, start or end, or all=true to delete every row of the dataset' },
      ])
    }
    const result = await storage.delete(name, { symbols: q.symbols, start: q.start, end: q.end })
    if (result.rowsDeleted === 0) await assertDataset(name)
    return c.json(result)
  })

  registerTrainingRoutes(app, {
    storage,
    requireScope,
    op,
    stats,
    maxBodyBytes,
    maxBodyReadSeconds: bodyLimits.maxBodyReadSeconds,
    maxInlineBytes: options.maxInlineBytes,
    limits: { ...DEFAULT_TRAINING_LIMITS, ...options.training },
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
