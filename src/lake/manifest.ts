/** Building manifest entries: per-file column statistics, checksums and partition summaries. */

import { timeRange } from '../table/table.js'
import { formatUs } from '../table/time.js'
import { BOOL_NULL, type ColumnStats, type ManifestFile, type PartitionManifest, type Table } from '../types.js'

/** A synchronous SHA-256 returning lowercase hex (e.g. node:crypto's), when the runtime has one. */
export type Sha256Hex = (bytes: Uint8Array) => string

let syncSha256: Sha256Hex | undefined

/**
 * Makes `sha256` use a synchronous hash (the Node entry point installs node:crypto's): Web
 * Crypto's `digest` is asynchronous, and for the many small files of a lake write its per-call
 * overhead is larger than the hashing. Pass nothing to go back to Web Crypto.
 */
export function setSha256(fn?: Sha256Hex): void {
  syncSha256 = fn
}

/** `sha256:<hex>` of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  if (syncSha256) return `sha256:${syncSha256(bytes)}`
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  const b = new Uint8Array(digest)
  let hex = ''
  for (let i = 0; i < b.length; i++) hex += b[i].toString(16).padStart(2, '0')
  return `sha256:${hex}`
}

/** Min, max and null count of every column (int64 as decimal strings, timestamps as ISO). */
export function columnStats(table: Table): Record<string, ColumnStats> {
  const out: Record<string, ColumnStats> = {}
  for (const { name } of table.schema) {
    const col = table.columns[name]
    let nulls = 0
    switch (col.type) {
      case 'float64':
      case 'timestamp': {
        let min = Number.POSITIVE_INFINITY
        let max = Number.NEGATIVE_INFINITY
        const v = col.values
        for (let i = 0; i < v.length; i++) {
          const x = v[i]
          if (x !== x) nulls++
          else {
            if (x < min) min = x
            if (x > max) max = x
          }
        }
        const some = nulls < v.length
        out[name] =
          col.type === 'timestamp'
            ? { min: some ? formatUs(min) : null, max: some ? formatUs(max) : null, nulls }
            : { min: some ? min : null, max: some ? max : null, nulls }
        break
      }
      case 'int64': {
        let min: bigint | null = null
        let max: bigint | null = null
        for (let i = 0; i < col.values.length; i++) {
          if (col.nulls?.[i] === 1) {
            nulls++
            continue
          }
          const x = col.values[i]
          if (min === null || x < min) min = x
          if (max === null || x > max) max = x
        }
        out[name] = { min: min === null ? null : String(min), max: max === null ? null : String(max), nulls }
        break
      }
      case 'boolean': {
        let t = 0
        let f = 0
        for (const x of col.values) {
          if (x === BOOL_NULL) nulls++
          else if (x) t++
          else f++
        }
        out[name] = { min: f ? false : t ? true : null, max: t ? true : f ? false : null, nulls }
        break
      }
      case 'string': {
        let min: string | null = null
        let max: string | null = null
        for (const x of col.values) {
          if (x === null) {
            nulls++
            continue
          }
          if (min === null || x < min) min = x
          if (max === null || x > max) max = x
        }
        out[name] = { min, max, nulls }
        break
      }
    }
  }
  return out
}

/** Sorted distinct symbols of a table (whose rows are sorted by symbol). */
export function distinctSymbols(table: Table): string[] {
  const sym = table.columns.symbol.values as string[]
  const out: string[] = []
  for (let i = 0; i < sym.length; i++) if (i === 0 || sym[i] !== sym[i - 1]) out.push(sym[i])
  return [...new Set(out)].sort()
}

export function fileEntry(name: string, bytes: Uint8Array, checksum: string, table: Table): ManifestFile {
  const { min: minTs, max: maxTs } = timeRange(table)
  return {
    name,
    rows: table.length,
    bytes: bytes.byteLength,
    minTs,
    maxTs,
    checksum,
    columns: columnStats(table),
    symbols: distinctSymbols(table),
    createdAt: new Date().toISOString(),
  }
}

/** Recomputes the totals of a manifest from its files. */
export function summarize(m: Omit<PartitionManifest, 'rows' | 'bytes' | 'minTs' | 'maxTs'>): PartitionManifest {
  let rows = 0
  let bytes = 0
  let minTs: number | null = null
  let maxTs: number | null = null
  for (const f of m.files) {
    rows += f.rows
    bytes += f.bytes
    if (minTs === null || f.minTs < minTs) minTs = f.minTs
    if (maxTs === null || f.maxTs > maxTs) maxTs = f.maxTs
  }
  return { ...m, rows, bytes, minTs, maxTs }
}
