export type { PartitionKey } from './core/partitioning.js'

/** Web-standard entry (Workers, browsers, Deno, Node): config, the S3 Parquet backend and the storage contract. */

import { createStorageWith, postgresFactory, s3ParquetFactory } from './config/factory.js'
import { type Env, parseConfig } from './config/load.js'
import type { DataStorage } from './core/types.js'
import { jsCodecs } from './parquet/index.js'
import type { R2BucketBinding } from './stores/r2-binding-store.js'

export { createNeonPool, createPostgresStorage, type PgPoolLike } from './backends/postgres/index.js'
export * from './cache/index.js'
export {
  type BackendFactory,
  createStorageWith,
  frontOptionsFromConfig,
  lakeOptionsFromConfig,
  postgresFactory,
  s3ParquetFactory,
} from './config/factory.js'
export { type ConfigIssue, defaultConfig, type Env, parseConfig } from './config/load.js'
export type {
  BackendName,
  Environment,
  FridayConfig,
  FridayConfigInput,
  LocalParquetConfig,
  S3ParquetConfig,
  StorageConfig,
} from './config/schema.js'
export { BACKEND_NAMES, ConfigSchema, ENVIRONMENTS } from './config/schema.js'
export type * from './core/driver.js'
export * from './core/errors.js'
export { checkFilter, createDataStorage, type FrontedStorage, type FrontOptions, type StorageLayer } from './core/front.js'
export { DEFAULT_ROTATION, type RotationPolicy, rotationFromConfig } from './core/rotation-policy.js'
export { concat, emptyTable, slice, sortTable, take, toRows } from './core/table.js'
export { formatUs, parseTimeUs } from './core/time.js'
export type * from './core/types.js'
export { BOOL_NULL } from './core/types.js'
export { createLakeStorage, LakeStorage } from './lake/lake-storage.js'
export type { Sha256Hex } from './lake/manifest.js'
export type { Compression, LakeCodecOptions, LakeOptions } from './lake/options.js'
export * from './maintenance/index.js'
export * from './oplog/index.js'
export {
  decodeParquet,
  encodeParquet,
  jsCodecs,
  loadZstdWasm,
  type ParquetCodecs,
  type ZstdCodec,
} from './parquet/index.js'
export { abortSafeFetch } from './stores/abort-safe-fetch.js'
export {
  createR2BindingStore,
  type R2BindingStoreOptions,
  type R2BucketBinding,
  type R2ObjectLike,
} from './stores/r2-binding-store.js'
export { createS3Store, type S3StoreOptions } from './stores/s3-store.js'
export type * from './stores/types.js'

/**
 * Storage from a config object and environment variables (e.g. a Worker's `env`). Supports the
 * backends that need no filesystem: `s3_parquet` and `postgres` (through Neon's WebSocket driver).
 * For `local_parquet` use the Node/Bun entry. `deps.r2Bucket`: an R2 bucket binding that
 * `s3_parquet` uses instead of the S3 API (`r2BindingName` names it in messages).
 */
export function createStorage(
  config?: unknown,
  env: Env = {},
  deps: { r2Bucket?: R2BucketBinding; r2BindingName?: string } = {},
): DataStorage {
  return createStorageWith(
    // pure-JS codecs and Web Crypto; zstd (WebAssembly) is loaded by each lake on first use when configured
    { s3_parquet: (c) => s3ParquetFactory(c, { ...deps, codecs: jsCodecs() }), postgres: (c) => postgresFactory(c) },
    parseConfig(config, env, { storeBound: deps.r2Bucket !== undefined }),
  )
}
export * from './training/index.js'
