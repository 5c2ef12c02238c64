/** The read cache: a TTL, size-bounded, version-checked cache of `DataStorage.read` results per partition. */

export { ReadCache, type ReadCacheOptions, type ReadCacheStats } from './read-cache.js'
export { withReadCache } from './with-read-cache.js'
