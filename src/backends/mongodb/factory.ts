/** The `mongodb` backend built from a validated config (wired by the Node/Bun entry only). */

import { MongoClient } from 'mongodb'
import type { FridayConfig } from '../../config/schema.js'
import { ConfigError } from '../../errors.js'
import type { DataStorage } from '../../types.js'
import { createMongoStorage } from './mongo-storage.js'

/**
 * Storage on `config.storage.mongodb` (`url`, `database`, `partition_by`). Pass `deps.client`
 * to share a `MongoClient` (the caller then closes it); otherwise the storage creates one from
 * `url` at first use and closes it in `close()`.
 */
export function mongodbFactory(config: FridayConfig, deps: { client?: MongoClient } = {}): DataStorage {
  const m = config.storage.mongodb
  if (!m.url && !deps.client) {
    const message = "required when storage.default_backend is 'mongodb' (set it in the config or with MONGODB_URL)"
    throw new ConfigError(`storage.mongodb.url: ${message}`, [{ path: 'storage.mongodb.url', message }])
  }
  const url = m.url
  return createMongoStorage({
    client: deps.client ?? (() => new MongoClient(url!)),
    db: m.database,
    partitionBy: [...m.partition_by],
    closeClient: !deps.client,
  })
}
