import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { neonOptionsFromConfig } from '../src/config/factory.js'
import { defaultConfig, parseConfig } from '../src/config/load.js'
import { ConfigError } from '../src/core/errors.js'

/** The ConfigError thrown by `fn` (fails the test when nothing is thrown). */
function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError, nothing was thrown')
}

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  return configErrorOf(fn).details?.issues as { path: string; message: string }[]
}

describe('defaults', () => {
  it('applies every default to an empty config', () => {
    expect(parseConfig()).toEqual({
      environment: 'development',
      storage: {
        default_backend: 'local_parquet',
        gc_grace_period_seconds: 3600,
        metadata_logging: { enabled: true, log_operations: true, log_performance: true, log_errors: true, retention_days: 90 },
        read_cache: { enabled: true, ttl_seconds: 300, max_mb: 64 },
        retrieval: { batch_size: 10_000, parallel_loading: true, max_workers: 4 },
        limits: {
          max_columns_per_dataset: 1024,
          max_columns_per_request: 1024,
          max_partitions_per_write: 5000,
          max_body_read_seconds: 60,
          parquet_max_rows: 10_000_000,
          parquet_max_cells: 100_000_000,
          parquet_max_page_bytes: 16 * 1024 * 1024,
          parquet_max_decoded_bytes: 512 * 1024 * 1024,
          max_concurrent_bodies: 8,
          max_queued_bodies: 256,
        },
        ingest: {},
        file_rotation: {
          enabled: true,
          strategy: 'size_based',
          max_file_size_mb: 100,
          max_file_age_hours: 24,
          max_files: 10,
          compress_old_files: true,
          archive_codec: 'gzip',
          archive_retention_days: 30,
        },
        local_parquet: {
          base_dir: './data',
          partition_by: ['symbol', 'date'],
          compression: 'snappy',
          validate_partitioning: true,
          row_group_size: 100_000,
          dir_mode: 0o755,
          file_mode: 0o644,
          fsync: false,
        },
        s3_parquet: {
          prefix: '',
          region: 'us-east-1',
          force_path_style: false,
          create_bucket: false,
          require_conditional_writes: true,
          partition_by: ['symbol', 'date'],
          compression: 'snappy',
          validate_partitioning: true,
          row_group_size: 100_000,
        },
        postgres: { driver: 'auto', schema: 'public', pool_max: 10, partition_by: ['symbol', 'date'] },
        mongodb: { database: 'friday', partition_by: ['symbol', 'date'] },
      },
    })
  })

  it('defaultConfig() equals parsing an empty config without env', () => {
    expect(defaultConfig()).toEqual(parseConfig({}, {}))
  })

  it('keeps explicit values and parses octal modes', () => {
    const c = parseConfig({
      storage: {
        gc_grace_period_seconds: 0,
        local_parquet: {
          base_dir: '/srv/lake',
          partition_by: ['month'],
          compression: 'zstd',
          dir_mode: '0o700',
          file_mode: '600',
        },
        s3_parquet: { row_group_size: 5000, validate_partitioning: false },
      },
    })
    expect(c.storage.gc_grace_period_seconds).toBe(0)
    expect(c.storage.local_parquet).toMatchObject({
      base_dir: '/srv/lake',
      partition_by: ['month'],
      compression: 'zstd',
      dir_mode: 0o700,
      file_mode: 0o600,
    })
    expect(c.storage.s3_parquet).toMatchObject({ row_group_size: 5000, validate_partitioning: false })
  })

  it('accepts a numeric mode as is', () => {
    expect(parseConfig({ storage: { local_parquet: { dir_mode: 0o750 } } }).storage.local_parquet.dir_mode).toBe(0o750)
  })
})

