/**
 * Node-only: the optional peer dependencies (database drivers, native Snappy), loaded at first
 * use instead of at import, so `friday-market-data/node` works without the ones a deployment
 * does not use. A missing one is a `ConfigError` that says what to install.
 */

import { createRequire } from 'node:module'
import { ConfigError } from '../../core/errors.js'

/** The optional peer dependencies and the versions this package is tested with (package.json `peerDependencies`). */
export const OPTIONAL_PACKAGES = { pg: '8.23.1', mongodb: '7.9.0', ws: '8.23.0', snappy: '7.4.3' } as const

export type OptionalPackage = keyof typeof OPTIONAL_PACKAGES

const require = createRequire(import.meta.url)
const loaded = new Map<OptionalPackage, unknown>()

/** True when `err` says `name` itself (not something it imports) cannot be found. */
function isMissing(err: unknown, name: string): boolean {
  const e = err as { code?: string; message?: string }
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${name}'`)
}

/**
 * The module `name`, loaded once (CommonJS `require`, so callers stay synchronous). When it is not
 * installed: `ConfigError` "<neededBy> needs the optional package <name>: npm install <name>@<version>",
 * with `path` as the config field to blame (default `storage.default_backend`).
 */
export function requireOptional<T>(name: OptionalPackage, neededBy: string, path = 'storage.default_backend'): T {
  if (loaded.has(name)) return loaded.get(name) as T
  let mod: T
  try {
    mod = require(name) as T
  } catch (err) {
    if (!isMissing(err, name)) throw err
    const message = `${neededBy} needs the optional package ${name}: npm install ${name}@${OPTIONAL_PACKAGES[name]}`
    throw new ConfigError(message, [{ path, message }])
  }
  loaded.set(name, mod)
  return mod
}
