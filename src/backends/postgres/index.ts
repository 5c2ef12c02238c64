export type { PgClientLike, PgPoolLike, PgQueryConfig, PgQueryResult } from './pool-types.js'
/** The PostgreSQL backend (Web-standard part): storage over an injected pool, plus the Neon pool. */

export { choosePostgresDriver, isWorkerRuntime, type PostgresDriver } from './driver.js'
export { createNeonPool, type NeonPoolOptions } from './neon-pool.js'
export { createPostgresStorage, PostgresStorage, type PostgresStorageOptions } from './postgres-storage.js'
export type { ExpireRowsOptions, ExpireRowsResult, RowArchive } from './retention.js'
export { DEFAULT_TIMEOUTS, type PostgresTimeouts } from './timeouts.js'
