/**
 * `ObjectStore` on any S3-compatible service (AWS S3, Ceph radosgw, R2, MinIO) through
 * `@aws-sdk/client-s3`. Web standards only: runs on Node, Bun and Cloudflare Workers.
 *
 * Conditional writes and their failure modes:
 * - `ifNoneMatch: '*'` / `ifMatch` map to `If-None-Match` / `If-Match`. The ETag is sent
 *   without quotes (radosgw answers 412 to a quoted one, AWS accepts both).
 * - 412 and 409 (`ConditionalRequestConflict`) are a lost race: `PreconditionFailedError`.
 *   `ifMatch` on a missing key is 412 on radosgw and 404 on AWS: both are a lost race.
 * - radosgw sometimes answers a lost conditional race with HTTP 500. After a 5xx on a
 *   conditional put we HEAD the key: if the condition no longer holds (key now exists for
 *   `ifNoneMatch`, etag changed for `ifMatch`) we report `PreconditionFailedError` — we cannot
 *   tell whether our own write or another writer's made it so. Otherwise nothing happened and
 *   re-sending is safe, because the store re-evaluates the condition atomically.
 * - The SDK itself retries 5xx and network errors. If a conditional put actually succeeded
 *   but its response was lost, the SDK's retry sees 412 and we report a lost race although we
 *   won. So `PreconditionFailedError` means "re-read and decide": the manifest protocol writes
 *   a commit id into each version and recognises its own success on re-read.
 *
 * Timeouts: every S3 request the store sends is bounded by `requestTimeoutMs` (default 30 s),
 * measured from sending it to having read its whole answer, the SDK's own retries included.
 * It is an `AbortSignal` passed to the SDK (so it works with any request handler and with a
 * client passed in, on Workers too) and cancels the response body as well. On Node, a fetch-based
 * handler (`FetchHttpHandler`) can lose that abort (an undici bug): give it `customFetch:
 * abortSafeFetch`, as a client the store builds does. A client the store builds also gets the
 * request handler's own limits (`connectTimeoutMs` to open a connection, so the SDK can retry
 * another within the deadline; headers and socket inactivity bounded by `requestTimeoutMs`).
 * A request that runs out of time is a `StoreError` with `details.timeoutMs`; nothing is left
 * running. A PUT or DELETE cut short (by a timeout or a network error, with no answer from the
 * store) may or may not have been carried out: its error says so (`details.outcome: 'unknown'`),
 * and callers that must know re-read (as the manifest log does).
 */

import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  type DeleteObjectsCommandOutput,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3'
import { allOwned } from '../concurrency.js'
import {
  ClosedError,
  DeadlinePassedError,
  PreconditionFailedError,
  RequestTimeout,
  StorageError,
  StoreCapabilityError,
  StoreError,
} from '../core/errors.js'
import { abortSafeFetch } from './abort-safe-fetch.js'
import type { ByteRange, GetResult, ListOptions, ListResult, ObjectInfo, ObjectStore, PutOptions } from './types.js'
import { emptyStats } from './types.js'

export interface S3StoreOptions {
  bucket: string
  /** Key prefix inside the bucket (`a/b`, `/a/b/` and `a/b/` are the same); default none. */
  prefix?: string
  /** A ready client; the store then never destroys it. Otherwise one is built lazily. */
  client?: S3Client
  endpoint?: string
  /** Default `us-east-1`. */
  region?: string
  forcePathStyle?: boolean
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** `ensureContainer()` creates a missing bucket instead of failing. */
  createBucket?: boolean
  /**
   * Limit on each request to the store in ms, from sending it to having read the whole answer
   * (the SDK's retries included); default 30 000. Past it the call fails with a `StoreError`.
   */
  requestTimeoutMs?: number
  /**
   * Limit on opening a connection in ms (clients the store builds, on Node/Bun); default
   * 5 000, at most `requestTimeoutMs`.
   */
  connectTimeoutMs?: number
}

