/**
 * `withReadCache(storage, cache)`: the same storage, with `read()` answered from a `ReadCache`
 * where it can be, and `storage.readCache` set. Everything else (`scan`, catalog calls, optional
 * capabilities, `oplog`) passes through unchanged (a `Proxy`).
 *
 * A cached `read(dataset, options)`:
 * 1. `snapshot(dataset, { symbols, start, end })` when the storage has it (the lake), else
 *    `listPartitions` with the same filter: the partitions the read touches, with their current
 *    versions. This is the validation step, and what makes a write by another process (or
 *    another storage instance) visible.
 * 2. Per partition, an entry (dataset, partition path, column set) read at that same version is
 *    a hit; an entry of another version is dropped (an invalidation) and is a miss.
 * 3. Misses are read grouped by symbol, from the start of the symbol's first missing partition
 *    to the end of its last (over that time range, all symbols, when the partitioning has no
 *    symbol), split by partition, and each partition's rows stored tagged with its version.
 *    With a snapshot, the snapshot's `read`: exactly the listed versions, their metadata not
 *    loaded again, each tagged with the version listed in step 1. A snapshot whose files are gone
 *    (a compaction or rewrite removed them meanwhile) answers null, never part of the rows: then
 *    a new snapshot of the group's range is read and its versions are the tags (a few times),
 *    and at last a plain `storage.read`. Without a snapshot, `storage.read`, tagged with the
 *    version listed in step 1.
 * 4. The partitions' rows are filtered to the request, ordered by (symbol, timestamp) and cut to
 *    `limit`: the table `storage.read` returns. It never shares memory with a cache entry.
 *
 * Why this is never stale: versions only grow and every commit of a partition changes its
 * version. A snapshot's rows are exactly the versions it lists, so its tags are exact, and
 * returning them is what `storage.read` would have answered at the moment of the listing, which
 * happened inside this call. The other reads (no snapshot, or the last fallback) run after step
 * 1, so the rows stored under a tag are those of that version or of a later one, never older. A
 * later read serves an entry only when its own step 1 lists the same version; a commit after the
 * rows were fetched would have made the listed version newer than the tag, so a match means the
 * rows are exactly that version: what `storage.read` would have returned at the moment of the
 * listing. (A read spanning partitions may see a concurrent multi-partition write partially, as
 * the contract allows for `storage.read`.) The TTL bounds memory age, not correctness.
 *
 * Writes and deletes through the wrapper drop the entries of the partitions they report, only
 * to free memory early: the version check alone keeps reads correct. A miss costs the listing
 * (lake: one manifest GET per partition) and the data files (with a snapshot; without, the read
 * lists again); a hit costs only the listing. A read that lists no partition goes to the
 * snapshot's `read` (else `storage.read`); `limit: 0` and malformed options go straight to
 * `storage.read`, so empty results and errors are the backend's own. The result schema of an all-hit read is the one the latest read
 * from the storage returned for the same column set (schemas only gain columns; a write through
 * the wrapper that brings new columns forgets it), so a column another process adds elsewhere
 * shows up (all null for the cached rows) once any entry of that column set is read again, at
 * the latest after the TTL.
 */

import pLimit from 'p-limit'
import { allOwned } from '../concurrency.js'
import { filterRows, parseRowFilter, type TimeSymbolFilter } from '../core/filter.js'
import { overlay } from '../core/overlay.js'
import { type PartitionKey, timeRangeOf } from '../core/partitioning.js'
import { concat, emptyTable, slice, sortTable } from '../core/table.js'
import type {
  DataStorage,
  DeleteOptions,
  InputColumns,
  InputRow,
  PartitionInfo,
  ReadOptions,
  ReadSnapshot,
  Schema,
  Table,
  WriteOptions,
} from '../core/types.js'
import { isTable } from '../table/normalize.js'
import { columnsKey, copyTable, partitionKeysOf, splitByPartition } from './partition-split.js'
import { ReadCache, type ReadCacheOptions } from './read-cache.js'

/** Symbols whose misses are read at the same time. */
const FETCH_CONCURRENCY = 4
/** Snapshots tried for a group whose listed files vanished, before a plain `storage.read`. */
const SNAPSHOT_ATTEMPTS = 3
/** Input column names that are not new columns (the time column may be named `datetime` or `date`). */
const KEY_NAMES = new Set(['symbol', 'timestamp', 'datetime', 'date'])

