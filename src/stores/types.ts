/**
 * The object-store seam under the Parquet lake: a flat key space with conditional writes.
 * Implemented by the local filesystem (Node/Bun, `src/backends/node/local-fs-store.ts`) and
 * by S3-compatible stores (`src/stores/s3-store.ts`). Keys use `/` separators and never start
 * with `/`; they are built only from validated, encoded segments (see `src/core/keys.ts`).
 */

import type { StoreRequestStats } from '../core/types.js'

export interface ObjectInfo {
  key: string
  size: number
  /** Opaque version tag; pass it back as `ifMatch`. */
  etag: string
  lastModified: Date
}

export interface GetResult extends ObjectInfo {
  body: Uint8Array
}

/** A byte range: `{ offset, length }`, or the last `suffix` bytes. */
export type ByteRange = { offset: number; length: number } | { suffix: number }

export interface PutOptions {
  /** `'*'`: create only if the key does not exist; else `PreconditionFailedError`. */
  ifNoneMatch?: '*'
  /** Replace only if the current etag equals this; else `PreconditionFailedError`. */
  ifMatch?: string
  contentType?: string
  /**
   * Epoch ms after which the write must not take effect. A store checks it right before it
   * publishes (local disk) or bounds the request by it (S3); a write not sent in time fails with
   * `DeadlinePassedError`, one cut short in flight with an ambiguous error.
   */
  deadline?: number
  /**
   * After a successful put, also store the same bytes under this key (unconditionally, best
   * effort: a failure there is ignored). The local store does it by renaming its temp file,
   * which costs no second file; S3 stores issue a second PUT.
   */
  alsoAs?: string
}

export interface ListResult {
  objects: ObjectInfo[]
  /** Common prefixes when a delimiter is given, each ending with the delimiter. */
  prefixes: string[]
}

export interface ListOptions {
  /** Group keys below the next delimiter into `prefixes` (one level listing). */
  delimiter?: string
  /** Only keys strictly after this key (lexicographic). */
  startAfter?: string
}

export interface StoreCapabilities {
  /** `ifNoneMatch: '*'` is enforced atomically. */
  ifNoneMatch: boolean
  /** `ifMatch` compare-and-swap is enforced atomically. */
  ifMatch: boolean
}

export interface ObjectStore {
  /** Human-readable location, e.g. `file:///data` or `s3://bucket/prefix`. */
  readonly location: string
  readonly capabilities: StoreCapabilities

  /** The object or a range of it; `null` if the key does not exist. */
  get(key: string, range?: ByteRange): Promise<GetResult | null>
  /** Metadata only; `null` if the key does not exist. */
  head(key: string): Promise<ObjectInfo | null>
  /**
   * Writes the whole object atomically: readers see the old or the new bytes, never a part.
   * Throws `PreconditionFailedError` when a condition fails (any store-specific signal of a
   * lost race: 412, 409, EEXIST, or an error after which a re-read shows another writer won).
   */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<{ etag: string }>
  /** Deletes keys; missing keys are ignored. */
  delete(keys: string[]): Promise<void>
  /** All keys under `prefix` (paginated internally), sorted lexicographically. */
  list(prefix: string, options?: ListOptions): Promise<ListResult>
  /** Makes sure the container exists (bucket or base directory). Idempotent. */
  ensureContainer(): Promise<void>
  /** Counters since creation. */
  stats(): StoreRequestStats
  close(): Promise<void>
}

export function emptyStats(): StoreRequestStats {
  return { get: 0, put: 0, head: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 }
}
