/**
 * `ObjectStore` on a Cloudflare R2 bucket binding (`[[r2_buckets]]` in wrangler.toml, an
 * `R2Bucket` in the Worker's `env`): no S3 API, no credentials, no XML. Web standards only.
 *
 * Conditional writes: `ifNoneMatch: '*'` is `onlyIf: { etagDoesNotMatch: '*' }` and `ifMatch`
 * is `onlyIf: { etagMatches }`. R2 answers a failed precondition of `put` with `null` (not an
 * error): that is a lost race, `PreconditionFailedError`, as on the other stores. R2 etags are
 * unquoted; a quoted `ifMatch` (as HTTP spells it) is unquoted first.
 *
 * A binding call cannot be cancelled, so `deadline` is checked right before the put is sent (as
 * the local store checks it right before it publishes): a write not sent in time fails with
 * `DeadlinePassedError`. A put or delete that throws may or may not have been carried out
 * (`details.outcome: 'unknown'`); callers that must know re-read, as the manifest log does.
 */

import { ClosedError, DeadlinePassedError, PreconditionFailedError, StorageError, StoreError } from '../core/errors.js'
import type { ByteRange, GetResult, ListOptions, ListResult, ObjectInfo, ObjectStore, PutOptions } from './types.js'
import { emptyStats } from './types.js'

/** The part of an R2 object's metadata the store reads (`R2Object` of `@cloudflare/workers-types`). */
export interface R2ObjectLike {
  key: string
  size: number
  etag: string
  uploaded: Date
}

/** The part of a Workers `R2Bucket` binding the store uses; the real `R2Bucket` satisfies it. */
export interface R2BucketBinding {
  head(key: string): Promise<R2ObjectLike | null>
  get(
    key: string,
    options?: { range?: { offset: number; length: number } | { suffix: number } },
  ): Promise<(R2ObjectLike & { arrayBuffer(): Promise<ArrayBuffer> }) | null>
  put(
    key: string,
    value: Uint8Array,
    options?: {
      onlyIf?: { etagMatches?: string; etagDoesNotMatch?: string }
      httpMetadata?: { contentType?: string }
    },
  ): Promise<R2ObjectLike | null>
  delete(keys: string[]): Promise<void>
  list(options?: { prefix?: string; delimiter?: string; startAfter?: string; cursor?: string; limit?: number }): Promise<{
    objects: R2ObjectLike[]
    delimitedPrefixes: string[]
    truncated: boolean
    cursor?: string
  }>
}

export interface R2BindingStoreOptions {
  /** The binding, e.g. `env.R2_BUCKET`. */
  bucket: R2BucketBinding
  /** The binding's name, for `location` and error messages; default `R2_BUCKET`. */
  bindingName?: string
  /** Key prefix inside the bucket (`a/b`, `/a/b/` and `a/b/` are the same); default none. */
  prefix?: string
}

/** R2 deletes at most 1000 keys per call. */
const DELETE_BATCH = 1000
/** R2 answers an unsatisfiable range with error 10039. */
const INVALID_RANGE = /\(10039\)/

function stripQuotes(etag: string): string {
  const s = etag.startsWith('W/') ? etag.slice(2) : etag
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s
}

function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '')
  if (p !== '' && p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new StorageError(500, 'config_error', `r2 binding store: invalid prefix '${prefix}'`)
  }
  return p
}

