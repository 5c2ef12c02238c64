/** Building manifest entries: per-file column statistics, checksums and partition summaries. */

import { columnStats, distinctSymbols } from '../core/column-stats.js'
import { timeRange } from '../core/table.js'
import type { ManifestFile, PartitionManifest, Table } from '../core/types.js'

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
