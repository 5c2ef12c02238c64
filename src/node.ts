/** Node/Bun entry: everything in the Web entry plus the local filesystem (`local_parquet`) backend. */

import { mongodbFactory } from './backends/mongodb/index.js'
import { localParquetFactory } from './backends/node/local-parquet.js'
import { nativeCodecs, nodeLakeCodecs } from './backends/node/native-codecs.js'
import { requireOptional } from './backends/node/optional-package.js'
import { choosePostgresDriver, createNeonPool, type PgPoolLike, type PostgresStorage } from './backends/postgres/index.js'
import { createPgPool } from './backends/postgres/node.js'
import {
  createStorageWith,
  neonOptionsFromConfig,
  postgresFactory,
  postgresTimeoutsFromConfig,
  s3ParquetFactory,
} from './config/factory.js'
import { type Env, parseConfig } from './config/load.js'
import type { FridayConfig } from './config/schema.js'
import type { DataStorage } from './core/types.js'
import type { OpLogOptions } from './oplog/buffered-op-log.js'

export { createMongoStorage, MongoStorage, type MongoStorageOptions, mongodbFactory } from './backends/mongodb/index.js'
export { createLocalFsStore, type LocalFsStoreOptions } from './backends/node/local-fs-store.js'
export { localParquetFactory } from './backends/node/local-parquet.js'
export { nativeCodecs, nodeLakeCodecs, nodeSha256Hex } from './backends/node/native-codecs.js'
export { createPgPool, createPostgresPool } from './backends/postgres/node.js'
export * from './index.js'

/**
 * Storage from a config object and environment variables (default `process.env`): `local_parquet`,
 * `s3_parquet`, `postgres` or `mongodb`. The Parquet lakes get native Snappy and node:crypto's
 * SHA-256 (`nodeLakeCodecs()`), each its own; the row-retention archives native Snappy too. `postgres` needs the optional package `pg` (or, for Neon
 * hosts on Node 20, `ws`), `mongodb` the package `mongodb`: without it, a `ConfigError` naming it.
 */
export function createStorage(
  config?: unknown,
  env: Env = process.env,
  /** `oplog`: op-log tuning beyond the config (e.g. `printFailures: false`), see `createStorageWith`. */
  options: { oplog?: Partial<OpLogOptions> } = {},
): DataStorage {
  return createStorageWith(
    {
      local_parquet: (c) => localParquetFactory(c, nodeLakeCodecs()),
      s3_parquet: (c) => s3ParquetFactory(c, nodeLakeCodecs()),
      postgres: nodePostgresFactory,
      mongodb: (c) => {
        requireOptional('mongodb', "storage.default_backend 'mongodb'")
        return mongodbFactory(c, { archiveCodecs: nativeCodecs() })
      },
    },
    parseConfig(config, env),
    // native Snappy also for the row-retention archives of the database backends
    { ...options, codecs: nativeCodecs() },
  )
}

/**
 * postgres on Node/Bun: `pg` over TCP for ordinary servers, Neon's driver for Neon hosts (over
 * the runtime's WebSocket, or `ws` where there is none, as on Node 20). `pg` and `ws` are
 * optional peer dependencies: a missing one is a `ConfigError` naming it.
 */
function nodePostgresFactory(config: FridayConfig): PostgresStorage {
  const p = config.storage.postgres
  if (!p.url) return postgresFactory(config)
  const timeouts = postgresTimeoutsFromConfig(p)
  const neededBy = "storage.default_backend 'postgres'"
  let pool: PgPoolLike
  if (choosePostgresDriver(p.url, p.driver) === 'pg') {
    requireOptional('pg', neededBy)
    pool = createPgPool(p.url, { max: p.pool_max, ...timeouts })
  } else {
    const global = (globalThis as { WebSocket?: unknown }).WebSocket
    const webSocketConstructor =
      typeof global === 'function'
        ? global
        : requireOptional('ws', `${neededBy} (the neon driver, on a runtime without WebSocket)`)
    pool = createNeonPool(p.url, { max: p.pool_max, ...timeouts, ...neonOptionsFromConfig(p), webSocketConstructor })
  }
  return postgresFactory(config, { pool, ownsPool: true })
}

let defaultStorage: DataStorage | undefined

/**
 * A process-wide storage built from defaults plus environment overrides: the local Parquet lake
 * in `./data` unless `DATA_DIR`, `STORAGE_BACKEND`, `FRIDAY_ENV`... say otherwise. Created on the
 * first call (a failed creation is retried on the next); do not `close()` it while others use it.
 */
export function getDefaultStorage(): DataStorage {
  defaultStorage ??= createStorage(undefined, process.env)
  return defaultStorage
}