describe('environment variable overrides', () => {
  const base = { storage: { s3_parquet: { bucket: 'from-file' } } }
  it.each([
    ['STORAGE_BACKEND', 's3_parquet', (c: ReturnType<typeof parseConfig>) => c.storage.default_backend, 's3_parquet'],
    ['DATA_DIR', '/var/lake', (c: ReturnType<typeof parseConfig>) => c.storage.local_parquet.base_dir, '/var/lake'],
    ['S3_BUCKET', 'from-env', (c: ReturnType<typeof parseConfig>) => c.storage.s3_parquet.bucket, 'from-env'],
    ['S3_PREFIX', 'team/a', (c: ReturnType<typeof parseConfig>) => c.storage.s3_parquet.prefix, 'team/a'],
    ['S3_FORCE_PATH_STYLE', 'true', (c: ReturnType<typeof parseConfig>) => c.storage.s3_parquet.force_path_style, true],
    ['S3_FORCE_PATH_STYLE', '1', (c: ReturnType<typeof parseConfig>) => c.storage.s3_parquet.force_path_style, true],
    [
      'AWS_ENDPOINT_URL',
      'http://127.0.0.1:9000',
      (c: ReturnType<typeof parseConfig>) => c.storage.s3_parquet.endpoint,
      'http://127.0.0.1:9000',
    ],
    ['AWS_REGION', 'eu-west-3', (c: ReturnType<typeof parseConfig>) => c.storage.s3_parquet.region, 'eu-west-3'],
  ] as const)('%s=%s', (name, value, get, want) => {
    expect(get(parseConfig(base, {}))).not.toEqual(want)
    expect(get(parseConfig(base, { [name]: value }))).toEqual(want)
  })

  it('S3_FORCE_PATH_STYLE=false / 0 turn off a config true', () => {
    const on = { storage: { s3_parquet: { force_path_style: true } } }
    expect(parseConfig(on, { S3_FORCE_PATH_STYLE: 'false' }).storage.s3_parquet.force_path_style).toBe(false)
    expect(parseConfig(on, { S3_FORCE_PATH_STYLE: '0' }).storage.s3_parquet.force_path_style).toBe(false)
  })

  it('AWS credentials set the S3 credentials', () => {
    const c = parseConfig({}, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' })
      .storage.s3_parquet
    expect([c.access_key_id, c.secret_access_key, c.session_token]).toEqual(['AKIDEXAMPLE', 'secret', 'token'])
  })

  it('ignores empty and unrelated variables', () => {
    expect(parseConfig({}, { DATA_DIR: '', S3_BUCKET: '', HOME: '/root' })).toEqual(defaultConfig())
  })

  it('a non-boolean S3_FORCE_PATH_STYLE is an error naming the variable', () => {
    const err = configErrorOf(() => parseConfig({}, { S3_FORCE_PATH_STYLE: 'yes' }))
    expect(err.message).toContain(
      "storage.s3_parquet.force_path_style: expected 'true' | 'false' | '1' | '0', got 'yes' (from env S3_FORCE_PATH_STYLE)",
    )
  })

  it('a bad STORAGE_BACKEND or AWS_ENDPOINT_URL is an error naming the variable', () => {
    const issues = issuesOf(() => parseConfig({}, { STORAGE_BACKEND: 'sqlite', AWS_ENDPOINT_URL: 'minio:9000' }))
    expect(issues).toEqual([
      {
        path: 'storage.default_backend',
        message: "expected 'local_parquet' | 's3_parquet' | 'postgres' | 'mongodb', got 'sqlite' (from env STORAGE_BACKEND)",
      },
      { path: 'storage.s3_parquet.endpoint', message: "expected an http(s) URL, got 'minio:9000' (from env AWS_ENDPOINT_URL)" },
    ])
  })

  it('a bad FRIDAY_ENV is an error naming the variable', () => {
    expect(configErrorOf(() => parseConfig({}, { FRIDAY_ENV: 'staging' })).message).toContain(
      "environment: expected 'development' | 'test' | 'production', got 'staging' (from env FRIDAY_ENV)",
    )
  })
})

describe('profiles', () => {
  const file = {
    storage: { gc_grace_period_seconds: 60, local_parquet: { base_dir: './dev-data', compression: 'zstd' } },
    profiles: {
      production: {
        storage: { default_backend: 's3_parquet', s3_parquet: { bucket: 'prod-market-data', prefix: 'lake' } },
      },
      test: { storage: { local_parquet: { base_dir: './test-data' } } },
    },
  }

  it('uses the base when the environment has no profile', () => {
    const c = parseConfig(file)
    expect(c.environment).toBe('development')
    expect(c.storage.default_backend).toBe('local_parquet')
    expect(c.storage.local_parquet.base_dir).toBe('./dev-data')
  })

  it('FRIDAY_ENV=production deep-merges the production profile over the base', () => {
    const c = parseConfig(file, { FRIDAY_ENV: 'production' })
    expect(c.environment).toBe('production')
    expect(c.storage.default_backend).toBe('s3_parquet')
    expect(c.storage.s3_parquet).toMatchObject({ bucket: 'prod-market-data', prefix: 'lake', region: 'us-east-1' })
    // untouched base settings survive the merge
    expect(c.storage.gc_grace_period_seconds).toBe(60)
    expect(c.storage.local_parquet).toMatchObject({ base_dir: './dev-data', compression: 'zstd' })
  })

  it('input.environment selects the profile when FRIDAY_ENV is unset, and FRIDAY_ENV wins over it', () => {
    expect(parseConfig({ ...file, environment: 'test' }).storage.local_parquet).toMatchObject({
      base_dir: './test-data',
      compression: 'zstd',
    })
    expect(parseConfig({ ...file, environment: 'test' }, { FRIDAY_ENV: 'production' }).storage.default_backend).toBe('s3_parquet')
  })

  it('environment variables override the profile', () => {
    const c = parseConfig(file, { FRIDAY_ENV: 'production', S3_BUCKET: 'other-bucket' })
    expect(c.storage.s3_parquet.bucket).toBe('other-bucket')
  })

  it('a profile may supply the bucket that s3_parquet requires', () => {
    const c = parseConfig({
      storage: { default_backend: 's3_parquet' },
      profiles: { development: { storage: { s3_parquet: { bucket: 'dev-bucket' } } } },
    })
    expect(c.storage.s3_parquet.bucket).toBe('dev-bucket')
  })

  it('errors in a profile that is not selected are still reported, at the profile path', () => {
    const issues = issuesOf(() => parseConfig({ profiles: { production: { storage: { s3_parquet: { compression: 'gzip' } } } } }))
    expect(issues).toEqual([
      { path: 'profiles.production.storage.s3_parquet.compression', message: "expected 'snappy' | 'zstd', got 'gzip'" },
    ])
  })

  it('rejects an unknown profile name', () => {
    expect(issuesOf(() => parseConfig({ profiles: { staging: {} } }))).toEqual([
      { path: 'profiles.staging', message: "unknown key, expected one of 'development', 'test', 'production'" },
    ])
  })
})

describe('bad configs name the exact path and what was expected', () => {
  it('bad compression', () => {
    const err = configErrorOf(() => parseConfig({ storage: { local_parquet: { compression: 'lz4' } } }))
    expect(err.message).toBe("invalid configuration: storage.local_parquet.compression: expected 'snappy' | 'zstd', got 'lz4'")
    expect(err.code).toBe('config_error')
    expect(err.details?.issues).toEqual([
      { path: 'storage.local_parquet.compression', message: "expected 'snappy' | 'zstd', got 'lz4'" },
    ])
  })

  it('bad partition_by', () => {
    expect(issuesOf(() => parseConfig({ storage: { s3_parquet: { partition_by: ['date', 'symbol'] } } }))).toEqual([
      {
        path: 'storage.s3_parquet.partition_by',
        message: "expected ['symbol', 'date'] | ['symbol', 'month'] | ['date'] | ['month'] | ['symbol'], got ['date', 'symbol']",
      },
    ])
  })

  it('unknown keys, with the typo path and a suggestion, every one of them', () => {
    expect(
      issuesOf(() =>
        parseConfig({ storage: { local_parquet: { compresion: 'zstd', row_groups: 5 }, defualt_backend: 's3_parquet' } }),
      ),
    ).toEqual([
      { path: 'storage.local_parquet.compresion', message: "unknown key, did you mean 'compression'?" },
      {
        path: 'storage.local_parquet.row_groups',
        message:
          "unknown key, expected one of 'base_dir', 'partition_by', 'compression', 'validate_partitioning', 'row_group_size', 'dir_mode', 'file_mode', 'fsync'",
      },
      { path: 'storage.defualt_backend', message: "unknown key, did you mean 'default_backend'?" },
    ])
  })

  it('missing bucket when s3_parquet is the default backend', () => {
    const err = configErrorOf(() => parseConfig({ storage: { default_backend: 's3_parquet' } }))
    expect(err.details?.issues).toEqual([
      {
        path: 'storage.s3_parquet.bucket',
        message: "required when storage.default_backend is 's3_parquet' (set it in the config or with S3_BUCKET)",
      },
    ])
    // the same rule when the backend comes from the environment
    expect(issuesOf(() => parseConfig({}, { STORAGE_BACKEND: 's3_parquet' })).map((i) => i.path)).toEqual([
      'storage.s3_parquet.bucket',
    ])
  })

  it('negative grace period', () => {
    expect(issuesOf(() => parseConfig({ storage: { gc_grace_period_seconds: -1 } }))).toEqual([
      { path: 'storage.gc_grace_period_seconds', message: 'expected a number >= 0, got -1' },
    ])
  })

  it('wrong types, out-of-range row groups, bad modes and bucket names', () => {
    const issues = issuesOf(() =>
      parseConfig({
        environment: 'prod',
        storage: {
          local_parquet: { validate_partitioning: 'yes', row_group_size: 0, dir_mode: '999' },
          s3_parquet: { bucket: 'My_Bucket', prefix: '/abs', force_path_style: 1 },
        },
      }),
    )
    expect(issues).toEqual([
      { path: 'environment', message: "expected 'development' | 'test' | 'production', got 'prod'" },
      { path: 'storage.local_parquet.validate_partitioning', message: "expected boolean, got 'yes'" },
      { path: 'storage.local_parquet.row_group_size', message: 'expected an integer from 1 to 10000000, got 0' },
      {
        path: 'storage.local_parquet.dir_mode',
        message: "expected an octal mode such as '755' or '0o755' (at most 0o7777), got '999'",
      },
      { path: 'storage.s3_parquet.bucket', message: "expected an S3 bucket name (3-63 of a-z 0-9 . -), got 'My_Bucket'" },
      {
        path: 'storage.s3_parquet.prefix',
        message: "expected a key prefix without leading '/', '..' or control characters, got '/abs'",
      },
      { path: 'storage.s3_parquet.force_path_style', message: 'expected boolean, got 1' },
    ])
  })

  it('a secret key without its access key id (and the reverse)', () => {
    expect(issuesOf(() => parseConfig({}, { AWS_SECRET_ACCESS_KEY: 'secret' }))).toEqual([
      { path: 'storage.s3_parquet.access_key_id', message: 'required when secret_access_key is set' },
    ])
    expect(issuesOf(() => parseConfig({ storage: { s3_parquet: { access_key_id: 'AKID' } } }))).toEqual([
      { path: 'storage.s3_parquet.secret_access_key', message: 'required when access_key_id is set' },
    ])
  })

  it('a config that is not an object', () => {
    expect(configErrorOf(() => parseConfig('local')).message).toBe(
      "invalid configuration: (config): expected an object, got 'local'",
    )
  })
})

describe('backend selection by config only', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it('createStorageWith picks the default backend factory', async () => {
    const { createStorageWith } = await import('../src/config/factory.js')
    const made: string[] = []
    const fake = (name: string) => () => {
      made.push(name)
      return { backend: name, scan: () => [] } as never
    }
    const factories = { local_parquet: fake('local_parquet'), s3_parquet: fake('s3_parquet') }
    createStorageWith(factories, parseConfig({}))
    createStorageWith(factories, parseConfig({}, { STORAGE_BACKEND: 's3_parquet', S3_BUCKET: 'b-1' }))
    expect(made).toEqual(['local_parquet', 's3_parquet'])
  })

  it('a backend missing from the runtime is a ConfigError naming it and the Node/Bun entry point', async () => {
    const { createStorageWith } = await import('../src/config/factory.js')
    const err = configErrorOf(() => createStorageWith({ s3_parquet: () => ({}) as never }, parseConfig({})))
    expect(err.message).toContain("storage backend 'local_parquet' is not available in this runtime")
    expect(err.message).toContain('Node/Bun entry point')
  })

  it('the Web entry refuses local_parquet and the Node entry builds it (needs LakeStorage)', async () => {
    const web = await import('../src/index.js')
    expect(() => web.createStorage({}, {})).toThrow(/Node\/Bun entry point/)

    const node = await import('../src/node.js')
    const dir = await mkdtemp(join(tmpdir(), 'friday-config-'))
    dirs.push(dir)
    const local = node.createStorage({ storage: { local_parquet: { base_dir: dir } } }, {})
    expect(local.backend).toBe('local_parquet')
    await local.close()
  })

  it('the same entry returns s3_parquet when only the config changes (needs LakeStorage)', async () => {
    const node = await import('../src/node.js')
    const config = {
      storage: { default_backend: 's3_parquet', s3_parquet: { bucket: 'market-data', endpoint: 'http://127.0.0.1:9' } },
    }
    // Building the storage makes no request: the S3 client is created lazily.
    const s3 = node.createStorage(config, {})
    expect(s3.backend).toBe('s3_parquet')
    await s3.close()

    const web = await import('../src/index.js')
    const fromWeb = web.createStorage(config, {})
    expect(fromWeb.backend).toBe('s3_parquet')
    await fromWeb.close()
  })

  it('maps the lake settings of a section to LakeOptions (gc grace in ms)', async () => {
    const { lakeOptionsFromConfig } = await import('../src/config/factory.js')
    const config = parseConfig({
      storage: {
        gc_grace_period_seconds: 90,
        s3_parquet: { partition_by: ['symbol', 'month'], compression: 'zstd', row_group_size: 500 },
        file_rotation: { enabled: true, max_file_size_mb: 0.5, compress_old_files: false, row_retention_days: 2 },
      },
    })
    expect(lakeOptionsFromConfig(config.storage.s3_parquet, config)).toEqual({
      partitionBy: ['symbol', 'month'],
      compression: 'zstd',
      rowGroupSize: 500,
      validatePartitioning: true,
      gcGraceMs: 90_000,
      rotation: {
        enabled: true,
        strategy: 'size_based',
        maxFileBytes: 524_288,
        maxFileAgeMs: 86_400_000,
        maxFiles: 10,
        archiveCodec: 'none',
        archiveRetentionMs: 30 * 86_400_000,
        rowRetentionMs: 2 * 86_400_000,
      },
      limits: { maxColumnsPerDataset: 1024, maxColumnsPerRequest: 1024, maxPartitionsPerWrite: 5000, maxBodyReadSeconds: 60 },
    })
  })

  it('getDefaultStorage() is one cached local lake honouring DATA_DIR (needs LakeStorage)', async () => {
    const node = await import('../src/node.js')
    const dir = await mkdtemp(join(tmpdir(), 'friday-default-'))
    dirs.push(dir)
    const saved = {
      DATA_DIR: process.env.DATA_DIR,
      STORAGE_BACKEND: process.env.STORAGE_BACKEND,
      FRIDAY_ENV: process.env.FRIDAY_ENV,
    }
    process.env.DATA_DIR = dir
    delete process.env.STORAGE_BACKEND
    delete process.env.FRIDAY_ENV
    try {
      const storage = node.getDefaultStorage()
      expect(storage.backend).toBe('local_parquet')
      expect(node.getDefaultStorage()).toBe(storage)
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key]
        else process.env[key] = value
      }
    }
  })
})

