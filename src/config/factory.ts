/**
 * Builds the configured `DataStorage` from a validated config: the driver of the configured
 * backend behind the core's front. Each runtime entry point passes the backend factories it can
 * run (the Web entry has no filesystem, so no `local_parquet`).
 */

import type { S3Client } from '@aws-sdk/client-s3'
import {
  createNeonPool,
  type NeonPoolOptions,
  type PgPoolLike,
  PostgresStorage,
  type PostgresTimeouts,
} from '../backends/postgres/index.js'
import { withReadCache } from '../cache/index.js'
import type { StorageDriver } from '../core/driver.js'
import { ConfigError } from '../core/errors.js'
import { createDataStorage, type FrontOptions } from '../core/front.js'
import { rotationFromConfig } from '../core/rotation-policy.js'
import type { DataStorage } from '../core/types.js'
import { LakeStorage } from '../lake/lake-storage.js'
import type { LakeCodecOptions, LakeOptions } from '../lake/options.js'
import { maintainRows } from '../maintenance/db-retention.js'
import { attachOpLog } from '../oplog/attach.js'
import type { OpLogOptions } from '../oplog/buffered-op-log.js'
import type { ParquetCodecs } from '../parquet/index.js'
import { createR2BindingStore, type R2BucketBinding } from '../stores/r2-binding-store.js'
import { createS3Store } from '../stores/s3-store.js'
import type { ObjectStore } from '../stores/types.js'
import { limitsFromConfig } from '../table/limits.js'
import type { BackendName, FridayConfig, LocalParquetConfig, PostgresConfig, S3ParquetConfig } from './schema.js'

/** Builds the driver of one backend from the config; `createStorageWith` puts the front on it. */
export type BackendFactory = (config: FridayConfig) => StorageDriver

/** Why a backend may be missing from a runtime, and what to do about it. */
const UNAVAILABLE_HINTS: Partial<Record<BackendName, string>> = {
  local_parquet: 'it needs a local filesystem: use the Node/Bun entry point (src/node.ts), or s3_parquet in a Worker',
  mongodb: 'the MongoDB driver needs Node or Bun: use the Node/Bun entry point (src/node.ts)',
}

/**
 * Calls the factory of `config.storage.default_backend` (`ConfigError` when this runtime has none)
 * and puts the core's front on the driver (`createDataStorage`): every call checked once, the
 * retrieval defaults of `config.storage.retrieval` (`storage.retrieval`), row retention as
 * `maintain()` for a driver without its own, the read cache of `config.storage.read_cache`
 * (`storage.readCache`) and the op log `config.storage.metadata_logging` asks for
 * (`storage.oplog`). The op log wraps the cache, so it records every read, cached or not (with
 * the requests it really made).
 */
export function createStorageWith(
  factories: Partial<Record<BackendName, BackendFactory>>,
  config: FridayConfig,
  /**
   * `oplog`: tuning of the op log beyond the config (e.g. `printFailures: false` for the CLI);
   * `codecs`: Parquet codecs of the database backends' row-retention archives (default `jsCodecs()`).
   */
  options: { oplog?: Partial<OpLogOptions>; codecs?: ParquetCodecs } = {},
): DataStorage {
  const backend = config.storage.default_backend
  const factory = factories[backend]
  if (!factory) {
    const available = Object.keys(factories).join(', ') || 'none'
    const hint = UNAVAILABLE_HINTS[backend] ?? `available here: ${available}`
    const message = `storage backend '${backend}' is not available in this runtime: ${hint}`
    throw new ConfigError(message, [{ path: 'storage.default_backend', message }])
  }
  return createDataStorage(factory(config), frontOptionsFromConfig(config, options))
}

