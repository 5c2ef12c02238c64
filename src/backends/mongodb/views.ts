/** Catalog views: metadata documents in the contract's shapes (description, partition info, manifest). */

import { DescribeTotals, isoOrNull } from '../../core/describe.js'
import type { DatasetDescription, PartitionInfo, PartitionManifest } from '../../core/types.js'
import type { DatasetMeta, PartitionMeta } from './catalog.js'

/** A dataset summary from its descriptor and its non-empty partitions (one virtual file each). */
export function describeDataset(meta: DatasetMeta, parts: PartitionMeta[]): DatasetDescription {
  const totals = new DescribeTotals()
  for (const p of parts) totals.add(p, p.symbols, 1)
  return totals.describe(meta)
}

export function partitionInfo(m: PartitionMeta): PartitionInfo {
  return {
    values: m.values,
    path: m.path,
    version: m.version,
    rows: m.rows,
    bytes: m.bytes,
    files: m.rows > 0 ? 1 : 0,
    firstTimestamp: isoOrNull(m.minTs),
    lastTimestamp: isoOrNull(m.maxTs),
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
