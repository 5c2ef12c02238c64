/** The `mongodb` backend built from a validated config (wired by the Node/Bun entry only). */

import type { MongoClient } from 'mongodb'
import { s3StoreFromConfig } from '../../config/factory.js'
import type { FridayConfig } from '../../config/schema.js'
import { ConfigError } from '../../core/errors.js'
import { rotationFromConfig } from '../../core/rotation-policy.js'
import type { ParquetCodecs } from '../../parquet/index.js'
import type { ObjectStore } from '../../stores/types.js'
import { limitsFromConfig } from '../../table/limits.js'
import { mongo } from './mongo-driver.js'
import { MongoStorage } from './mongo-storage.js'

/**
 * The driver on `config.storage.mongodb` (`url`, `database`, `partition_by`). Pass `deps.client`
 * to share a `MongoClient` (the caller then closes it); otherwise the storage creates one from
 * `url` at first use and closes it in `close()`. `maintain()` applies `storage.file_rotation`'s
 * row retention, archiving expired rows to the bucket of `storage.s3_parquet` when one is set
 * (Parquet written with `deps.archiveCodecs`, default `jsCodecs()`).
 */
export function mongodbFactory(
  config: FridayConfig,
  deps: { client?: MongoClient; archiveCodecs?: ParquetCodecs } = {},
): MongoStorage {
  const m = config.storage.mongodb
  if (!m.url && !deps.client) {
    const message = "required when storage.default_backend is 'mongodb' (set it in the config or with MONGODB_URL)"
    throw new ConfigError(`storage.mongodb.url: ${message}`, [{ path: 'storage.mongodb.url', message }])
  }
  const url = m.url
  return new MongoStorage({
    client: deps.client ?? (() => new (mongo().MongoClient)(url!)),
    db: m.database,
    partitionBy: [...m.partition_by],
    closeClient: !deps.client,
    rotation: rotationFromConfig(config.storage.file_rotation),
    archiveStore: archiveStoreOf(config),
    archiveCodecs: deps.archiveCodecs,
    limits: limitsFromConfig(config.storage.limits),
    gcGraceMs: config.storage.gc_grace_period_seconds * 1000,
  })
}

/** The S3 store of `storage.s3_parquet` (rows archives), with its timeouts, when a bucket is set. */
function archiveStoreOf(config: FridayConfig): (() => ObjectStore) | undefined {
  const s3 = config.storage.s3_parquet
  if (!s3.bucket) return undefined
  return () => s3StoreFromConfig(s3)
}
