/**
 * Turns what a user wrote (a config object, a profile, environment variables) into one
 * validated `FridayConfig`, or a `ConfigError` listing every problem by its dot path.
 * Web standards only: the caller passes the environment in (e.g. `process.env`, Worker `env`).
 */

import * as v from 'valibot'
import { editDistance } from '../core/edit-distance.js'
import { ConfigError } from '../core/errors.js'
import {
  ConfigFileSchema,
  type ConfigLayer,
  ConfigSchema,
  ConfigSchemaBoundStore,
  ENVIRONMENTS,
  type Environment,
  type FridayConfig,
  LayerSchema,
  showValue,
} from './schema.js'

export type Env = Record<string, string | undefined>

export interface ConfigIssue {
  /** Dot path of the offending setting, e.g. `storage.local_parquet.compression` (empty: the whole config). */
  path: string
  message: string
}

/** Environment variables that override one setting each. Empty values count as unset. */
const ENV_OVERRIDES: { name: string; path: string[]; boolean?: true; number?: true }[] = [
  { name: 'STORAGE_BACKEND', path: ['storage', 'default_backend'] },
  { name: 'DATA_DIR', path: ['storage', 'local_parquet', 'base_dir'] },
  { name: 'S3_BUCKET', path: ['storage', 's3_parquet', 'bucket'] },
  { name: 'S3_PREFIX', path: ['storage', 's3_parquet', 'prefix'] },
  { name: 'S3_FORCE_PATH_STYLE', path: ['storage', 's3_parquet', 'force_path_style'], boolean: true },
  { name: 'AWS_ENDPOINT_URL', path: ['storage', 's3_parquet', 'endpoint'] },
  { name: 'AWS_REGION', path: ['storage', 's3_parquet', 'region'] },
  { name: 'AWS_ACCESS_KEY_ID', path: ['storage', 's3_parquet', 'access_key_id'] },
  { name: 'AWS_SECRET_ACCESS_KEY', path: ['storage', 's3_parquet', 'secret_access_key'] },
  { name: 'AWS_SESSION_TOKEN', path: ['storage', 's3_parquet', 'session_token'] },
  { name: 'DATABASE_URL', path: ['storage', 'postgres', 'url'] },
  { name: 'POSTGRES_DRIVER', path: ['storage', 'postgres', 'driver'] },
  { name: 'POSTGRES_WS_PROXY', path: ['storage', 'postgres', 'ws_proxy'] },
  { name: 'POSTGRES_WS_SECURE', path: ['storage', 'postgres', 'ws_secure'], boolean: true },
  { name: 'POSTGRES_PIPELINE_CONNECT', path: ['storage', 'postgres', 'pipeline_connect'], boolean: true },
  { name: 'MONGODB_URL', path: ['storage', 'mongodb', 'url'] },
  { name: 'MONGODB_DB', path: ['storage', 'mongodb', 'database'] },
  { name: 'METADATA_LOGGING_ENABLED', path: ['storage', 'metadata_logging', 'enabled'], boolean: true },
  { name: 'METADATA_LOGGING_RETENTION_DAYS', path: ['storage', 'metadata_logging', 'retention_days'], number: true },
  { name: 'FILE_ROTATION_ENABLED', path: ['storage', 'file_rotation', 'enabled'], boolean: true },
  { name: 'READ_CACHE_ENABLED', path: ['storage', 'read_cache', 'enabled'], boolean: true },
  { name: 'READ_CACHE_TTL_SECONDS', path: ['storage', 'read_cache', 'ttl_seconds'], number: true },
  { name: 'READ_CACHE_MAX_MB', path: ['storage', 'read_cache', 'max_mb'], number: true },
  { name: 'RETRIEVAL_BATCH_SIZE', path: ['storage', 'retrieval', 'batch_size'], number: true },
  { name: 'RETRIEVAL_PARALLEL_LOADING', path: ['storage', 'retrieval', 'parallel_loading'], boolean: true },
  { name: 'RETRIEVAL_MAX_WORKERS', path: ['storage', 'retrieval', 'max_workers'], number: true },
  { name: 'FILE_ROTATION_STRATEGY', path: ['storage', 'file_rotation', 'strategy'] },
  { name: 'FILE_ROTATION_MAX_FILES', path: ['storage', 'file_rotation', 'max_files'], number: true },
  { name: 'FILE_ROTATION_MAX_FILE_SIZE_MB', path: ['storage', 'file_rotation', 'max_file_size_mb'], number: true },
  { name: 'FILE_ROTATION_MAX_FILE_AGE_HOURS', path: ['storage', 'file_rotation', 'max_file_age_hours'], number: true },
  { name: 'FILE_ROTATION_ARCHIVE_CODEC', path: ['storage', 'file_rotation', 'archive_codec'] },
  { name: 'ARCHIVE_RETENTION_DAYS', path: ['storage', 'file_rotation', 'archive_retention_days'], number: true },
  { name: 'ROW_RETENTION_DAYS', path: ['storage', 'file_rotation', 'row_retention_days'], number: true },
]

/**
 * Validates `input` (a parsed config file; default: all defaults) and returns the effective
 * config: (a) environment from `FRIDAY_ENV`, else `input.environment`, else `development`;
 * (b) that environment's profile deep-merged over the base; (c) environment-variable
 * overrides; (d) validation, including cross-field rules. Throws `ConfigError` listing every
 * issue as `<dot.path>: expected ..., got ...`; `details.issues` holds `{ path, message }`.
 */
