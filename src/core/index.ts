/** The core every backend stands on: the storage contract, errors, keys, ids, partitioning, filters and the table model. */

export * from './archive-codec.js'
export * from './column-stats.js'
export * from './errors.js'
export * from './filter.js'
export * from './ids.js'
export * from './keys.js'
export * from './partitioning.js'
export * from './rotation-policy.js'
export * from './table.js'
export * from './types.js'