export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 30_000
export const DEFAULT_S3_CONNECT_TIMEOUT_MS = 5_000

const DELETE_BATCH = 1000
const DELETE_CONCURRENCY = 16
/** Attempts of our own on top of the SDK's retries, for 5xx answers. */
const PUT_ATTEMPTS = 3

interface SdkError {
  name?: string
  Code?: string
  $metadata?: { httpStatusCode?: number }
}

function statusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode
}

function nameOf(err: unknown): string {
  const e = err as SdkError | undefined
  return e?.name ?? e?.Code ?? ''
}

function stripQuotes(etag: string | undefined): string {
  if (!etag) return ''
  const s = etag.startsWith('W/') ? etag.slice(2) : etag
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s
}

function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '')
  if (p.split('/').some((s) => s === '' || s === '.' || s === '..') && p !== '') {
    throw new StorageError(500, 'config_error', `s3 store: invalid prefix '${prefix}'`)
  }
  return p
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value <= 0) {
    throw new StorageError(500, 'config_error', `s3 store: ${name} must be a positive number of ms, got ${value}`)
  }
  return value
}

/** Stops reading a response body (Node stream or Web stream) so that its socket is released. */
function discardBody(body: unknown, reason: Error): void {
  const b = body as { destroy?: (err: Error) => void; cancel?: (reason: unknown) => Promise<void>; locked?: boolean }
  if (typeof b?.destroy === 'function') b.destroy(reason)
  else if (typeof b?.cancel === 'function' && !b.locked) b.cancel(reason).catch(() => {})
}