describe('database backends', () => {
  it('DATABASE_URL, POSTGRES_DRIVER, MONGODB_URL and MONGODB_DB fill their sections', () => {
    const c = parseConfig(
      {},
      {
        STORAGE_BACKEND: 'postgres',
        DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/market',
        POSTGRES_DRIVER: 'neon',
        MONGODB_URL: 'mongodb://127.0.0.1:27017',
        MONGODB_DB: 'bars',
      },
    )
    expect(c.storage.default_backend).toBe('postgres')
    expect(c.storage.postgres).toEqual({
      url: 'postgres://u:p@127.0.0.1:5432/market',
      driver: 'neon',
      schema: 'public',
      pool_max: 10,
      partition_by: ['symbol', 'date'],
    })
    expect(c.storage.mongodb).toEqual({ url: 'mongodb://127.0.0.1:27017', database: 'bars', partition_by: ['symbol', 'date'] })
  })

  it("POSTGRES_WS_PROXY, POSTGRES_WS_SECURE and POSTGRES_PIPELINE_CONNECT set the neon driver's WebSocket, and reach its pool", () => {
    const c = parseConfig(
      {},
      {
        STORAGE_BACKEND: 'postgres',
        DATABASE_URL: 'postgres://u:p@10.0.0.5:5432/market',
        POSTGRES_WS_PROXY: 'relay.internal:8080/v1',
        POSTGRES_WS_SECURE: 'false',
        POSTGRES_PIPELINE_CONNECT: 'false',
      },
    )
    expect(c.storage.postgres).toMatchObject({ ws_proxy: 'relay.internal:8080/v1', ws_secure: false, pipeline_connect: false })
    expect(neonOptionsFromConfig(c.storage.postgres)).toEqual({
      wsProxy: 'relay.internal:8080/v1',
      useSecureWebSocket: false,
      pipelineConnect: false,
    })
    // unset: Neon's defaults (its own endpoint, wss:, pipelined start-up)
    expect(neonOptionsFromConfig(parseConfig({}, { DATABASE_URL: 'postgres://u:p@h/db' }).storage.postgres)).toEqual({})
    expect(
      neonOptionsFromConfig(
        parseConfig({ storage: { postgres: { url: 'postgres://u:p@h/db', pipeline_connect: true } } }, {}).storage.postgres,
      ),
    ).toEqual({})
  })

  it('a ws_proxy with a scheme, a query or spaces is refused naming the setting', () => {
    for (const bad of ['ws://relay:8080/v1', 'relay:8080/v1?address=x', 'relay 8080', 'relay:99999999', '']) {
      const issues = issuesOf(() => parseConfig({ storage: { postgres: { url: 'postgres://u:p@h/db', ws_proxy: bad } } }, {}))
      expect(
        issues.map((i) => i.path),
        bad,
      ).toEqual(['storage.postgres.ws_proxy'])
    }
    expect(
      issuesOf(() => parseConfig({}, { DATABASE_URL: 'postgres://u:p@h/db', POSTGRES_WS_SECURE: 'maybe' })).map((i) => i.path),
    ).toEqual(['storage.postgres.ws_secure'])
  })

  it('choosing a database backend without its URL names the missing setting and its variable', () => {
    expect(issuesOf(() => parseConfig({ storage: { default_backend: 'postgres' } }, {}))).toEqual([
      {
        path: 'storage.postgres.url',
        message: "required when storage.default_backend is 'postgres' (set it in the config or with DATABASE_URL)",
      },
    ])
    expect(issuesOf(() => parseConfig({}, { STORAGE_BACKEND: 'mongodb' }))).toEqual([
      {
        path: 'storage.mongodb.url',
        message: "required when storage.default_backend is 'mongodb' (set it in the config or with MONGODB_URL)",
      },
    ])
  })

  it('a URL of the wrong kind or an unknown driver is rejected with the path and what was expected', () => {
    const issues = issuesOf(() =>
      parseConfig({ storage: { postgres: { url: 'mysql://x', driver: 'odbc' }, mongodb: { url: 'http://x' } } }, {}),
    )
    expect(issues.map((i) => i.path).sort()).toEqual(['storage.mongodb.url', 'storage.postgres.driver', 'storage.postgres.url'])
    expect(issues.find((i) => i.path === 'storage.postgres.url')?.message).toContain(
      'expected a postgres:// or postgresql:// URL',
    )
    expect(issues.find((i) => i.path === 'storage.postgres.driver')?.message).toContain("expected 'auto' | 'neon' | 'pg'")
  })
})

describe('switching to a database backend is configuration only', () => {
  it('the Node entry builds postgres and mongodb storages from env; the Web entry refuses mongodb with a hint', async () => {
    const node = await import('../src/node.js')
    const web = await import('../src/index.js')
    // both clients connect lazily: building the storage touches no server
    const pg = node.createStorage({}, { STORAGE_BACKEND: 'postgres', DATABASE_URL: 'postgres://u@127.0.0.1:1/db' })
    expect(pg.backend).toBe('postgres')
    await pg.close()
    const mongo = node.createStorage({}, { STORAGE_BACKEND: 'mongodb', MONGODB_URL: 'mongodb://127.0.0.1:1' })
    expect(mongo.backend).toBe('mongodb')
    await mongo.close()
    expect(() => web.createStorage({}, { STORAGE_BACKEND: 'mongodb', MONGODB_URL: 'mongodb://127.0.0.1:1' })).toThrow(
      /storage backend 'mongodb' is not available in this runtime: the MongoDB driver needs Node or Bun/,
    )
    expect(web.createStorage({}, { STORAGE_BACKEND: 'postgres', DATABASE_URL: 'postgres://u@127.0.0.1:1/db' }).backend).toBe(
      'postgres',
    )
  })
})