interface Slot {
  info: PartitionInfo
  /** Time range of the partition, epoch µs, [from, to). */
  from: number
  to: number
  /** The partition's rows (cached or just read); then those inside the request. */
  table?: Table
  rows?: Table
}

interface Group {
  symbol: string | undefined
  slots: Slot[]
}

/**
 * `storage` with `readCache` attached and `read()` answered through it. Entries are keyed by
 * dataset and partition, not by storage: give each store its own `ReadCache` (`close()` clears it).
 */
export function withReadCache<T extends DataStorage>(
  storage: T,
  cache: ReadCache | ReadCacheOptions,
): T & { readonly readCache: ReadCache } {
  const readCache = cache instanceof ReadCache ? cache : new ReadCache(cache)
  /** dataset → column-set key → schema of the latest non-empty read from the storage. */
  const schemas = new Map<string, Map<string, Schema>>()

  const remember = (dataset: string, cols: string, schema: Schema) => {
    const m = schemas.get(dataset) ?? new Map<string, Schema>()
    schemas.set(dataset, m)
    const held = m.get(cols)
    if (!held || schema.length >= held.length) m.set(cols, schema)
  }

  /**
   * The rows of a group's range and the version each partition was read at: the snapshot's
   * listed versions (`versions` null: those of step 1), a new snapshot's when the first one's
   * files are gone, or after that a plain read (tagged with step 1's versions, as without a snapshot).
   */
  async function fetchRows(
    dataset: string,
    request: ReadOptions,
    snap: ReadSnapshot | null,
  ): Promise<{ table: Table; versions: Map<string, number> | null }> {
    for (let attempt = 0; snap && storage.snapshot && attempt < SNAPSHOT_ATTEMPTS; attempt++) {
      const s = attempt === 0 ? snap : await storage.snapshot(dataset, request)
      const table = await s.read(request)
      if (table) return { table, versions: attempt === 0 ? null : new Map(s.partitions.map((p) => [p.path, p.version])) }
    }
    return { table: await storage.read(dataset, request), versions: null }
  }

  /** Reads the missing partitions of one group from the storage and stores them. */
  async function fill(
    dataset: string,
    group: Group,
    cols: string,
    options: ReadOptions,
    partitionBy: PartitionKey[],
    snap: ReadSnapshot | null,
  ) {
    const missing: Slot[] = []
    for (const s of group.slots) {
      s.table = readCache.lookup(dataset, s.info.path, cols, s.info.version)
      if (!s.table) missing.push(s)
    }
    if (missing.length) {
      const from = missing.reduce((m, s) => Math.min(m, s.from), Number.POSITIVE_INFINITY)
      const to = missing.reduce((m, s) => Math.max(m, s.to), Number.NEGATIVE_INFINITY)
      const { table: fetched, versions } = await fetchRows(
        dataset,
        {
          ...(group.symbol !== undefined ? { symbols: [group.symbol] } : {}),
          ...(Number.isFinite(from) ? { start: from / 1000 } : {}),
          ...(Number.isFinite(to) ? { end: to / 1000 } : {}),
          ...(options.columns !== undefined ? { columns: options.columns } : {}),
        },
        snap,
      )
      if (fetched.length) remember(dataset, cols, fetched.schema)
      const parts = splitByPartition(fetched, partitionBy)
      for (const s of missing) {
        s.table = parts.get(s.info.path) ?? emptyTable(fetched.schema)
        // a partition a new snapshot no longer lists (emptied meanwhile): its rows, not stored
        const version = versions ? versions.get(s.info.path) : s.info.version
        if (version !== undefined) readCache.store(dataset, s.info.path, cols, version, s.table)
      }
    }
  }

  async function read(dataset: string, options: ReadOptions = {}): Promise<Table> {
    const o = options ?? {}
    const filter = filterOf(o)
    if (!filter) return storage.read(dataset, options)
    const cols = columnsKey(o.columns)
    const range = { symbols: o.symbols, start: o.start, end: o.end }
    const snap = storage.snapshot ? await storage.snapshot(dataset, range) : null
    const listed = snap ? snap.partitions : await storage.listPartitions(dataset, range)
    // the answer as the storage gives it: the snapshot's when it can still be read
    const direct = async () => (snap ? await snap.read(options) : null) ?? storage.read(dataset, options)
    const partitionBy = listed.length ? partitionKeysOf(listed[0].path) : null
    if (!partitionBy) return direct()

    const bySymbol = partitionBy.includes('symbol')
    const symbolMajor = partitionBy[0] === 'symbol'
    const slots: Slot[] = listed.map((info) => {
      const [from, to] = timeRangeOf(info.values)
      return { info, from, to }
    })
    const symbolOf = (s: Slot) => (bySymbol ? s.info.values.symbol : '')
    slots.sort((a, b) => compare(symbolOf(a), symbolOf(b)) || a.from - b.from)
    const groups: Group[] = []
    for (const s of slots) {
      const last = groups[groups.length - 1]
      if (last && symbolOf(last.slots[0]) === symbolOf(s)) last.slots.push(s)
      else groups.push({ symbol: bySymbol ? symbolOf(s) : undefined, slots: [s] })
    }

    const limit = o.limit ?? Number.POSITIVE_INFINITY
    const inside = (g: Group) => {
      let n = 0
      for (const s of g.slots) {
        s.rows = filterRows(s.table!, filter)
        n += s.rows.length
      }
      return n
    }
    if (Number.isFinite(limit) && symbolMajor) {
      // symbol by symbol, and no further than the limit needs
      let n = 0
      for (const g of groups) {
        await fill(dataset, g, cols, o, partitionBy, snap)
        n += inside(g)
        if (n >= limit) break
      }
    } else {
      const run = pLimit(FETCH_CONCURRENCY)
      await allOwned(groups.map((g) => run(() => fill(dataset, g, cols, o, partitionBy, snap))))
      for (const g of groups) inside(g)
    }

    const schema = schemas.get(dataset)?.get(cols)
    if (!schema) return direct()
    let t = concat(
      slots.flatMap((s) => (s.rows ? [s.rows] : [])),
      schema,
    )
    if (!symbolMajor) t = sortTable(t)
    if (slots.some((s) => s.table === t)) t = copyTable(t)
    return t.length > limit ? slice(t, 0, limit) : t
  }

  const overrides = {
    readCache,
    read,

    write: async (dataset: string, data: InputRow[] | InputColumns | Table, options?: WriteOptions) => {
      const result = await storage.write(dataset, data, options)
      readCache.invalidate(
        dataset,
        result.partitions.map((p) => p.path),
      )
      const all = schemas.get(dataset)?.get('*')
      if (all && hasNewColumn(data, all)) schemas.get(dataset)!.delete('*')
      return result
    },

    delete: async (dataset: string, options?: DeleteOptions) => {
      const result = await storage.delete(dataset, options)
      readCache.invalidate(
        dataset,
        result.partitions.map((p) => p.path),
      )
      return result
    },

    close: async () => {
      readCache.clear()
      await storage.close()
    },
  }

  return overlay(storage, overrides) as T & { readonly readCache: ReadCache }
}

/** The row filter of a read the cache can answer; null to hand the read to the storage as is. */
function filterOf(o: ReadOptions): TimeSymbolFilter | null {
  if (o.limit !== undefined && !(Number.isInteger(o.limit) && o.limit > 0)) return null
  if (o.columns !== undefined && !(Array.isArray(o.columns) && o.columns.every((c) => typeof c === 'string'))) return null
  if (Array.isArray(o.symbols) && o.symbols.length === 0) return null
  let f: TimeSymbolFilter
  try {
    f = parseRowFilter(o)
  } catch {
    return null
  }
  return f.start < f.end ? f : null
}

/** Whether a write brings a column `schema` lacks. */
function hasNewColumn(data: InputRow[] | InputColumns | Table, schema: Schema): boolean {
  const known = new Set(schema.map((c) => c.name))
  const isNew = (name: string) => !known.has(name) && !KEY_NAMES.has(name)
  if (Array.isArray(data)) {
    for (const row of data) for (const name in row) if (isNew(name)) return true
    return false
  }
  if (isTable(data)) return data.schema.some((c) => isNew(c.name))
  return Object.keys(data).some(isNew)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
