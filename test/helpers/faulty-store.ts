/**
 * A fault-injecting `ObjectStore` wrapper (a test double around a REAL store: local disk or
 * radosgw). Rules match one kind of call by key and inject a fault at an exact point:
 * - `fail-before`: throw without calling the store (the request never reached it);
 * - `fail-after`: call the store, then throw (the request landed, its answer was lost);
 * - `missing`: answer `null` without calling (a get or head of an object that vanished);
 * - `gate`: wait for `release()` before calling the store (a stalled request);
 * - `hook`: run `fn` before or after the real call (e.g. another writer commits meanwhile).
 * Each rule fires `times` times (default 1), counting only matching calls.
 */

import { StoreError } from '../../src/core/errors.js'
import type { ByteRange, ObjectStore, PutOptions } from '../../src/stores/types.js'

export type Op = 'get' | 'head' | 'put' | 'delete' | 'list'

export interface Rule {
  op: Op
  /** Which calls: by key (for delete: any of the keys; for list: the prefix). Default all. */
  match?: (key: string, options?: PutOptions) => boolean
  action: 'fail-before' | 'fail-after' | 'missing' | 'gate' | 'hook'
  times?: number
  /** For `hook`: runs before (`when: 'before'`, default) or after the real call; for `fail-after`: after the call, before the throw. */
  fn?: (key: string) => Promise<void> | void
  when?: 'before' | 'after'
}

export interface Gate {
  /** Resolves when a call reached the gate. */
  reached: Promise<void>
  release(): void
}

export interface FaultyStore extends ObjectStore {
  /** Adds a rule; for `gate` rules returns the gate. */
  inject(rule: Rule): Gate
  clear(): void
  /** Calls seen, in order. */
  readonly calls: { op: Op; key: string }[]
  /** How often each rule fired. */
  fired(rule: Rule): number
}

interface Armed {
  rule: Rule
  left: number
  fired: number
  gate?: { reached: () => void; released: Promise<void>; gate: Gate }
}

export function faultyStore(inner: ObjectStore): FaultyStore {
  const rules: Armed[] = []
  const calls: { op: Op; key: string }[] = []

  function take(op: Op, keys: string[], options?: PutOptions): Armed | undefined {
    for (const a of rules) {
      if (a.rule.op !== op || a.left <= 0) continue
      if (a.rule.match && !keys.some((k) => a.rule.match!(k, options))) continue
      a.left--
      a.fired++
      return a
    }
    return undefined
  }

  async function around<T>(op: Op, keys: string[], call: () => Promise<T>, options?: PutOptions): Promise<T> {
    for (const k of keys) calls.push({ op, key: k })
    const a = take(op, keys, options)
    if (!a) return call()
    const what = `injected fault: ${op} ${keys[0] ?? ''}`
    switch (a.rule.action) {
      case 'fail-before':
        throw new StoreError(`${what} (before the store)`)
      case 'fail-after':
        await call()
        await a.rule.fn?.(keys[0]) // e.g. another writer commits before we learn anything
        throw new StoreError(`${what} (answer lost)`)
      case 'missing':
        return null as T
      case 'gate':
        a.gate!.reached()
        await a.gate!.released
        return call()
      case 'hook': {
        if (a.rule.when === 'after') {
          const out = await call()
          await a.rule.fn?.(keys[0])
          return out
        }
        await a.rule.fn?.(keys[0])
        return call()
      }
    }
  }

  return {
    get location() {
      return `faulty+${inner.location}`
    },
    capabilities: inner.capabilities,
    get: (key: string, range?: ByteRange) => around('get', [key], () => inner.get(key, range)),
    head: (key: string) => around('head', [key], () => inner.head(key)),
    put: (key: string, body: Uint8Array, options?: PutOptions) =>
      around('put', [key], () => inner.put(key, body, options), options),
    delete: (keys: string[]) => around('delete', keys, () => inner.delete(keys)),
    list: (prefix, options) => around('list', [prefix], () => inner.list(prefix, options)),
    ensureContainer: () => inner.ensureContainer(),
    stats: () => inner.stats(),
    close: () => inner.close(),
    calls,
    inject(rule: Rule): Gate {
      const armed: Armed = { rule, left: rule.times ?? 1, fired: 0 }
      let reached!: () => void
      let release!: () => void
      const reachedP = new Promise<void>((r) => (reached = r))
      const released = new Promise<void>((r) => (release = r))
      const gate: Gate = { reached: reachedP, release }
      armed.gate = { reached, released, gate }
      rules.push(armed)
      return gate
    },
    clear() {
      for (const a of rules) a.gate?.gate.release()
      rules.length = 0
    },
    fired(rule: Rule): number {
      return rules.find((a) => a.rule === rule)?.fired ?? 0
    },
  }
}

/** Keys of partition manifests (the commit point), on either strategy. */
export const isManifestKey = (key: string): boolean => /\/_manifest(\.v\d{20})?\.json$/.test(key)
export const isDataKey = (key: string): boolean => /\/part-[^/]+\.parquet$/.test(key)
