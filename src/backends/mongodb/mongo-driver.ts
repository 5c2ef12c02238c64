/**
 * The `mongodb` driver, an optional peer dependency: loaded on first use, so the Node entry
 * imports without it. Modules of this backend take the driver's values (`BSON`, `ObjectId`,
 * error classes, `MongoClient`) from `mongo()`; its types they import directly (erased at run time).
 */

import type * as Mongo from 'mongodb'
import { requireOptional } from '../node/optional-package.js'

let driver: typeof Mongo | undefined

/** The `mongodb` module (`ConfigError` naming the package when it is not installed). */
export function mongo(): typeof Mongo {
  driver ??= requireOptional<typeof Mongo>('mongodb', 'the mongodb backend')
  return driver
}

/** A new `ObjectId` (from 12 bytes, or a fresh one). */
export function objectId(bytes?: Uint8Array): Mongo.ObjectId {
  return new (mongo().ObjectId)(bytes)
}
