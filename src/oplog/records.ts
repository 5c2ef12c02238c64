/**
 * Building, filtering, ordering and paging op records: shared by the op log, its stores and the
 * HTTP route, so every backend answers a query the same way.
 */

import { monotonicFactory } from 'ulid'
import { StorageError } from '../core/errors.js'
import type { OpKind, OpLogQuery, OpRecord, OpRequests } from '../core/oplog-types.js'

/** Partition paths kept in one record; `partitionCount` always has the full number. */
export const MAX_RECORD_PARTITIONS = 100
/** Error messages longer than this are cut (a record is a log line, not a dump). */
const MAX_MESSAGE = 1000

export function noRequests(): OpRequests {
  return { get: 0, put: 0, list: 0, delete: 0, head: 0 }
}

/** Random numbers for ULIDs from a pooled `crypto.getRandomValues` buffer (one call per 256 draws, not per character). */
const pool = new Uint32Array(256)
let next = pool.length

function random(): number {
  if (next === pool.length) {
    crypto.getRandomValues(pool)
    next = 0
  }
  return pool[next++] / 4294967296
}

const monotonic = monotonicFactory(random)

/**
 * A ULID for a record that started at `atMs`: ids from one process increase strictly, even for
 * records of the same millisecond (or a clock that stepped back), so ties on `at` keep their order.
 */
export function recordId(atMs: number): string {
  return monotonic(atMs)
}

/**
 * A complete record from the fields an operation knows: id and `at` from `startedAt` (epoch ms,
 * default now), zeros and `ok` for the rest. The maintenance runner builds its records here.
 */
export function newOpRecord(op: OpKind, fields: Partial<Omit<OpRecord, 'op'>> & { startedAt?: number } = {}): OpRecord {
  const { startedAt, ...rest } = fields
  const atMs = startedAt ?? (rest.at ? Date.parse(rest.at) : Date.now())
  const partitions = rest.partitions ?? []
  return {
    id: rest.id ?? recordId(atMs),
    op,
    at: rest.at ?? new Date(atMs).toISOString(),
    dataset: rest.dataset ?? null,
    partitions: partitions.length > MAX_RECORD_PARTITIONS ? partitions.slice(0, MAX_RECORD_PARTITIONS) : partitions,
    partitionCount: rest.partitionCount ?? partitions.length,
    rows: rest.rows ?? 0,
    bytes: rest.bytes ?? 0,
    durationMs: rest.durationMs ?? 0,
    requests: rest.requests ?? noRequests(),
    retries: rest.retries ?? 0,
    outcome: rest.outcome ?? (rest.error ? 'error' : 'ok'),
    error: rest.error ?? null,
    ...(rest.details ? { details: rest.details } : {}),
  }
}

/** `{ code, message, status }` of a thrown value: a `StorageError`'s own, else `internal_error` (500) with the error's name. */
export function errorOf(err: unknown): { code: string; message: string; status: number } {
  if (err instanceof StorageError) return { code: err.code, message: cut(err.message), status: err.status }
  if (err instanceof Error) return { code: 'internal_error', message: cut(`${err.name}: ${err.message}`), status: 500 }
  return { code: 'internal_error', message: cut(String(err)), status: 500 }
}

function cut(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}...` : message
}

/** Epoch ms of a record's `at`. */
export const atMs = (r: OpRecord): number => Date.parse(r.at)

/** Whether a record passes the query's filters (not its limit). */
export function matches(r: OpRecord, q: Omit<OpLogQuery, 'limit'>): boolean {
  if (q.op !== undefined && r.op !== q.op) return false
  if (q.dataset !== undefined && r.dataset !== q.dataset) return false
  if (q.since === undefined && q.until === undefined) return true
  const t = atMs(r)
  return (q.since === undefined || t >= q.since) && (q.until === undefined || t < q.until)
}

/** Sort order of query results: newest `at` first, then the larger id. */
export function newestFirst(a: OpRecord, b: OpRecord): number {
  const d = atMs(b) - atMs(a)
  if (d !== 0) return d
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/** Several newest-first lists merged into one: de-duplicated by id, newest first, at most `limit`. */
export function mergeNewest(lists: OpRecord[][], limit: number): OpRecord[] {
  const byId = new Map<string, OpRecord>()
  for (const list of lists) for (const r of list) if (!byId.has(r.id)) byId.set(r.id, r)
  return [...byId.values()].sort(newestFirst).slice(0, limit)
}

/**
 * One page of at most `limit` records from up to `limit + 1` newest-first records, and the
 * `until` (exclusive, epoch ms) of the next page, or null when there is none. A page never ends
 * in the middle of a millisecond shared with the next record (those records move to the next
 * page), unless the whole page is that one millisecond.
 */
export function pageOf(records: OpRecord[], limit: number): { records: OpRecord[]; nextUntil: number | null } {
  if (records.length <= limit) return { records, nextUntil: null }
  const page = records.slice(0, limit)
  const boundary = atMs(records[limit])
  const lastAt = atMs(page[page.length - 1])
  if (lastAt !== boundary) return { records: page, nextUntil: lastAt }
  const kept = page.filter((r) => atMs(r) !== boundary)
  if (kept.length === 0) return { records: page, nextUntil: boundary }
  return { records: kept, nextUntil: boundary + 1 }
}

/** The records as NDJSON bytes (one JSON object per line, each line ending in `\n`). */
export function toNdjson(records: OpRecord[]): Uint8Array {
  let text = ''
  for (const r of records) text += `${JSON.stringify(r)}\n`
  return new TextEncoder().encode(text)
}

/** Records from NDJSON bytes; a line that is not a record (a torn or foreign write) is skipped. */
export function fromNdjson(bytes: Uint8Array): OpRecord[] {
  const out: OpRecord[] = []
  for (const line of new TextDecoder().decode(bytes).split('\n')) {
    if (!line) continue
    try {
      const r = JSON.parse(line) as OpRecord
      if (r && typeof r.id === 'string' && typeof r.at === 'string' && typeof r.op === 'string') out.push(r)
    } catch {
      // skipped: see above
    }
  }
  return out
}
