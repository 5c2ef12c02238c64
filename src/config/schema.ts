/**
 * The seed's configuration as users write it (snake_case keys), as one valibot schema that
 * applies every default. Objects are strict so a typo'd key is an error, not a silent no-op.
 */

import * as v from 'valibot'
import type { PartitionKey } from '../core/partitioning.js'
import { TIME_UNITS } from '../core/time.js'

export const ENVIRONMENTS = ['development', 'test', 'production'] as const
export type Environment = (typeof ENVIRONMENTS)[number]

/** The partitionings the lake supports, in the order they are suggested. */
export const PARTITIONINGS: readonly (readonly PartitionKey[])[] = [
  ['symbol', 'date'],
  ['symbol', 'month'],
  ['date'],
  ['month'],
  ['symbol'],
]

/** Renders a config value the way messages quote it: `'lz4'`, `['date', 'symbol']`, `-1`. */
export function showValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`
  if (Array.isArray(value)) return `[${value.map(showValue).join(', ')}]`
  if (value === null || typeof value !== 'object') return String(value)
  return 'an object'
}

/** A custom issue message `expected <what>, got <input>`. */
const expected =
  (what: string) =>
  (issue: { input: unknown }): string =>
    `expected ${what}, got ${showValue(issue.input)}`

const PARTITION_EXPECTED = PARTITIONINGS.map(showValue).join(' | ')

const PartitionBy = v.pipe(
  v.custom<PartitionKey[]>(
    (input) =>
      Array.isArray(input) && PARTITIONINGS.some((p) => p.length === input.length && p.every((key, i) => key === input[i])),
    expected(PARTITION_EXPECTED),
  ),
  v.transform((keys) => [...keys]),
)

const Compression = v.picklist(['snappy', 'zstd'])

const RowGroupSize = v.pipe(
  v.number(),
  v.check((n) => Number.isInteger(n) && n >= 1 && n <= 10_000_000, expected('an integer from 1 to 10000000')),
)

const OCTAL_MODE = /^(0o?)?[0-7]{3,4}$/i

/** Parses `'755'`, `'0755'`, `'0o755'` or a number (taken as is: write `0o755` in JS, a string in JSON/YAML). */
function toMode(input: string | number): number {
  return typeof input === 'number' ? input : Number.parseInt(input.replace(/^0o?/i, ''), 8)
}

const FileMode = v.pipe(
  v.union([v.number(), v.string()]),
  v.check((input) => {
    if (typeof input === 'string' && !OCTAL_MODE.test(input)) return false
    const mode = toMode(input)
    return Number.isInteger(mode) && mode >= 0 && mode <= 0o7777
  }, expected("an octal mode such as '755' or '0o755' (at most 0o7777)")),
  v.transform(toMode),
)

const NonEmptyString = (what: string) =>
  v.pipe(
    v.string(),
    v.check((s) => s.length > 0 && !s.includes('\0'), expected(what)),
  )

/** S3 general-purpose bucket naming rules (also accepted by R2 and MinIO). */
function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d{1,3}(\.\d{1,3}){3}$/.test(name) &&
    !name.startsWith('xn--') &&
    !name.startsWith('sthree-') &&
    !name.endsWith('-s3alias') &&
    !name.endsWith('--ol-s3')
  )
}

/** A key prefix: no leading `/`, no `.`/`..` segments, no control characters. */
function isValidPrefix(prefix: string): boolean {
  return !prefix.startsWith('/') && !/[\x00-\x1f\x7f]/.test(prefix) && !prefix.split('/').some((s) => s === '.' || s === '..')
}

const HttpUrl = v.pipe(
  v.string(),
  v.check((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), expected('an http(s) URL')),
)

const TimeoutMs = v.pipe(
  v.number(),
  v.check((n) => Number.isInteger(n) && n >= 1 && n <= 3_600_000, expected('an integer number of ms from 1 to 3600000')),
)

/** Settings every Parquet-lake backend shares. */
const lakeEntries = {
  partition_by: v.optional(PartitionBy, () => ['symbol', 'date'] as PartitionKey[]),
  compression: v.optional(Compression, 'snappy'),
  validate_partitioning: v.optional(v.boolean(), true),
  row_group_size: v.optional(RowGroupSize, 100_000),
}

export const LocalParquetSchema = v.strictObject({
  base_dir: v.optional(NonEmptyString('a non-empty path'), './data'),
  ...lakeEntries,
  dir_mode: v.optional(FileMode, 0o755),
  file_mode: v.optional(FileMode, 0o644),
  /** fsync every file before publishing it: survives power loss, costs a disk flush per file. */
  fsync: v.optional(v.boolean(), false),
})

export const S3ParquetSchema = v.strictObject({
  /** Required when `s3_parquet` is the default backend (checked on the whole config). */
  bucket: v.optional(v.pipe(v.string(), v.check(isValidBucketName, expected('an S3 bucket name (3-63 of a-z 0-9 . -)')))),
  prefix: v.optional(
    v.pipe(v.string(), v.check(isValidPrefix, expected("a key prefix without leading '/', '..' or control characters"))),
    '',
  ),
  endpoint: v.optional(HttpUrl),
  region: v.optional(NonEmptyString('a non-empty region'), 'us-east-1'),
  force_path_style: v.optional(v.boolean(), false),
  access_key_id: v.optional(NonEmptyString('a non-empty string')),
  secret_access_key: v.optional(NonEmptyString('a non-empty string')),
  session_token: v.optional(NonEmptyString('a non-empty string')),
  create_bucket: v.optional(v.boolean(), false),
  require_conditional_writes: v.optional(v.boolean(), true),
  /** Limit on each request to the store, in ms (unset: the store's default, 30 000). */
  request_timeout_ms: v.optional(TimeoutMs),
  /** Limit on opening a connection, in ms (unset: the store's default, 5 000). */
  connect_timeout_ms: v.optional(TimeoutMs),
  ...lakeEntries,
})

/** A PostgreSQL timeout in ms; 0 turns it off (node-postgres and the server read 0 as "none"). */
const PgTimeoutMs = v.pipe(
  v.number(),
  v.check(
    (n) => Number.isInteger(n) && n >= 0 && n <= 2_147_483_647,
    expected('an integer number of ms from 0 (no timeout) to 2147483647'),
  ),
)

const DbUrl = (scheme: RegExp, what: string) =>
  v.pipe(
    v.string(),
    v.check((u) => scheme.test(u), expected(what)),
  )

export const PostgresSchema = v.strictObject({
  /** Required when `postgres` is the default backend (DATABASE_URL). */
  url: v.optional(DbUrl(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL')),
  /** `neon` (@neondatabase/serverless: WebSocket, runs on Workers/Bun/Node), `pg` (TCP), `auto`: neon for *.neon.tech, else pg. */
  driver: v.optional(v.picklist(['auto', 'neon', 'pg']), 'auto'),
  /** The PostgreSQL schema holding the dataset tables. */
  schema: v.optional(v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_]{0,62}$/, expected('a lower-case SQL identifier'))), 'public'),
  pool_max: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000)), 10),
  /** Partitions reported by listPartitions/getManifest/verify (the data itself is one table). */
  partition_by: v.optional(PartitionBy, () => ['symbol', 'date'] as PartitionKey[]),
  /** Limit on opening a connection or waiting for one from a full pool, in ms (unset: 10 000; 0: none). */
  connect_timeout_ms: v.optional(PgTimeoutMs),
  /** Server-side `statement_timeout`, in ms: the server cancels a longer statement (unset: 60 000; 0: none). */
  statement_timeout_ms: v.optional(PgTimeoutMs),
  /** Client-side wait for a statement's answer, in ms; what ends a call on a half-open connection (unset: 65 000; 0: none). */
  query_timeout_ms: v.optional(PgTimeoutMs),
  /** Idle pooled connections are closed after this long, in ms (unset: 10 000; 0: never). */
  idle_timeout_ms: v.optional(PgTimeoutMs),
  /**
   * Server-side `idle_in_transaction_session_timeout`, in ms (unset: 60 000; 0: none). Also how long
   * a scan keeps its snapshot while its consumer does not ask for the next batch.
   */
  idle_in_transaction_timeout_ms: v.optional(PgTimeoutMs),
  /** TCP keepalive on `pg` connections (unset: true; Neon's WebSocket has none). */
  keepalive: v.optional(v.boolean()),
  /**
   * `neon` driver: a WebSocket-to-TCP proxy in front of a server that does not serve Neon's own
   * WebSocket endpoint, as `host[:port][/path]` (no scheme); the driver connects to
   * `<ws_proxy>?address=<host>:<port>` of the URL's server (unset: Neon's `<host>/v2`).
   */
  ws_proxy: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~/-]*)?$/, expected('host[:port][/path], without a scheme')),
    ),
  ),
  /** `neon` driver: `wss:` to the server or proxy (unset: true); false for `ws:` (a proxy on a private network). */
  ws_secure: v.optional(v.boolean()),
  /**
   * `neon` driver: pipelined connection start-up, which needs cleartext password authentication
   * (unset: true, as on Neon); false for a server behind `ws_proxy` that uses other authentication.
   */
  pipeline_connect: v.optional(v.boolean()),
})

export const MongodbSchema = v.strictObject({
  /** Required when `mongodb` is the default backend (MONGODB_URL). */
  url: v.optional(DbUrl(/^mongodb(\+srv)?:\/\//, 'a mongodb:// or mongodb+srv:// URL')),
  database: v.optional(NonEmptyString('a database name'), 'friday'),
  partition_by: v.optional(PartitionBy, () => ['symbol', 'date'] as PartitionKey[]),
})

/**
 * The operation log (`src/oplog/`): what is recorded and for how long. Records are stored in the
 * active backend; `enabled: false` attaches no op log at all.
 */
export const MetadataLoggingSchema = v.strictObject({
  enabled: v.optional(v.boolean(), true),
  /** Record every operation. */
  log_operations: v.optional(v.boolean(), true),
  /** Keep durations, request counts and bytes (else they are stored as 0). */
  log_performance: v.optional(v.boolean(), true),
  /** Record failed operations even when `log_operations` is off, and print them to the runtime's log. */
  log_errors: v.optional(v.boolean(), true),
  /** Records older than this many days are removed. */
  retention_days: v.optional(
    v.pipe(
      v.number(),
      v.check((n) => Number.isFinite(n) && n > 0, expected('a number of days > 0')),
    ),
    90,
  ),
})

/**
 * One section per backend, keyed by the backend's name. Adding a backend (postgres, mongodb)
 * is one entry here: its name becomes a valid `default_backend` and its section gets defaults.
 */
const backendSections = {
  local_parquet: v.optional(LocalParquetSchema, {}),
  s3_parquet: v.optional(S3ParquetSchema, {}),
  postgres: v.optional(PostgresSchema, {}),
  mongodb: v.optional(MongodbSchema, {}),
}

export type BackendName = keyof typeof backendSections
export const BACKEND_NAMES = Object.keys(backendSections) as BackendName[]

const PositiveNumber = v.pipe(
  v.number(),
  v.check((n) => Number.isFinite(n) && n > 0, expected('a number > 0')),
)

/**
 * Rotation, compaction, archiving and retention (`maintain()`); see README "Maintenance".
 * `strategy` picks what makes a lake partition due for compaction: `count_based` more than
 * `max_files` live files; `size_based` a file over `max_file_size_mb`, or two or more files
 * under half of it; `time_based` two or more files with the oldest `max_file_age_hours` old.
 * The defaults are the seed's: on, `size_based`, 100 MB, replaced files archived compressed.
 */
export const FileRotationSchema = v.strictObject({
  enabled: v.optional(v.boolean(), true),
  strategy: v.optional(v.picklist(['size_based', 'time_based', 'count_based']), 'size_based'),
  /** Target size of compacted files, and the size_based limit. */
  max_file_size_mb: v.optional(PositiveNumber, 100),
  max_file_age_hours: v.optional(PositiveNumber, 24),
  max_files: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 10),
  /** Compress the files compaction replaces when it archives them. */
  compress_old_files: v.optional(v.boolean(), true),
  archive_codec: v.optional(v.picklist(['gzip', 'zstd']), 'gzip'),
  /** Archived files older than this are deleted (0: never). */
  archive_retention_days: v.optional(
    v.pipe(
      v.number(),
      v.check((n) => Number.isFinite(n) && n >= 0, expected('a number >= 0')),
    ),
    30,
  ),
  /** Rows whose timestamp is older than this are archived and removed (unset: kept forever). */
  row_retention_days: v.optional(PositiveNumber),
})

export type FileRotationConfig = v.InferOutput<typeof FileRotationSchema>

/**
 * The read cache (`src/cache/`): partitions recently returned by `read()` kept in memory. Every
 * cached read first lists the partitions' current versions, so a write (by any process) is seen
 * at once; `ttl_seconds` bounds how long an entry is kept, `max_mb` the memory of all entries
 * (least recently used dropped first). `scan()` (and so `GET /v1/datasets/:dataset/rows`) is not cached.
 * On by default (the seed's `cache_enabled`); a miss costs one partition listing more than a
 * plain read, so turn it off where reads never repeat.
 */
export const ReadCacheSchema = v.strictObject({
  enabled: v.optional(v.boolean(), true),
  /** Seconds an entry is served after it was read (then read again). */
  ttl_seconds: v.optional(PositiveNumber, 300),
  /** Memory bound of all entries, in MiB (estimated from the rows' arrays and strings). */
  max_mb: v.optional(PositiveNumber, 64),
})

export type ReadCacheConfig = v.InferOutput<typeof ReadCacheSchema>

/**
 * Bulk retrieval (the seed's `retrieval` settings): `batch_size` rows per batch of `scan()`
 * when the caller names none (so per chunk of the HTTP rows route); `parallel_loading` with
 * `max_workers` symbols read at once by the training functions (`loadSymbols`) when the
 * request names no `concurrency` (`parallel_loading: false`: one at a time).
 */
export const RetrievalSchema = v.strictObject({
  batch_size: v.optional(
    v.pipe(
      v.number(),
      v.check((n) => Number.isInteger(n) && n >= 1 && n <= 10_000_000, expected('an integer from 1 to 10000000')),
    ),
    10_000,
  ),
  parallel_loading: v.optional(v.boolean(), true),
  max_workers: v.optional(
    v.pipe(
      v.number(),
      v.check((n) => Number.isInteger(n) && n >= 1 && n <= 64, expected('an integer from 1 to 64')),
    ),
    4,
  ),
})

export type RetrievalConfig = v.InferOutput<typeof RetrievalSchema>

const PositiveInteger = v.pipe(
  v.number(),
  v.check((n) => Number.isInteger(n) && n >= 1, expected('an integer >= 1')),
)

/**
 * Limits on one write (`src/table/limits.ts`; the defaults are `DEFAULT_LIMITS` there): columns
 * per dataset (422 past it) and per request (413), partitions one write may touch (413), and the
 * seconds a request body may take to arrive (408). Nothing is stored when one is passed.
 */
export const LimitsSchema = v.strictObject({
  max_columns_per_dataset: v.optional(PositiveInteger, 1024),
  max_columns_per_request: v.optional(PositiveInteger, 1024),
  max_partitions_per_write: v.optional(PositiveInteger, 5000),
  max_body_read_seconds: v.optional(PositiveNumber, 60),
  /** Parquet bodies (`DEFAULT_PARQUET_INGEST_LIMITS`): rows and cells a file may claim, one page's and all pages' decoded bytes (413). */
  parquet_max_rows: v.optional(PositiveInteger, 10_000_000),
  parquet_max_cells: v.optional(PositiveInteger, 100_000_000),
  parquet_max_page_bytes: v.optional(PositiveInteger, 16 * 1024 * 1024),
  parquet_max_decoded_bytes: v.optional(PositiveInteger, 512 * 1024 * 1024),
  /** HTTP rows route: bodies read and parsed at once; more wait, up to `max_queued_bodies` (then 429). */
  max_concurrent_bodies: v.optional(PositiveInteger, 8),
  max_queued_bodies: v.optional(PositiveInteger, 256),
})

export type LimitsConfig = v.InferOutput<typeof LimitsSchema>

/**
 * How written time values are read. `time_unit`: the unit of epoch numbers in the time column
 * when a write names none (`?time_unit=` of the HTTP rows route, `friday ingest --time-unit`,
 * `write(ds, data, { timeUnit })` of a storage built from this config); unset:
 * milliseconds, and a number implausible as milliseconds (|v| < 1e11) is refused as probably
 * seconds. A configured unit accepts every in-range value.
 */
export const IngestSchema = v.strictObject({
  time_unit: v.optional(v.picklist(TIME_UNITS, expected(`one of ${TIME_UNITS.join(', ')}`))),
})

export const StorageSchema = v.strictObject({
  default_backend: v.optional(v.picklist(BACKEND_NAMES), 'local_parquet'),
  file_rotation: v.optional(FileRotationSchema, {}),
  gc_grace_period_seconds: v.optional(
    v.pipe(
      v.number(),
      v.check((n) => Number.isFinite(n) && n >= 0, expected('a number >= 0')),
    ),
    3600,
  ),
  metadata_logging: v.optional(MetadataLoggingSchema, {}),
  read_cache: v.optional(ReadCacheSchema, {}),
  retrieval: v.optional(RetrievalSchema, {}),
  limits: v.optional(LimitsSchema, {}),
  ingest: v.optional(IngestSchema, {}),
  ...backendSections,
})

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T

type StorageInput = v.InferInput<typeof StorageSchema>
export type StorageConfig = v.InferOutput<typeof StorageSchema>
export type LocalParquetConfig = StorageConfig['local_parquet']
export type S3ParquetConfig = StorageConfig['s3_parquet']
export type PostgresConfig = StorageConfig['postgres']
export type MongodbConfig = StorageConfig['mongodb']
export type MetadataLoggingConfig = StorageConfig['metadata_logging']

/** Rebuilds strict objects with every key optional and no defaults; leaves are kept as they are. */
function deepPartial(schema: v.GenericSchema): v.GenericSchema {
  const s = schema as v.GenericSchema & { wrapped?: v.GenericSchema; entries?: Record<string, v.GenericSchema> }
  if (s.type === 'optional' && s.wrapped) return deepPartial(s.wrapped)
  if (s.type === 'strict_object' && s.entries) {
    return v.strictObject(
      Object.fromEntries(Object.entries(s.entries).map(([key, entry]) => [key, v.optional(deepPartial(entry))])),
    )
  }
  return schema
}

/** A layer merged over the base config: a profile, or the environment-variable overrides. */
export interface ConfigLayer {
  storage?: DeepPartial<StorageConfig>
}
export interface ConfigLayerInput {
  storage?: DeepPartial<StorageInput>
}

export const LayerSchema = v.strictObject({ storage: v.optional(deepPartial(StorageSchema)) }) as unknown as v.GenericSchema<
  ConfigLayerInput,
  ConfigLayer
>

const ProfilesSchema = v.strictObject({
  development: v.optional(LayerSchema),
  test: v.optional(LayerSchema),
  production: v.optional(LayerSchema),
} satisfies Record<Environment, unknown>)

/** The config file on its own: every default applied, no cross-field rules (a profile may complete it). */
export const ConfigFileSchema = v.strictObject({
  environment: v.optional(v.picklist(ENVIRONMENTS), 'development'),
  storage: v.optional(StorageSchema, {}),
  profiles: v.optional(ProfilesSchema),
})

type ConfigShape = v.InferOutput<typeof ConfigFileSchema>

const s3Path = (key: keyof S3ParquetConfig) => ['storage', 's3_parquet', key] as const

/**
 * The effective config's cross-field rules except that `s3_parquet` needs a bucket: for a lake
 * whose object store is given otherwise (a Worker's R2 bucket binding).
 */
export const ConfigSchemaBoundStore = v.pipe(
  ConfigFileSchema,
  v.forward(
    v.partialCheck(
      [
        ['storage', 'default_backend'],
        ['storage', 'postgres', 'url'],
      ],
      (c: ConfigShape) => c.storage.default_backend !== 'postgres' || c.storage.postgres.url !== undefined,
      "required when storage.default_backend is 'postgres' (set it in the config or with DATABASE_URL)",
    ),
    ['storage', 'postgres', 'url'] as const,
  ),
  v.forward(
    v.partialCheck(
      [
        ['storage', 'default_backend'],
        ['storage', 'mongodb', 'url'],
      ],
      (c: ConfigShape) => c.storage.default_backend !== 'mongodb' || c.storage.mongodb.url !== undefined,
      "required when storage.default_backend is 'mongodb' (set it in the config or with MONGODB_URL)",
    ),
    ['storage', 'mongodb', 'url'] as const,
  ),
  v.forward(
    v.partialCheck(
      [s3Path('access_key_id'), s3Path('secret_access_key')],
      (c: ConfigShape) =>
        c.storage.s3_parquet.access_key_id === undefined || c.storage.s3_parquet.secret_access_key !== undefined,
      'required when access_key_id is set',
    ),
    [...s3Path('secret_access_key')],
  ),
  v.forward(
    v.partialCheck(
      [s3Path('access_key_id'), s3Path('secret_access_key')],
      (c: ConfigShape) =>
        c.storage.s3_parquet.access_key_id !== undefined || c.storage.s3_parquet.secret_access_key === undefined,
      'required when secret_access_key is set',
    ),
    [...s3Path('access_key_id')],
  ),
  v.forward(
    v.partialCheck(
      [s3Path('access_key_id'), s3Path('session_token')],
      (c: ConfigShape) => c.storage.s3_parquet.session_token === undefined || c.storage.s3_parquet.access_key_id !== undefined,
      'only allowed together with access_key_id and secret_access_key',
    ),
    [...s3Path('session_token')],
  ),
)

/** The effective config (profile and environment applied): the file schema plus cross-field rules. */
export const ConfigSchema = v.pipe(
  ConfigSchemaBoundStore,
  v.forward(
    v.partialCheck(
      [['storage', 'default_backend'], s3Path('bucket')],
      (c: ConfigShape) => c.storage.default_backend !== 's3_parquet' || c.storage.s3_parquet.bucket !== undefined,
      "required when storage.default_backend is 's3_parquet' (set it in the config or with S3_BUCKET)",
    ),
    [...s3Path('bucket')],
  ),
)

/** The validated configuration, every default applied. */
export type FridayConfig = v.InferOutput<typeof ConfigSchema>
/** The configuration as written in a file: every key optional. */
export type FridayConfigInput = v.InferInput<typeof ConfigSchema>