export function createR2BindingStore(options: R2BindingStoreOptions): ObjectStore {
  const bucket = options.bucket
  if (!bucket || typeof bucket.put !== 'function' || typeof bucket.list !== 'function') {
    throw new StorageError(500, 'config_error', 'r2 binding store: `bucket` must be an R2 bucket binding')
  }
  const binding = options.bindingName ?? 'R2_BUCKET'
  const prefix = normalizePrefix(options.prefix)
  const base = prefix ? `${prefix}/` : ''
  const location = `r2://${binding}${prefix ? `/${prefix}` : ''}`
  const counters = emptyStats()
  let closed = false

  function r2(): R2BucketBinding {
    if (closed) throw new ClosedError()
    return bucket
  }

  const full = (key: string): string => {
    if (key === '' || key.startsWith('/')) throw new StorageError(400, 'invalid_key', `invalid object key '${key}'`, { key })
    return base + key
  }
  const strip = (key: string): string => (key.startsWith(base) ? key.slice(base.length) : key)
  const info = (key: string, o: R2ObjectLike): ObjectInfo => ({
    key,
    size: o.size,
    etag: stripQuotes(o.etag),
    lastModified: o.uploaded,
  })

  function fail(op: string, key: string | undefined, err: unknown, extra: Record<string, unknown> = {}): StorageError {
    if (err instanceof StorageError) return err
    const what = key === undefined ? location : `'${key}' in ${location}`
    return new StoreError(
      `r2 ${op} of ${what} failed: ${(err as Error)?.message ?? err}`,
      { op, binding, ...(key !== undefined ? { key } : {}), ...extra },
      err,
    )
  }

  async function head(key: string): Promise<ObjectInfo | null> {
    const k = full(key)
    counters.head++
    let o: R2ObjectLike | null
    try {
      o = await r2().head(k)
    } catch (err) {
      throw fail('head', key, err)
    }
    return o && info(key, o)
  }

  async function emptyRead(key: string): Promise<GetResult | null> {
    const i = await head(key)
    return i && { ...i, body: new Uint8Array(0) }
  }

  /**
   * Whether a ranged read failed because it starts at or past the end: R2 says 10039, but
   * workerd's simulation answers a range that starts exactly at the end with an unspecified
   * error, so the object's size decides.
   */
  async function startsPastEnd(key: string, offset: number, err: unknown): Promise<boolean> {
    if (INVALID_RANGE.test((err as Error)?.message ?? '')) return true
    const size = (await head(key).catch(() => null))?.size
    return size !== undefined && offset >= size
  }

  async function get(key: string, range?: ByteRange): Promise<GetResult | null> {
    const k = full(key)
    let r2Range: { offset: number; length: number } | { suffix: number } | undefined
    if (range && 'suffix' in range) {
      if (range.suffix <= 0) return emptyRead(key)
      r2Range = { suffix: range.suffix }
    } else if (range) {
      if (range.offset < 0 || range.length < 0) throw new StorageError(416, 'invalid_range', `invalid range for '${key}'`)
      // R2 refuses an empty range; the other stores answer it with no bytes
      if (range.length === 0) return emptyRead(key)
      r2Range = { offset: range.offset, length: range.length }
    }
    counters.get++
    try {
      const o = await r2().get(k, r2Range ? { range: r2Range } : undefined)
      if (!o) return null
      const body = new Uint8Array(await o.arrayBuffer())
      counters.bytesRead += body.length
      return { ...info(key, o), body }
    } catch (err) {
      if (r2Range && 'offset' in r2Range && (await startsPastEnd(key, r2Range.offset, err))) {
        throw new StorageError(416, 'invalid_range', `range ${r2Range.offset}+${r2Range.length} is outside '${key}'`, { key })
      }
      throw fail('get', key, err)
    }
  }

  async function put(key: string, body: Uint8Array, opts: PutOptions = {}): Promise<{ etag: string }> {
    const k = full(key)
    const onlyIf =
      opts.ifNoneMatch === '*'
        ? { etagDoesNotMatch: '*' }
        : opts.ifMatch !== undefined
          ? { etagMatches: stripQuotes(opts.ifMatch) }
          : undefined
    const b = r2()
    if (opts.deadline !== undefined && Date.now() >= opts.deadline) throw new DeadlinePassedError(key)
    counters.put++
    let o: R2ObjectLike | null
    try {
      o = await b.put(k, body, {
        ...(onlyIf ? { onlyIf } : {}),
        ...(opts.contentType ? { httpMetadata: { contentType: opts.contentType } } : {}),
      })
    } catch (err) {
      throw fail('put', key, err, { outcome: 'unknown' })
    }
    if (!o) throw new PreconditionFailedError(key)
    counters.bytesWritten += body.length
    if (opts.alsoAs !== undefined) await put(opts.alsoAs, body).catch(() => undefined)
    return { etag: stripQuotes(o.etag) }
  }

  async function list(listPrefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const objects: ObjectInfo[] = []
    const prefixes: string[] = []
    const p = base + listPrefix
    const startAfter = opts.startAfter ? base + opts.startAfter : undefined
    let cursor: string | undefined
    do {
      counters.list++
      let r: Awaited<ReturnType<R2BucketBinding['list']>>
      try {
        r = await r2().list({
          ...(p ? { prefix: p } : {}),
          ...(opts.delimiter ? { delimiter: opts.delimiter } : {}),
          ...(startAfter ? { startAfter } : {}),
          ...(cursor ? { cursor } : {}),
        })
      } catch (err) {
        throw fail('list', listPrefix, err)
      }
      for (const o of r.objects) objects.push(info(strip(o.key), o))
      for (const dp of r.delimitedPrefixes) prefixes.push(strip(dp))
      cursor = r.truncated ? r.cursor : undefined
    } while (cursor)
    objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    prefixes.sort()
    return { objects, prefixes }
  }

  return {
    location,
    capabilities: { ifNoneMatch: true, ifMatch: true },
    get,
    head,
    put,
    async delete(keys) {
      const fullKeys = keys.map(full)
      for (let i = 0; i < fullKeys.length; i += DELETE_BATCH) {
        const b = r2()
        counters.delete++
        try {
          await b.delete(fullKeys.slice(i, i + DELETE_BATCH))
        } catch (err) {
          throw fail('delete', undefined, err, { outcome: 'unknown' })
        }
      }
    },
    list,
    async ensureContainer() {
      // a binding names an existing bucket; one request shows that it answers
      try {
        await r2().list({ ...(base ? { prefix: base } : {}), limit: 1 })
      } catch (err) {
        if (err instanceof StorageError) throw err
        throw new StorageError(
          503,
          'store_unavailable',
          `cannot access ${location}: ${(err as Error)?.message ?? err}`,
          { binding },
          { cause: err },
        )
      }
    },
    stats: () => ({ ...counters }),
    async close() {
      closed = true
    },
  }
}
