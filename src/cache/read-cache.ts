/**
 * `ReadCache`: per-partition read results kept in memory, each tagged with the partition version
 * it was read at, dropped after a TTL and bounded in (estimated) bytes, least recently used out
 * first. An `lru-cache` underneath; this class adds the version check and the counters.
 * `withReadCache` (`with-read-cache.ts`) decides what goes in and when an entry may be served.
 */

import { LRUCache } from 'lru-cache'
import { ConfigError } from '../core/errors.js'
import type { ReadCacheControl, ReadCacheStats, Table } from '../core/types.js'
import { tableBytes } from './partition-split.js'

export interface ReadCacheOptions {
  /** How long an entry may be served after it was read, in ms (rounded to a whole ms, at least 1). */
  ttlMs: number
  /** Bound on the estimated bytes of all entries (an entry bigger than this is not kept). */
  maxBytes: number
  /** Clock for TTL decisions, in ms (default `performance.now`); tests pass a fake one. */
  now?: () => number
}

interface Entry {
  table: Table
  version: number
  bytes: number
  /** `dataset \0 path`: the index key of `byPartition`. */
  partition: string
}

/** Bytes counted per entry on top of its table: key, entry and schema objects. */
const ENTRY_OVERHEAD = 256

const partitionId = (dataset: string, path: string): string => `${dataset}\u0000${path}`

export class ReadCache implements ReadCacheControl {
  readonly ttlMs: number
  readonly maxBytes: number
  private readonly lru: LRUCache<string, Entry>
  /** Keys of the entries of each partition (one per column set). */
  private readonly byPartition = new Map<string, Set<string>>()
  private hits = 0
  private misses = 0
  private evictions = 0
  private expirations = 0
  private invalidations = 0

  constructor(opts: ReadCacheOptions) {
    const issues = []
    if (!(Number.isFinite(opts.ttlMs) && opts.ttlMs > 0)) issues.push({ path: 'ttlMs', message: 'expected a number of ms > 0' })
    if (!(Number.isFinite(opts.maxBytes) && opts.maxBytes >= 1))
      issues.push({ path: 'maxBytes', message: 'expected a byte count >= 1' })
    if (issues.length) throw new ConfigError(`read cache: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues)
    this.ttlMs = Math.max(1, Math.round(opts.ttlMs))
    this.maxBytes = Math.floor(opts.maxBytes)
    const now = opts.now
    this.lru = new LRUCache<string, Entry>({
      ttl: this.ttlMs,
      maxSize: this.maxBytes,
      sizeCalculation: (e) => e.bytes,
      allowStale: false,
      updateAgeOnGet: false,
      // read the clock on every check: the default debounces it for 1 ms (a fake clock would lag)
      ttlResolution: 0,
      // lru-cache takes a start time of 0 for "no TTL": shift the clock so one starting at 0 works
      ...(now ? { perf: { now: () => now() + 1 } } : {}),
      dispose: (e, key, reason) => {
        if (reason === 'evict') this.evictions++
        else if (reason === 'expire') this.expirations++
        // 'set' replaces the value of a key that stays
        if (reason !== 'set') this.unindex(e.partition, key)
      },
    })
  }

  /**
   * The cached table of a partition read with the column set `columns`, if it is held, not
   * expired and was read at `version`; counts a hit or a miss. An entry of another version is
   * dropped (an invalidation).
   */
  lookup(dataset: string, path: string, columns: string, version: number): Table | undefined {
    const key = `${partitionId(dataset, path)}\u0000${columns}`
    const e = this.lru.get(key)
    if (e && e.version === version) {
      this.hits++
      return e.table
    }
    if (e) {
      this.lru.delete(key)
      this.invalidations++
    }
    this.misses++
    return undefined
  }

  /**
   * Keeps `table` (all rows of the partition, read with `columns`) tagged with `version`. The
   * rows must be at least as new as that version. An entry already held with a newer version stays.
   */
  store(dataset: string, path: string, columns: string, version: number, table: Table): void {
    const partition = partitionId(dataset, path)
    const key = `${partition}\u0000${columns}`
    const bytes = tableBytes(table) + ENTRY_OVERHEAD + key.length * 2
    if (bytes > this.maxBytes) {
      this.lru.delete(key)
      return
    }
    const held = this.lru.peek(key)
    if (held && held.version > version) return
    this.lru.set(key, { table, version, bytes, partition })
    const keys = this.byPartition.get(partition)
    if (keys) keys.add(key)
    else this.byPartition.set(partition, new Set([key]))
  }

  /** Drops every entry of these partitions (all column sets), counting invalidations. */
  invalidate(dataset: string, paths: Iterable<string>): void {
    for (const path of paths) {
      const keys = this.byPartition.get(partitionId(dataset, path))
      if (!keys) continue
      for (const key of [...keys]) if (this.lru.delete(key)) this.invalidations++
    }
  }

  stats(): ReadCacheStats {
    this.lru.purgeStale()
    const lookups = this.hits + this.misses
    return {
      enabled: true,
      entries: this.lru.size,
      bytes: this.lru.calculatedSize,
      maxBytes: this.maxBytes,
      ttlMs: this.ttlMs,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      expirations: this.expirations,
      invalidations: this.invalidations,
      hitRate: lookups === 0 ? 0 : this.hits / lookups,
    }
  }

  /** Drops every entry; the counters keep counting. */
  clear(): void {
    this.lru.clear()
  }

  private unindex(partition: string, key: string): void {
    const keys = this.byPartition.get(partition)
    if (!keys) return
    keys.delete(key)
    if (keys.size === 0) this.byPartition.delete(partition)
  }
}
