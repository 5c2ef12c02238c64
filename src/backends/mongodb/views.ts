/** Catalog views: metadata documents in the contract's shapes (description, partition info, manifest). */

import type { DatasetDescription, PartitionInfo, PartitionManifest } from '../../core/types.js'
import { formatUs } from '../../table/time.js'
import type { DatasetMeta, PartitionMeta } from './catalog.js'

/** A dataset summary from its descriptor and its non-empty partitions. */
export function describeDataset(meta: DatasetMeta, parts: PartitionMeta[]): DatasetDescription {
  const symbols = new Set<string>()
  let rows = 0
  let bytes = 0
  let min: number | null = null
  let max: number | null = null
  for (const p of parts) {
    rows += p.rows
    bytes += p.bytes
    for (const s of p.symbols) symbols.add(s)
    if (p.minTs !== null && (min === null || p.minTs < min)) min = p.minTs
    if (p.maxTs !== null && (max === null || p.maxTs > max)) max = p.maxTs
  }
  return {
    name: meta.name,
    schema: meta.schema,
    partitionBy: meta.partitionBy,
    symbols: [...symbols].sort(),
    firstTimestamp: min === null ? null : formatUs(min),
    lastTimestamp: max === null ? null : formatUs(max),
    rows,
    bytes,
    partitions: parts.length,
    files: parts.length,
  }
}

export function partitionInfo(m: PartitionMeta): PartitionInfo {
  return {
    values: m.values,
    path: m.path,
    version: m.version,
    rows: m.rows,
    bytes: m.bytes,
    files: m.rows > 0 ? 1 : 0,
    firstTimestamp: m.minTs === null ? null : formatUs(m.minTs),
    lastTimestamp: m.maxTs === null ? null : formatUs(m.maxTs),
  }
}

/**
 * A partition document in the `PartitionManifest` shape. The partition's rows are presented as
 * one virtual file named `part-<commitId>.parquet` (rows, BSON bytes, checksum of the rows):
 * there is no Parquet file; the name only keeps clients of the manifest format working.
 */
export function toManifest(m: PartitionMeta): PartitionManifest {
  const files =
    m.rows > 0 && m.minTs !== null && m.maxTs !== null
      ? [
          {
            name: `part-${m.commitId}.parquet`,
            rows: m.rows,
            bytes: m.bytes,
            minTs: m.minTs,
            maxTs: m.maxTs,
            checksum: m.checksum,
            columns: m.columns,
            symbols: m.symbols,
            createdAt: m.committedAt,
          },
        ]
      : []
  return {
    format: 'friday.partition-manifest',
    formatVersion: 1,
    dataset: m.dataset,
    partition: { values: m.values, path: m.path },
    version: m.version,
    commitId: m.commitId,
    committedAt: m.committedAt,
    schema: m.schema,
    files,
    rows: m.rows,
    bytes: m.bytes,
    minTs: m.minTs,
    maxTs: m.maxTs,
  }
}
