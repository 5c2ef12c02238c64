/**
 * Cloudflare Workers entry: the HTTP API over the S3 Parquet lake (R2 through an R2 bucket
 * binding, or R2 or any S3-compatible store through the S3 API). Wiring only: config from the
 * Worker's vars, secrets and bindings, storage, app. Imports the Web-standard entry
 * (`src/index.ts`), never `src/node.ts`.
 */

import type { R2Bucket } from '@cloudflare/workers-types'

import { DOMParser as XmlDomParser, Node as XmlNode } from '@xmldom/xmldom'
import type { ExecutionContext, Hono } from 'hono'
import { createApp } from '../src/http/app.js'
import { bodyLimitsFromConfig } from '../src/http/body-limits.js'
import { checkDeployment, httpOptionsFromEnv } from '../src/http/config.js'
import {
  ConfigError,
  createStorage,
  type DataStorage,
  type OpLog,
  parseConfig,
  StorageError,
  scheduledMaintenance,
} from '../src/index.js'

/**
 * Vars (wrangler.toml `[vars]`) and secrets (`wrangler secret put`): STORAGE_BACKEND, S3_BUCKET,
 * S3_PREFIX, S3_FORCE_PATH_STYLE, AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, API_TOKENS, PUBLIC_READS, and whatever else `httpOptionsFromEnv` reads.
 *
 * The Worker is on the internet: without API_TOKENS it serves nothing but `/healthz` (403 on
 * every route) unless PUBLIC_READS=true, which serves reads (never writes) to anyone. Writes
 * always need a token: there is no open-writes mode here.
 */
export type WorkerEnv = Record<string, string | undefined>

/**
 * The R2 bucket binding the lake uses when the Worker has one (`[[r2_buckets]]` with
 * `binding = "R2_BUCKET"` in wrangler.toml) and the backend is `s3_parquet`; without it the
 * lake goes through the S3 API (S3_BUCKET, AWS_*) as before.
 */
const R2_BINDING = 'R2_BUCKET'

/** The Worker's `env`: string vars and secrets, and the optional R2 bucket binding. */
export type WorkerBindings = Record<string, unknown> & { [R2_BINDING]?: R2Bucket }

/** Splits the binding off the string variables; a var of that name (not a binding) is a config error. */
function splitEnv(env: WorkerBindings): { vars: WorkerEnv; r2Bucket?: R2Bucket } {
  const vars: WorkerEnv = {}
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') vars[k] = v
  const r2 = env[R2_BINDING]
  if (r2 === undefined) return { vars }
  if (typeof r2 !== 'object' || r2 === null || typeof (r2 as R2Bucket).put !== 'function') {
    const message = `${R2_BINDING} must be an R2 bucket binding ([[r2_buckets]] in wrangler.toml), not a variable`
    throw new ConfigError(message, [{ path: R2_BINDING, message }])
  }
  return { vars, r2Bucket: r2 }
}

/**
 * The AWS SDK's browser build (the one wrangler bundles) parses S3's XML answers with the global
 * `DOMParser` and `Node`, which workerd lacks. Install xmldom's, only where they are missing.
 */
function installXmlGlobals(): void {
  const g = globalThis as Record<string, unknown>
  g.DOMParser ??= XmlDomParser
  g.Node ??= XmlNode
}

/** What one build of the config gives: the app, its storage and the storage's op log. */
interface Built {
  app: Hono
  storage: DataStorage
  oplog: OpLog | undefined
  /**
   * The storage's connections belong to the request that opened them (`postgres`: the Neon
   * driver's WebSockets; workerd refuses I/O objects of one request in another), so this build
   * serves one request (or one cron run) and is closed after it.
   */
  requestScoped: boolean
}

/** The isolate's build, for backends whose clients may serve every request (the lake: fetch). */
let isolateBuild: Built | undefined

