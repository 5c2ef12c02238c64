/**
 * HTTP service settings from environment variables (`API_TOKENS`, `CORS_ORIGINS`,
 * `MAX_BODY_BYTES`, `ALLOWED_HOSTS`, `PUBLIC_READS`, `TRAINING_MAX_*`), validated once with
 * valibot; a bad value is a `ConfigError` naming the variable. `checkDeployment` is the startup
 * check of the entries: no weak tokens, no CORS on an open server.
 */

import * as v from 'valibot'
import { ConfigError } from '../core/errors.js'
import type { TrainingLimits } from '../training/export.js'
import type { ApiToken, AppAccessOptions } from './app-types.js'

const SCOPES = ['read', 'write', 'admin'] as const

const ScopeSchema = v.picklist(SCOPES, (issue) => `unknown scope ${JSON.stringify(issue.input)}: expected read, write or admin`)

const TokenSchema = v.pipe(
  v.string(),
  v.minLength(1, 'the token is empty'),
  v.regex(/^[\x21-\x7e]+$/, 'the token must be printable ASCII without spaces'),
)

/** A token shown in an error: enough to find the entry, not enough to use it. */
function mask(token: string): string {
  return token.length <= 4 ? '****' : `${token.slice(0, 3)}…`
}

/**
 * API_TOKENS="ingest-secret=write,train-secret=read,ops-secret=admin" (token=scope+scope...);
 * admin implies read and write. Entries are comma-separated; the scopes follow the last `=` (so a
 * base64 token may end in `=`). Bad syntax -> ConfigError naming API_TOKENS and the entry (its
 * position and the token's first characters only, so logs do not leak secrets).
 */
