/** The operation log: records of storage operations, levels, batched durable storage, retention and queries. */

export * from '../core/oplog-types.js'
export { ActivityTracker } from './activity.js'
export { attachOpLog } from './attach.js'
export { BufferedOpLog, type OpLogOptions } from './buffered-op-log.js'
export { LakeOpLogStore, OPLOG_PREFIX } from './lake-store.js'
export { errorOf, MAX_RECORD_PARTITIONS, newOpRecord, noRequests, pageOf } from './records.js'
export { withOpLog } from './with-oplog.js'