export function createS3Store(options: S3StoreOptions): ObjectStore {
  const { bucket } = options
  if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new StorageError(500, 'config_error', `s3 store: invalid bucket name '${bucket}'`)
  }
  const prefix = normalizePrefix(options.prefix)
  const base = prefix ? `${prefix}/` : ''
  const ownsClient = !options.client
  let client: S3Client | undefined = options.client
  let closed = false
  const counters = emptyStats()
  const location = `s3://${bucket}${prefix ? `/${prefix}` : ''}`
  const timeoutMs = positiveMs('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_S3_REQUEST_TIMEOUT_MS)
  const connectTimeoutMs = Math.min(
    timeoutMs,
    positiveMs('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_S3_CONNECT_TIMEOUT_MS),
  )

  function s3(): S3Client {
    if (closed) throw new ClosedError()
    if (client) return client
    const config: S3ClientConfig = {
      region: options.region ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // options of the SDK's default handler (NodeHttpHandler, or FetchHttpHandler on Workers,
      // which takes only requestTimeout and customFetch); the signal of `timed()` bounds every
      // request anyway, and abortSafeFetch makes sure it reaches a fetch-based one
      requestHandler: {
        customFetch: abortSafeFetch,
        connectionTimeout: connectTimeoutMs,
        requestTimeout: timeoutMs,
        throwOnRequestTimeout: true,
        socketTimeout: timeoutMs,
      },
    }
    if (options.endpoint) config.endpoint = options.endpoint
    if (options.credentials) config.credentials = options.credentials
    client = new S3Client(config) // if this throws, `client` stays unset and the next call retries
    return client
  }

  const full = (key: string): string => {
    if (key === '' || key.startsWith('/')) throw new StorageError(400, 'invalid_key', `invalid object key '${key}'`, { key })
    return base + key
  }
  const strip = (key: string): string => (key.startsWith(base) ? key.slice(base.length) : key)

  /**
   * Runs one request (`send` plus reading its answer) under the store's time limit: `signal` is
   * aborted when it is up, which makes the SDK give up the request (no retry) and destroy its
   * socket; `onAbort` stops whatever else reads the answer (a response body).
   */
  async function timed<T>(
    run: (signal: AbortSignal, onAbort: (stop: (reason: Error) => void) => void) => Promise<T>,
    limitMs = timeoutMs,
  ): Promise<T> {
    const controller = new AbortController()
    const ms = Math.max(1, Math.min(timeoutMs, limitMs))
    const timer = setTimeout(() => controller.abort(new RequestTimeout(ms)), ms)
    const stops: ((reason: Error) => void)[] = []
    const onAbort = (stop: (reason: Error) => void) => {
      stops.push(stop)
      if (controller.signal.aborted) stop(controller.signal.reason)
    }
    controller.signal.addEventListener('abort', () => {
      for (const stop of stops) stop(controller.signal.reason)
    })
    try {
      return await run(controller.signal, onAbort)
    } catch (err) {
      // whatever the SDK made of the abort (AbortError, a destroyed stream), report the timeout
      throw controller.signal.aborted && controller.signal.reason instanceof RequestTimeout ? controller.signal.reason : err
    } finally {
      clearTimeout(timer)
    }
  }

  function fail(op: string, key: string | undefined, err: unknown): StorageError {
    if (err instanceof StorageError) return err
    const status = statusOf(err)
    const what = key === undefined ? location : `'${key}' in ${location}`
    const timedOut = err instanceof RequestTimeout || nameOf(err) === 'TimeoutError'
    // no answer from the store: a write or delete may or may not have been carried out
    const unknown = (op === 'put' || op === 'delete') && !status ? { outcome: 'unknown' } : {}
    const doubt =
      op === 'put' ? ' (the write may or may not have been stored)' : ' (the delete may or may not have been carried out)'
    if (timedOut) {
      return new StoreError(
        `s3 ${op} of ${what} timed out: ${(err as Error).message}${unknown.outcome ? doubt : ''}`,
        { op, bucket, ...(key !== undefined ? { key } : {}), timeoutMs, ...unknown },
        err,
      )
    }
    return new StoreError(
      `s3 ${op} of ${what} failed: ${nameOf(err) || 'error'}${status ? ` (HTTP ${status})` : ''}: ${(err as Error)?.message ?? err}`,
      { op, bucket, ...(key !== undefined ? { key } : {}), ...(status ? { status } : {}), ...unknown },
      err,
    )
  }

  const isNotFound = (err: unknown) => {
    const n = nameOf(err)
    return statusOf(err) === 404 || n === 'NoSuchKey' || n === 'NotFound'
  }

  async function head(key: string): Promise<ObjectInfo | null> {
    const Key = full(key)
    counters.head++
    try {
      const r = await timed((abortSignal) => s3().send(new HeadObjectCommand({ Bucket: bucket, Key }), { abortSignal }))
      return { key, size: r.ContentLength ?? 0, etag: stripQuotes(r.ETag), lastModified: r.LastModified ?? new Date(0) }
    } catch (err) {
      if (isNotFound(err)) return null
      throw fail('head', key, err)
    }
  }

  async function get(key: string, range?: ByteRange): Promise<GetResult | null> {
    const Key = full(key)
    let Range: string | undefined
    if (range && 'suffix' in range) {
      if (range.suffix <= 0) return emptyRead(key)
      Range = `bytes=-${range.suffix}`
    } else if (range) {
      if (range.offset < 0 || range.length < 0) throw new StorageError(416, 'invalid_range', `invalid range for '${key}'`)
      // `bytes=o-(o-1)` is invalid and S3 would ignore it and send the whole object.
      if (range.length === 0) return emptyRead(key)
      Range = `bytes=${range.offset}-${range.offset + range.length - 1}`
    }
    counters.get++
    try {
      const { r, body } = await timed(async (abortSignal, onAbort) => {
        const r = await s3().send(new GetObjectCommand({ Bucket: bucket, Key, Range }), { abortSignal })
        onAbort((reason) => discardBody(r.Body, reason))
        return { r, body: r.Body ? await r.Body.transformToByteArray() : new Uint8Array(0) }
      })
      counters.bytesRead += body.length
      // `size` is the whole object's size: `bytes 0-9/1234` on ranged reads.
      const total = r.ContentRange ? Number(r.ContentRange.split('/')[1]) : Number.NaN
      const size = Number.isFinite(total) ? total : (r.ContentLength ?? body.length)
      return { key, size, etag: stripQuotes(r.ETag), lastModified: r.LastModified ?? new Date(0), body }
    } catch (err) {
      if (isNotFound(err)) return null
      if (statusOf(err) === 416 || nameOf(err) === 'InvalidRange') {
        throw new StorageError(416, 'invalid_range', `range ${Range} is outside '${key}'`, { key })
      }
      throw fail('get', key, err)
    }
  }

  async function emptyRead(key: string): Promise<GetResult | null> {
    const info = await head(key)
    return info && { ...info, body: new Uint8Array(0) }
  }

  /** After a 5xx on a conditional put: does the condition still hold (so re-sending is safe)? */
  async function conditionStillHolds(key: string, opts: PutOptions): Promise<boolean> {
    const info = await head(key)
    if (opts.ifNoneMatch === '*') return info === null
    return info !== null && opts.ifMatch !== undefined && info.etag === stripQuotes(opts.ifMatch)
  }

  async function put(key: string, body: Uint8Array, opts: PutOptions = {}): Promise<{ etag: string }> {
    const Key = full(key)
    const conditional = opts.ifNoneMatch !== undefined || opts.ifMatch !== undefined
    for (let attempt = 1; ; attempt++) {
      // past its deadline a write is not sent; once one was sent, giving up is ambiguous
      const left = opts.deadline === undefined ? timeoutMs : opts.deadline - Date.now()
      if (left <= 0) {
        if (attempt === 1) throw new DeadlinePassedError(key)
        throw new StoreError(`s3 put of '${key}' in ${location} ran out of time (the write may or may not have been stored)`, {
          op: 'put',
          bucket,
          key,
          outcome: 'unknown',
        })
      }
      counters.put++
      try {
        const command = new PutObjectCommand({
          Bucket: bucket,
          Key,
          Body: body,
          ContentLength: body.length,
          ContentType: opts.contentType,
          IfNoneMatch: opts.ifNoneMatch,
          IfMatch: opts.ifMatch === undefined ? undefined : stripQuotes(opts.ifMatch),
        })
        const r = await timed((abortSignal) => s3().send(command, { abortSignal }), left)
        counters.bytesWritten += body.length
        if (opts.alsoAs !== undefined) await put(opts.alsoAs, body).catch(() => undefined)
        return { etag: stripQuotes(r.ETag) }
      } catch (err) {
        const status = statusOf(err) ?? 0
        const name = nameOf(err)
        if (status === 412 || status === 409 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict') {
          throw new PreconditionFailedError(key, err)
        }
        if (opts.ifMatch !== undefined && isNotFound(err)) throw new PreconditionFailedError(key, err)
        if (conditional && (status === 501 || name === 'NotImplemented')) {
          throw new StoreCapabilityError(`store ${location} does not implement conditional puts (HTTP ${status} ${name})`, {
            key,
          })
        }
        if (status < 500) throw fail('put', key, err)
        if (conditional && !(await conditionStillHolds(key, opts))) throw new PreconditionFailedError(key, err)
        if (attempt >= PUT_ATTEMPTS) throw fail('put', key, err)
        await sleep(50 * 2 ** attempt + Math.random() * 50)
      }
    }
  }

  let batchDeleteUnsupported = false

  async function deleteOneByOne(keys: string[]): Promise<void> {
    let next = 0
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++]
        counters.delete++
        try {
          await timed((abortSignal) => s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key) }), { abortSignal }))
        } catch (err) {
          if (!isNotFound(err)) throw fail('delete', key, err)
        }
      }
    }
    await allOwned(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker))
  }

  async function deleteBatch(keys: string[]): Promise<void> {
    if (batchDeleteUnsupported) return deleteOneByOne(keys)
    counters.delete++
    let r: DeleteObjectsCommandOutput
    try {
      const command = new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.map((k) => ({ Key: full(k) })), Quiet: true },
      })
      r = await timed((abortSignal) => s3().send(command, { abortSignal }))
    } catch (err) {
      const status = statusOf(err)
      if (status === 501 || status === 405 || nameOf(err) === 'NotImplemented') {
        batchDeleteUnsupported = true
        return deleteOneByOne(keys)
      }
      throw fail('delete', undefined, err)
    }
    const errors = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey')
    if (errors.length > 0) {
      const first = errors[0]
      throw new StoreError(`s3 delete in ${location} failed for ${errors.length} key(s), first '${first.Key}': ${first.Code}`, {
        op: 'delete',
        bucket,
        errors: errors.slice(0, 20),
      })
    }
  }

  return {
    location,
    capabilities: { ifNoneMatch: true, ifMatch: true },
    get,
    head,
    put,
    async delete(keys) {
      for (const k of keys) full(k)
      for (let i = 0; i < keys.length; i += DELETE_BATCH) await deleteBatch(keys.slice(i, i + DELETE_BATCH))
    },
    async list(listPrefix: string, opts: ListOptions = {}): Promise<ListResult> {
      const objects: ObjectInfo[] = []
      const prefixes: string[] = []
      const Prefix = base + listPrefix || undefined
      const StartAfter = opts.startAfter ? base + opts.startAfter : undefined
      let ContinuationToken: string | undefined
      do {
        counters.list++
        let r: ListObjectsV2CommandOutput
        try {
          const command = new ListObjectsV2Command({
            Bucket: bucket,
            Prefix,
            Delimiter: opts.delimiter,
            StartAfter,
            ContinuationToken,
          })
          r = await timed((abortSignal) => s3().send(command, { abortSignal }))
        } catch (err) {
          throw fail('list', listPrefix, err)
        }
        for (const o of r.Contents ?? []) {
          if (!o.Key) continue
          objects.push({
            key: strip(o.Key),
            size: o.Size ?? 0,
            etag: stripQuotes(o.ETag),
            lastModified: o.LastModified ?? new Date(0),
          })
        }
        for (const p of r.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(strip(p.Prefix))
        ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined
      } while (ContinuationToken)
      objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      prefixes.sort()
      return { objects, prefixes }
    },
    async ensureContainer() {
      try {
        await timed((abortSignal) => s3().send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal }))
        return
      } catch (err) {
        const status = statusOf(err)
        if (!(status === 404 || nameOf(err) === 'NotFound' || nameOf(err) === 'NoSuchBucket')) {
          const timedOut = err instanceof RequestTimeout
          throw new StorageError(
            503,
            'store_unavailable',
            `cannot access bucket '${bucket}' (${location})${timedOut ? `: timed out, ${err.message}` : ''}`,
            { bucket, status, ...(timedOut ? { timeoutMs } : {}) },
            { cause: err },
          )
        }
        if (!options.createBucket) {
          throw new StorageError(503, 'store_unavailable', `bucket '${bucket}' does not exist (and createBucket is off)`, {
            bucket,
          })
        }
      }
      try {
        const region = options.region
        const located = region && region !== 'us-east-1' && region !== 'auto'
        const command = new CreateBucketCommand({
          Bucket: bucket,
          ...(located ? { CreateBucketConfiguration: { LocationConstraint: region as never } } : {}),
        })
        await timed((abortSignal) => s3().send(command, { abortSignal }))
      } catch (err) {
        const n = nameOf(err)
        if (n !== 'BucketAlreadyOwnedByYou' && n !== 'BucketAlreadyExists') throw fail('create bucket', undefined, err)
      }
    },
    stats: () => ({ ...counters }),
    async close() {
      if (closed) return
      closed = true
      if (ownsClient) client?.destroy()
      client = undefined
    },
  }
}