export function parseApiTokens(value: string | undefined): ApiToken[] {
  if (value === undefined || value.trim() === '') return []
  const tokens: ApiToken[] = []
  const seen = new Set<string>()
  const issues: { path: string; message: string }[] = []
  value.split(',').forEach((raw, index) => {
    const entry = raw.trim()
    const path = `API_TOKENS[${index}]`
    const eq = entry.lastIndexOf('=')
    if (eq <= 0) {
      issues.push({
        path,
        message: `expected token=scope(+scope), got ${entry === '' ? 'an empty entry' : `'${mask(entry)}' without '=scope'`}`,
      })
      return
    }
    const token = entry.slice(0, eq)
    const where = `'${mask(token)}=${entry.slice(eq + 1)}'`
    const t = v.safeParse(TokenSchema, token)
    if (!t.success) {
      issues.push({ path, message: `${where}: ${t.issues[0].message}` })
      return
    }
    const scopes = v.safeParse(v.array(ScopeSchema), entry.slice(eq + 1).split('+'))
    if (!scopes.success) {
      issues.push({ path, message: `${where}: ${scopes.issues[0].message}` })
      return
    }
    if (seen.has(token)) {
      issues.push({ path, message: `${where}: the same token is listed twice` })
      return
    }
    seen.add(token)
    tokens.push({ token, scopes: [...new Set(scopes.output)] })
  })
  if (issues.length) {
    throw new ConfigError(`invalid API_TOKENS: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues)
  }
  return tokens
}

const OriginSchema = v.pipe(
  v.string(),
  v.regex(
    /^(\*|https?:\/\/[^/\s,]+)$/,
    (issue) => `expected '*' or an origin like https://app.example.com, got ${JSON.stringify(issue.input)}`,
  ),
)

/** `*` or a comma list of origins. */
const CorsOriginsSchema = v.pipe(
  v.string(),
  v.transform((s) => s.split(',').map((o) => o.trim())),
  v.array(OriginSchema),
  v.check((list) => !list.includes('*') || list.length === 1, "'*' cannot be combined with other origins"),
)

const MaxBodyBytesSchema = v.pipe(
  v.string(),
  v.regex(/^\d+$/, (issue) => `expected a positive integer number of bytes, got ${JSON.stringify(issue.input)}`),
  v.transform(Number),
  v.minValue(1, 'must be at least 1'),
  v.safeInteger('must be a safe integer'),
)

const PositiveIntSchema = v.pipe(
  v.string(),
  v.regex(/^\d+$/, (issue) => `expected a positive integer, got ${JSON.stringify(issue.input)}`),
  v.transform(Number),
  v.minValue(1, 'must be at least 1'),
  v.safeInteger('must be a safe integer'),
)

const BooleanSchema = v.picklist(['true', 'false'], (issue) => `expected true or false, got ${JSON.stringify(issue.input)}`)

/** Host names (no port, no scheme) the open local server also answers to, besides the loopback names. */
const AllowedHostsSchema = v.pipe(
  v.string(),
  v.transform((s) => s.split(',').map((h) => h.trim().toLowerCase())),
  v.array(
    v.pipe(
      v.string(),
      v.regex(
        /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$|^\d{1,3}(\.\d{1,3}){3}$|^\[[0-9a-f:.]+\]$/,
        (issue) => `expected host names like friday.internal (no scheme, no port), got ${JSON.stringify(issue.input)}`,
      ),
    ),
  ),
)

/** Bounds on the training-set routes (`TRAINING_MAX_*`, `TRAINING_CACHE_BYTES`): the export's limits (`src/training/export.ts`). */
export type { TrainingLimits }

export const DEFAULT_TRAINING_LIMITS: TrainingLimits = {
  maxLookback: 2048,
  maxSymbols: 5000,
  maxBytes: 4 * 1024 ** 3,
  cacheBytes: 256 * 1024 ** 2,
  cacheTtlMs: 10 * 60_000,
}

/** The options `httpOptionsFromEnv` gives (each only when its variable is set, `tokens` always). */
export type HttpEnvOptions = Pick<AppAccessOptions, 'tokens' | 'cors' | 'maxBodyBytes' | 'allowedHosts' | 'publicReads'> & {
  training?: Partial<TrainingLimits>
}

/** The shortest token a server accepts at startup (`checkDeployment`). */
export const MIN_TOKEN_LENGTH = 16
/** The fewest distinct characters a token must have (`aaaaaaaaaaaaaaaa` is 16 characters, and weak). */
export const MIN_TOKEN_DISTINCT_CHARS = 8

/** Why `token` is too weak to guard a server, or null. */
export function weakTokenProblem(token: string): string | null {
  if (token.length < MIN_TOKEN_LENGTH) return `shorter than ${MIN_TOKEN_LENGTH} characters`
  if (new Set(token).size < MIN_TOKEN_DISTINCT_CHARS) return `fewer than ${MIN_TOKEN_DISTINCT_CHARS} distinct characters`
  return null
}

/**
 * The startup check of a server entry (`local`: the Node/Bun server; `worker`: the Worker), a
 * `ConfigError` naming the setting:
 * - every token is at least `MIN_TOKEN_LENGTH` characters with `MIN_TOKEN_DISTINCT_CHARS` distinct
 *   ones (generate one with `openssl rand -hex 24`);
 * - without tokens, CORS is refused: on the local server an open API must not be reachable from
 *   other origins' pages; on the Worker CORS needs tokens or `PUBLIC_READS=true`.
 */
export function checkDeployment(http: HttpEnvOptions, runtime: 'local' | 'worker'): void {
  const issues: { path: string; message: string }[] = []
  ;(http.tokens ?? []).forEach((t, index) => {
    const problem = weakTokenProblem(t.token)
    if (problem)
      issues.push({
        path: `API_TOKENS[${index}]`,
        message: `'${mask(t.token)}' is too weak: ${problem} (generate one with: openssl rand -hex 24)`,
      })
  })
  const open = !http.tokens?.length
  if (open && http.cors && (runtime === 'local' || !http.publicReads)) {
    issues.push({
      path: 'CORS_ORIGINS',
      message:
        runtime === 'local'
          ? 'CORS cannot be enabled without API_TOKENS: the open API would be usable from any web page (set API_TOKENS or unset CORS_ORIGINS)'
          : 'CORS needs API_TOKENS or PUBLIC_READS=true: without either the Worker serves nothing',
    })
  }
  if (issues.length) {
    throw new ConfigError(`invalid ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues)
  }
}

function parseVar<S extends v.GenericSchema<string, unknown>>(name: string, schema: S, value: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value, { abortPipeEarly: true })
  if (result.success) return result.output
  const issue = result.issues[0]
  throw new ConfigError(`invalid ${name}: ${issue.message}`, [{ path: name, message: issue.message }])
}

/**
 * API_TOKENS, CORS_ORIGINS (comma list or *), MAX_BODY_BYTES (integer), ALLOWED_HOSTS (comma
 * list of host names), PUBLIC_READS (true/false), TRAINING_MAX_LOOKBACK, TRAINING_MAX_SYMBOLS,
 * TRAINING_MAX_BYTES, TRAINING_CACHE_BYTES, TRAINING_CACHE_TTL_MS from an env object, validated
 * with valibot (ConfigError naming the variable). Unset or empty variables are omitted (no CORS,
 * the default limits) except `tokens`, which is always returned.
 */
export function httpOptionsFromEnv(env: Record<string, string | undefined>): HttpEnvOptions {
  const out: HttpEnvOptions = { tokens: parseApiTokens(env.API_TOKENS) }
  const origins = env.CORS_ORIGINS?.trim()
  if (origins) {
    out.cors = { origins: parseVar('CORS_ORIGINS', CorsOriginsSchema, origins) }
  }
  const max = env.MAX_BODY_BYTES?.trim()
  if (max) out.maxBodyBytes = parseVar('MAX_BODY_BYTES', MaxBodyBytesSchema, max)
  const hosts = env.ALLOWED_HOSTS?.trim()
  if (hosts) out.allowedHosts = parseVar('ALLOWED_HOSTS', AllowedHostsSchema, hosts)
  const publicReads = env.PUBLIC_READS?.trim()
  if (publicReads) out.publicReads = parseVar('PUBLIC_READS', BooleanSchema, publicReads) === 'true'
  const training: Partial<TrainingLimits> = {}
  const limits = [
    ['TRAINING_MAX_LOOKBACK', 'maxLookback'],
    ['TRAINING_MAX_SYMBOLS', 'maxSymbols'],
    ['TRAINING_MAX_BYTES', 'maxBytes'],
    ['TRAINING_CACHE_TTL_MS', 'cacheTtlMs'],
  ] as const
  for (const [name, key] of limits) {
    const value = env[name]?.trim()
    if (value) training[key] = parseVar(name, PositiveIntSchema, value)
  }
  const cacheBytes = env.TRAINING_CACHE_BYTES?.trim()
  if (cacheBytes)
    training.cacheBytes = parseVar(
      'TRAINING_CACHE_BYTES',
      v.pipe(
        v.string(),
        v.regex(/^\d+$/, (issue) => `expected a number of bytes (0: no cache), got ${JSON.stringify(issue.input)}`),
        v.transform(Number),
        v.safeInteger('must be a safe integer'),
      ),
      cacheBytes,
    )
  if (Object.keys(training).length) out.training = training
  return out
}