/**
 * What the front adds from the config:
 * - `retrieval`: `scan()` without a `batchSize` yields `batch_size` rows per batch, and
 *   `storage.retrieval` tells the training functions how many symbols to load at once
 *   (`max_workers`, or 1 when `parallel_loading` is off);
 * - `maintain`: a driver without its own (postgres; mongodb has its own) gets row retention from
 *   `maintenance/db-retention.ts` (through the backend's exact `expireRows` when it has one, as
 *   postgres does), archiving to the S3 bucket of `storage.s3_parquet` when one is set;
 * - `readCache` when `storage.read_cache.enabled`, and `opLog` (`attachOpLog` leaves the storage
 *   as it is when `storage.metadata_logging` is disabled).
 */
export function frontOptionsFromConfig(
  config: FridayConfig,
  /** `oplog`: op-log tuning beyond the config; `codecs`: Parquet codecs of the row-retention archives (default `jsCodecs()`). */
  options: { oplog?: Partial<OpLogOptions>; codecs?: ParquetCodecs } = {},
): FrontOptions {
  const r = config.storage.retrieval
  const policy = rotationFromConfig(config.storage.file_rotation)
  const s3 = config.storage.s3_parquet
  const archive = s3.bucket ? () => s3StoreFromConfig(s3) : undefined
  const cache = config.storage.read_cache
  return {
    retrieval: { batchSize: r.batch_size, concurrency: r.parallel_loading ? r.max_workers : 1 },
    maintain: (storage, o) => maintainRows(storage, policy, o, archive, options.codecs),
    readCache: cache.enabled
      ? (storage) => withReadCache(storage, { ttlMs: cache.ttl_seconds * 1000, maxBytes: cache.max_mb * 1024 * 1024 })
      : undefined,
    opLog: (storage) => attachOpLog(storage, config.storage.metadata_logging, options.oplog),
    timeUnit: config.storage.ingest.time_unit,
  }
}

/** The lake settings shared by the Parquet backends, mapped to `LakeOptions`. */
export function lakeOptionsFromConfig(
  section: LocalParquetConfig | S3ParquetConfig,
  config: FridayConfig,
): Omit<LakeOptions, 'backend' | 'store' | 'requireConditionalWrites'> {
  return {
    partitionBy: [...section.partition_by],
    compression: section.compression,
    rowGroupSize: section.row_group_size,
    validatePartitioning: section.validate_partitioning,
    gcGraceMs: config.storage.gc_grace_period_seconds * 1000,
    rotation: rotationFromConfig(config.storage.file_rotation),
    limits: limitsFromConfig(config.storage.limits),
  }
}

/**
 * The driver of the S3 Parquet lake described by `config.storage.s3_parquet`. Pass `deps.client`
 * to reuse an `S3Client`; otherwise the store builds one from endpoint, region and credentials.
 * On a Worker, `deps.r2Bucket` (an R2 bucket binding) replaces the S3 API: the lake then lives in
 * that bucket under `prefix`, and bucket, endpoint and credentials are not used. `deps.codecs`,
 * `deps.loadZstd` and `deps.sha256` are the lake's codecs (see `LakeCodecOptions`; default pure JS
 * and Web Crypto, zstd loaded on first use when the config asks for it).
 */
export function s3ParquetFactory(
  config: FridayConfig,
  deps: { client?: S3Client; r2Bucket?: R2BucketBinding; r2BindingName?: string } & LakeCodecOptions = {},
): LakeStorage {
  const s3 = config.storage.s3_parquet
  if (deps.r2Bucket) {
    return new LakeStorage({
      backend: 's3_parquet',
      store: createR2BindingStore({ bucket: deps.r2Bucket, bindingName: deps.r2BindingName, prefix: s3.prefix }),
      requireConditionalWrites: s3.require_conditional_writes,
      ...lakeOptionsFromConfig(s3, config),
      codecs: deps.codecs,
      loadZstd: deps.loadZstd,
      sha256: deps.sha256,
    })
  }
  if (!s3.bucket) {
    const message = "required when storage.default_backend is 's3_parquet' (set it in the config or with S3_BUCKET)"
    throw new ConfigError(`storage.s3_parquet.bucket: ${message}`, [{ path: 'storage.s3_parquet.bucket', message }])
  }
  const store = s3StoreFromConfig(s3, deps.client)
  return new LakeStorage({
    backend: 's3_parquet',
    store,
    requireConditionalWrites: s3.require_conditional_writes,
    ...lakeOptionsFromConfig(s3, config),
    codecs: deps.codecs,
    loadZstd: deps.loadZstd,
    sha256: deps.sha256,
  })
}

