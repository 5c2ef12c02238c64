/**
 * A backend built the way users get it: through the config-driven `createStorageWith`
 * (`src/config/factory.ts`), which puts the read cache and the op log (both on by default) in
 * front of the backend. The conformance suite runs on it so both wrappers meet every case.
 */

import type { BackendFactory } from '../../src/config/factory.js'
import { createStorageWith } from '../../src/config/factory.js'
import { parseConfig } from '../../src/config/load.js'
import type { DataStorage } from '../../src/core/types.js'

/**
 * `factory` under `createStorageWith` with `storage` as the config's `storage` section; throws
 * unless the result carries both wrappers (so a config change that turned one off fails here).
 */
export function configuredStorage(
  backend: 'postgres' | 'mongodb',
  factory: BackendFactory,
  storage: Record<string, unknown>,
): DataStorage {
  const config = parseConfig({ storage: { default_backend: backend, ...storage } }, {})
  const s = createStorageWith({ [backend]: factory }, config)
  if (!s.readCache || !s.oplog) throw new Error(`createStorageWith(${backend}) should put the read cache and the op log in front`)
  return s
}