export function parseConfig(
  input: unknown = {},
  env: Env = {},
  /** `storeBound`: the lake's object store is given otherwise (an R2 binding), so `s3_parquet` needs no bucket. */
  options: { storeBound?: boolean } = {},
): FridayConfig {
  const issues: ConfigIssue[] = []
  const file = validate(ConfigFileSchema, input, issues)

  const envName = pickEnvironment(env, issues)
  const { layer: rawEnvLayer, sources } = envLayer(env, issues)
  const envLayerValue = validate(LayerSchema, rawEnvLayer, issues, sources)
  if (!file || !envLayerValue || issues.length > 0) throw configError(issues)

  const environment = envName ?? file.environment
  const profile = file.profiles?.[environment] ?? {}
  const merged = deepMerge(deepMerge({ ...file, environment }, profile), envLayerValue)
  const config = validate(options.storeBound ? ConfigSchemaBoundStore : ConfigSchema, merged, issues, sources)
  if (!config) throw configError(issues)
  return config
}

/** The configuration with every default and no environment overrides. */
export function defaultConfig(): FridayConfig {
  return parseConfig({}, {})
}

function pickEnvironment(env: Env, issues: ConfigIssue[]): Environment | undefined {
  const value = env.FRIDAY_ENV
  if (!value) return undefined
  if ((ENVIRONMENTS as readonly string[]).includes(value)) return value as Environment
  issues.push({
    path: 'environment',
    message: `expected ${ENVIRONMENTS.map(showValue).join(' | ')}, got ${showValue(value)} (from env FRIDAY_ENV)`,
  })
  return undefined
}

/** The overrides as a raw layer, and which variable set which dot path. */
function envLayer(env: Env, issues: ConfigIssue[]): { layer: Record<string, unknown>; sources: Map<string, string> } {
  const layer: Record<string, unknown> = {}
  const sources = new Map<string, string>()
  for (const { name, path, boolean, number } of ENV_OVERRIDES) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    const dotPath = path.join('.')
    sources.set(dotPath, name)
    let value: string | boolean | number = raw
    if (number) {
      const n = Number(raw.trim())
      if (raw.trim() === '' || !Number.isFinite(n)) {
        issues.push({ path: dotPath, message: `expected a number, got ${showValue(raw)} (from env ${name})` })
        continue
      }
      value = n
    } else if (boolean) {
      const lower = raw.trim().toLowerCase()
      if (lower === 'true' || lower === '1') value = true
      else if (lower === 'false' || lower === '0') value = false
      else {
        issues.push({ path: dotPath, message: `expected 'true' | 'false' | '1' | '0', got ${showValue(raw)} (from env ${name})` })
        continue
      }
    }
    setPath(layer, path, value)
  }
  return { layer, sources }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    node[key] ??= {}
    node = node[key] as Record<string, unknown>
  }
  node[path[path.length - 1]] = value
}

/** Parses with valibot; on failure appends formatted issues (naming env variables in `sources`). */
function validate<T>(
  schema: v.GenericSchema<unknown, T>,
  input: unknown,
  issues: ConfigIssue[],
  sources?: Map<string, string>,
): T | undefined {
  const unknown = unknownKeys(schema, input, [])
  const result = v.safeParse(schema, input, { message: defaultMessage })
  for (const issue of result.issues ?? []) {
    if (issue.type === 'strict_object' && issue.expected === 'never') continue // reported by unknownKeys, all of them
    const path = v.getDotPath(issue) ?? ''
    const source = sources?.get(path)
    issues.push({ path, message: source ? `${issue.message} (from env ${source})` : issue.message })
  }
  issues.push(...unknown)
  return result.success && unknown.length === 0 ? result.output : undefined
}

/** Message for issues whose schema has no custom one: `expected X, got Y`. */
function defaultMessage(issue: v.BaseIssue<unknown>): string {
  if (issue.type === 'strict_object' && issue.kind === 'schema' && issue.input === undefined && issue.path?.length)
    return 'required'
  const expected = (issue.expected ?? 'a valid value').replace(/^\((.*)\)$/, '$1').replace(/"([^"]*)"/g, "'$1'")
  return `expected ${expected === 'Object' ? 'an object' : expected}, got ${showValue(issue.input)}`
}

type SchemaShape = { type: string; wrapped?: SchemaShape; entries?: Record<string, SchemaShape> }

/** Every key not in its strict object (valibot reports only the first per object). */
function unknownKeys(schema: unknown, value: unknown, path: string[]): ConfigIssue[] {
  let s = schema as SchemaShape
  while (s.type === 'optional' && s.wrapped) s = s.wrapped
  if (s.type !== 'strict_object' || !s.entries || !isPlainObject(value)) return []
  const allowed = Object.keys(s.entries)
  const issues: ConfigIssue[] = []
  for (const [key, child] of Object.entries(value)) {
    if (Object.hasOwn(s.entries, key)) {
      issues.push(...unknownKeys(s.entries[key], child, [...path, key]))
      continue
    }
    const guess = closest(key, allowed)
    issues.push({
      path: [...path, key].join('.'),
      message: guess
        ? `unknown key, did you mean '${guess}'?`
        : `unknown key, expected one of ${allowed.map(showValue).join(', ')}`,
    })
  }
  return issues
}

/** The allowed key within a small edit distance of `key`, if any. */
function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate)
    if (d < bestDistance) [best, bestDistance] = [candidate, d]
  }
  return best
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Objects merge key by key; arrays and scalars from `over` replace; `undefined` keeps the base. */
function deepMerge<T>(base: T, over: ConfigLayer | Record<string, unknown>): T {
  if (!isPlainObject(base)) return base
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue
    out[key] = isPlainObject(value) && isPlainObject(out[key]) ? deepMerge(out[key], value) : value
  }
  return out as T
}

function configError(issues: ConfigIssue[]): ConfigError {
  const lines = issues.map((i) => `${i.path || '(config)'}: ${i.message}`)
  return new ConfigError(`invalid configuration: ${lines.join('; ')}`, issues)
}
