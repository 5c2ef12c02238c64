/** Building manifest entries: per-file column statistics, checksums and partition summaries. */

import { columnStats, distinctSymbols } from '../core/column-stats.js'
import { timeRange } from '../core/table.js'
import type { ManifestFile, PartitionManifest, Table } from '../core/types.js'

/**
 * SHA-256 of `bytes` as lowercase hex: synchronous where the runtime has it (node:crypto, passed
 * by the Node entry as `LakeOptions.sha256`: Web Crypto's per-call overhead is larger than the
 * hashing for the many small files of a lake write), else a promise (Web Crypto, the default).
 */
export type Sha256Hex = (bytes: Uint8Array) => string | Promise<string>

/** Web Crypto's SHA-256 (`crypto.subtle`): the default everywhere. */
export const webSha256Hex: Sha256Hex = async (bytes) => {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  const b = new Uint8Array(digest)
  let hex = ''
  for (let i = 0; i < b.length; i++) hex += b[i].toString(16).padStart(2, '0')
  return hex
}

/** `sha256:<hex>` of `bytes`, hashed by `hash` (default Web Crypto); settled at once when `hash` is synchronous. */
export function sha256(bytes: Uint8Array, hash: Sha256Hex = webSha256Hex): Promise<string> {
  const hex = hash(bytes)
  return typeof hex === 'string' ? Promise.resolve(`sha256:${hex}`) : hex.then((h) => `sha256:${h}`)
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