/**
 * The S3 store `storage.s3_parquet` describes (its bucket must be set), with its timeouts: the
 * lake's store, and the archive store of the database backends' row retention.
 */
export function s3StoreFromConfig(s3: S3ParquetConfig, client?: S3Client): ObjectStore {
  return createS3Store({
    bucket: s3.bucket!,
    prefix: s3.prefix,
    client,
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: s3.force_path_style,
    credentials:
      s3.access_key_id && s3.secret_access_key
        ? { accessKeyId: s3.access_key_id, secretAccessKey: s3.secret_access_key, sessionToken: s3.session_token }
        : undefined,
    createBucket: s3.create_bucket,
    requestTimeoutMs: s3.request_timeout_ms,
    connectTimeoutMs: s3.connect_timeout_ms,
  })
}

/** The pool timeouts set in `storage.postgres` (those left unset keep the defaults of `timeouts.ts`). */
export function postgresTimeoutsFromConfig(pg: PostgresConfig): PostgresTimeouts {
  const t: PostgresTimeouts = {}
  if (pg.connect_timeout_ms !== undefined) t.connectionTimeoutMillis = pg.connect_timeout_ms
  if (pg.statement_timeout_ms !== undefined) t.statementTimeoutMillis = pg.statement_timeout_ms
  if (pg.query_timeout_ms !== undefined) t.queryTimeoutMillis = pg.query_timeout_ms
  if (pg.idle_timeout_ms !== undefined) t.idleTimeoutMillis = pg.idle_timeout_ms
  if (pg.idle_in_transaction_timeout_ms !== undefined) t.idleInTransactionTimeoutMillis = pg.idle_in_transaction_timeout_ms
  if (pg.keepalive !== undefined) t.keepAlive = pg.keepalive
  return t
}

/** The `neon` driver's WebSocket settings of the `postgres` section (`ws_proxy`, `ws_secure`, `pipeline_connect`). */
export function neonOptionsFromConfig(pg: PostgresConfig): NeonPoolOptions {
  const o: NeonPoolOptions = {}
  if (pg.ws_proxy !== undefined) o.wsProxy = pg.ws_proxy
  if (pg.ws_secure !== undefined) o.useSecureWebSocket = pg.ws_secure
  if (pg.pipeline_connect === false) o.pipelineConnect = false
  return o
}

/**
 * The driver of the `postgres` backend: one table per dataset. The Web build reaches Postgres through Neon's
 * WebSocket driver; the Node entry passes a `pg` pool for ordinary servers (`deps.pool`). The
 * section's timeouts go to the pool built here (a pool passed in brings its own), and
 * `idle_in_transaction_timeout_ms` also bounds how long a scan waits for its consumer.
 */
export function postgresFactory(config: FridayConfig, deps: { pool?: PgPoolLike; ownsPool?: boolean } = {}): PostgresStorage {
  const pg = config.storage.postgres
  if (!pg.url && !deps.pool) {
    const message = "required when storage.default_backend is 'postgres' (set it in the config or with DATABASE_URL)"
    throw new ConfigError(`storage.postgres.url: ${message}`, [{ path: 'storage.postgres.url', message }])
  }
  return new PostgresStorage({
    pool:
      deps.pool ?? createNeonPool(pg.url!, { max: pg.pool_max, ...postgresTimeoutsFromConfig(pg), ...neonOptionsFromConfig(pg) }),
    schema: pg.schema,
    scanIdleTimeoutMs: pg.idle_in_transaction_timeout_ms,
    partitionBy: [...pg.partition_by],
    ownsPool: deps.pool ? (deps.ownsPool ?? false) : true,
    limits: limitsFromConfig(config.storage.limits),
  })
}
