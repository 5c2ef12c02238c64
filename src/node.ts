/** Node/Bun entry: everything in the Web entry plus the local filesystem (`local_parquet`) backend. */

import { localParquetFactory } from './backends/node/local-parquet.js'
import { useNativeCodecs } from './backends/node/native-codecs.js'
import { createStorageWith, s3ParquetFactory } from './config/factory.js'
import { type Env, parseConfig } from './config/load.js'
import type { DataStorage } from './types.js'

export { createLocalFsStore, type LocalFsStoreOptions } from './backends/node/local-fs-store.js'
export { localParquetFactory } from './backends/node/local-parquet.js'
export { useNativeCodecs } from './backends/node/native-codecs.js'
export * from './index.js'

/** Storage from a config object and environment variables (default `process.env`): `local_parquet` or `s3_parquet`. */
export function createStorage(config?: unknown, env: Env = process.env): DataStorage {
  useNativeCodecs()
  return createStorageWith(
    { local_parquet: localParquetFactory, s3_parquet: (c) => s3ParquetFactory(c) },
    parseConfig(config, env),
  )
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