/** Builds the app from the Worker's bindings (throws a ConfigError on bad settings). */
function build(bindings: WorkerBindings): Built {
  installXmlGlobals()
  const { vars: env, r2Bucket } = splitEnv(bindings)
  const http = httpOptionsFromEnv(env) // first: a bad API_TOKENS must not leave a storage behind
  checkDeployment(http, 'worker')
  // The read cache stays on (the default) but within 16 MiB, not 64: an isolate has 128 MB in all
  // (READ_CACHE_MAX_MB still overrides it).
  const config = { storage: { default_backend: 's3_parquet', read_cache: { max_mb: 16 } } }
  const parsed = parseConfig(config, env, { storeBound: r2Bucket !== undefined }).storage
  const requestScoped = parsed.default_backend === 'postgres'
  const limits = bodyLimitsFromConfig(parsed.limits)
  // the binding serves s3_parquet only (postgres ignores it)
  const storage = createStorage(
    // a request-scoped storage would cache for one request only: no read cache there
    requestScoped ? { storage: { ...config.storage, read_cache: { enabled: false } } } : config,
    env,
    r2Bucket ? { r2Bucket, r2BindingName: R2_BINDING } : {},
  )
  const app = createApp({
    storage,
    ...http,
    openWrites: false,
    publicReads: http.publicReads ?? false,
    // set by Cloudflare's edge, not by the client
    clientAddress: (c) => c.req.header('cf-connecting-ip'),
    limits,
    timeUnit: parsed.ingest.time_unit,
  })
  return { app, storage, oplog: storage.oplog, requestScoped }
}

/** The isolate's build, or a new one for this request; a failed build is retried on the next. */
function buildFor(bindings: WorkerBindings): Built {
  if (isolateBuild) return isolateBuild
  const built = build(bindings)
  if (!built.requestScoped) isolateBuild = built
  return built
}

/**
 * `response` with a body that calls `done` once it has been read to its end, failed, or been
 * cancelled by the client (after the cancel reached the app's stream); `done` at once without a body.
 */
function whenBodyDone(response: Response, done: () => void): Response {
  if (!response.body) {
    done()
    return response
  }
  const reader = response.body.getReader()
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done: end, value } = await reader.read()
          if (end) {
            controller.close()
            done()
          } else controller.enqueue(value)
        } catch (err) {
          controller.error(err)
          done()
        }
      },
      cancel(reason) {
        return reader.cancel(reason).finally(done)
      },
    },
    { highWaterMark: 0 },
  )
  return new Response(body, response)
}

export default {
  async fetch(request: Request, env: WorkerBindings, ctx: ExecutionContext): Promise<Response> {
    let built: Built
    try {
      built = buildFor(env)
    } catch (err) {
      // A bad config (e.g. a missing S3_BUCKET) as the app would render it; nothing is cached.
      if (err instanceof StorageError) return Response.json(err.toJSON(), { status: err.status })
      throw err
    }
    const { storage, oplog, requestScoped } = built
    if (!requestScoped) {
      const response = built.app.fetch(request, env, ctx)
      // The op log's pending batch is stored before the isolate may stop (settle never rejects).
      if (oplog)
        ctx.waitUntil(
          Promise.resolve(response).then(
            () => oplog.settle(),
            () => oplog.settle(),
          ),
        )
      return response
    }
    // A request-scoped storage: its op log settled and its connections closed once the response
    // body has been sent (a streamed read uses them until its end), all within this request.
    let finished!: () => void
    const bodyDone = new Promise<void>((resolve) => {
      finished = resolve
    })
    ctx.waitUntil(
      bodyDone
        .then(() => oplog?.settle())
        .then(() => storage.close())
        .catch((err) => console.error('[worker] closing the request storage failed:', err)),
    )
    let response: Response
    try {
      response = await built.app.fetch(request, env, ctx)
    } catch (err) {
      finished()
      throw err
    }
    return whenBodyDone(response, finished)
  },

  /** Cron triggers (wrangler.toml `[triggers]`): one maintenance run under FILE_ROTATION_* (src/maintenance/scheduled.ts). */
  async scheduled(controller: { cron: string }, env: WorkerBindings, ctx: ExecutionContext): Promise<void> {
    const built = buildFor(env)
    const run = scheduledMaintenance(built.storage, `cron ${controller.cron}`).finally(() =>
      built.requestScoped ? built.storage.close() : undefined,
    )
    ctx.waitUntil(run.catch(() => undefined))
    await run
  },
}
