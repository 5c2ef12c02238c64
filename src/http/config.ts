/**
 * HTTP service settings from environment variables (`API_TOKENS`, `CORS_ORIGINS`,
 * `MAX_BODY_BYTES`), validated once with valibot; a bad value is a `ConfigError` naming the variable.
 */

import * as v from 'valibot'
import { ConfigError } from '../errors.js'
import type { ApiToken, AppOptions } from './app.js'

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

function parseVar<S extends v.GenericSchema<string, unknown>>(name: string, schema: S, value: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value, { abortPipeEarly: true })
  if (result.success) return result.output
  const issue = result.issues[0]
  throw new ConfigError(`invalid ${name}: ${issue.message}`, [{ path: name, message: issue.message }])
}

/**
 * API_TOKENS, CORS_ORIGINS (comma list or *), MAX_BODY_BYTES (integer) from an env object,
 * validated with valibot (ConfigError naming the variable). Unset or empty variables are
 * omitted (no CORS, the default body limit) except `tokens`, which is always returned.
 */
export function httpOptionsFromEnv(
  env: Record<string, string | undefined>,
): Pick<AppOptions, 'tokens' | 'cors' | 'maxBodyBytes'> {
  const out: Pick<AppOptions, 'tokens' | 'cors' | 'maxBodyBytes'> = { tokens: parseApiTokens(env.API_TOKENS) }
  const origins = env.CORS_ORIGINS?.trim()
  if (origins) {
    out.cors = { origins: parseVar('CORS_ORIGINS', CorsOriginsSchema, origins) }
  }
  const max = env.MAX_BODY_BYTES?.trim()
  if (max) out.maxBodyBytes = parseVar('MAX_BODY_BYTES', MaxBodyBytesSchema, max)
  return out
}
