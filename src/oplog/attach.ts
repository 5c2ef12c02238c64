/** The op log a config asks for, attached to a freshly built storage. */

import type { MetadataLoggingConfig } from '../config/schema.js'
import type { DataStorage } from '../core/types.js'
import { BufferedOpLog, type OpLogOptions } from './buffered-op-log.js'
import { withOpLog } from './with-oplog.js'

/**
 * `storage` with an op log per `metadata_logging` (stored through `storage.opLogStore()` when
 * the backend has one, else kept in memory), or `storage` itself when logging is disabled.
 * `options` overrides the op log's tuning (flush size and interval, clock) for tools and tests.
 */
export function attachOpLog<T extends DataStorage>(
  storage: T,
  config: MetadataLoggingConfig,
  options: Partial<OpLogOptions> = {},
): T {
  if (!config.enabled || storage.oplog) return storage
  const oplog = new BufferedOpLog({
    store: storage.opLogStore?.() ?? null,
    logOperations: config.log_operations,
    logPerformance: config.log_performance,
    logErrors: config.log_errors,
    retentionDays: config.retention_days,
    ...options,
  })
  return withOpLog(storage, oplog)
}
