/**
 * Probes whether an `ObjectStore` really enforces conditional writes. Some S3-compatible
 * servers accept `If-None-Match`/`If-Match` and ignore them; multi-writer commits on such a
 * store would silently lose data, so callers refuse to run on them (`assertConditionalWrites`).
 */

import { PreconditionFailedError, StorageError, StoreCapabilityError } from '../core/errors.js'
import type { ObjectStore } from './types.js'

export interface ConditionalWriteProbe {
  /** A second `ifNoneMatch: '*'` create of the same key was rejected. */
  ifNoneMatch: boolean
  /** `ifMatch` rejected a wrong etag and accepted the right one (only probed when declared). */
  ifMatch: boolean
  /** One line per step, for logs and error messages. */
  details: string
}

const encoder = new TextEncoder()

/** Statuses with which a store says "I do not support this header" rather than "you lost". */
function isUnsupported(err: unknown): boolean {
  if (err instanceof StoreCapabilityError) return true
  return err instanceof StorageError && !(err instanceof PreconditionFailedError) && [400, 405, 501].includes(err.status)
}

export async function probeConditionalWrites(
  store: ObjectStore,
  probePrefix = '_friday/_selftest',
): Promise<ConditionalWriteProbe> {
  const dir = probePrefix.replace(/^\/+|\/+$/g, '')
  const key = `${dir ? `${dir}/` : ''}probe-${Date.now().toString(36)}-${crypto.randomUUID()}`
  const lines: string[] = []
  let ifNoneMatch = false
  let ifMatch = false
  try {
    try {
      await store.put(key, encoder.encode('first'), { ifNoneMatch: '*' })
    } catch (err) {
      if (!isUnsupported(err)) throw err
      lines.push(`create with ifNoneMatch '*' was refused: ${(err as Error).message}`)
      return { ifNoneMatch: false, ifMatch: false, details: lines.join('; ') }
    }
    try {
      await store.put(key, encoder.encode('second'), { ifNoneMatch: '*' })
      lines.push(`second create with ifNoneMatch '*' was accepted: not enforced`)
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err
      ifNoneMatch = true
      lines.push(`second create with ifNoneMatch '*' was rejected: enforced`)
    }

    if (!store.capabilities.ifMatch) {
      lines.push('ifMatch not declared by the store: not probed')
    } else {
      let wrongRejected = false
      try {
        await store.put(key, encoder.encode('wrong'), { ifMatch: 'friday-selftest-wrong-etag' })
        lines.push('ifMatch with a wrong etag was accepted: not enforced')
      } catch (err) {
        if (!(err instanceof PreconditionFailedError) && !isUnsupported(err)) throw err
        wrongRejected = err instanceof PreconditionFailedError
        lines.push(`ifMatch with a wrong etag was rejected${wrongRejected ? '' : ` as unsupported: ${(err as Error).message}`}`)
      }
      const current = await store.head(key)
      let rightAccepted = false
      if (!current) {
        lines.push('probe key vanished before the ifMatch check')
      } else {
        try {
          await store.put(key, encoder.encode('third'), { ifMatch: current.etag })
          rightAccepted = true
          lines.push('ifMatch with the current etag was accepted')
        } catch (err) {
          if (!(err instanceof PreconditionFailedError) && !isUnsupported(err)) throw err
          lines.push(`ifMatch with the current etag was rejected: ${(err as Error).message}`)
        }
      }
      ifMatch = wrongRejected && rightAccepted
    }
    return { ifNoneMatch, ifMatch, details: lines.join('; ') }
  } finally {
    await store.delete([key]).catch(() => {})
  }
}

/**
 * Throws `StoreCapabilityError` unless the store enforces `ifNoneMatch: '*'`, the primitive
 * every multi-writer commit relies on. Returns the probe result otherwise.
 */
export async function assertConditionalWrites(store: ObjectStore, probePrefix?: string): Promise<ConditionalWriteProbe> {
  const probe = await probeConditionalWrites(store, probePrefix)
  if (!probe.ifNoneMatch) {
    throw new StoreCapabilityError(
      `store ${store.location} ignores conditional writes (If-None-Match: *); refusing multi-writer use; ` +
        'set require_conditional_writes=false only for a single writer',
      { location: store.location, probe: probe.details },
    )
  }
  return probe
}
