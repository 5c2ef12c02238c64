/** The read cache: a TTL, size-bounded, version-checked cache of `DataStorage.read` results per partition. */

export type { ReadCacheStats } from '../core/types.js'
export { ReadCache, type ReadCacheOptions } from './read-cache.js'
export { withReadCache } from './with-read-cache.js'
