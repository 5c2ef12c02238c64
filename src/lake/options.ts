/** Options of the partitioned Parquet lake (`LakeStorage`), shared by the local and S3 backends. */

import type { PartitionKey } from '../core/partitioning.js'
import type { RotationPolicy } from '../core/rotation-policy.js'
import type { ParquetCodecs, ZstdCodec } from '../parquet/index.js'
import type { ObjectStore } from '../stores/types.js'
import type { InputLimits } from '../table/limits.js'
import type { Sha256Hex } from './manifest.js'

export type Compression = 'snappy' | 'zstd'

/** What a lake encodes, decodes and checksums its files with: passed in, never process-wide. */
export interface LakeCodecOptions {
  /** Parquet page codecs (default `jsCodecs()`; the Node entry passes `nativeCodecs()`). */
  codecs?: ParquetCodecs
  /**
   * Where the zstd codec comes from when `compression` is `zstd` and `codecs.zstd` is not set
   * (default `loadZstdWasm`). Called once per storage, on first use; a failure is retried on the next call.
   */
  loadZstd?: () => Promise<ZstdCodec>
  /** SHA-256 of the file checksums (default Web Crypto; the Node entry passes node:crypto's). */
  sha256?: Sha256Hex
}

export interface LakeOptions extends LakeCodecOptions {
  /** Backend name reported by `storage.backend`, e.g. `local_parquet`. */
  backend: string
  store: ObjectStore
  /** Default `['symbol', 'date']`. Allowed: `[symbol, date]`, `[symbol, month]`, `[date]`, `[month]`, `[symbol]`. */
  partitionBy?: PartitionKey[]
  /** Default `snappy`. */
  compression?: Compression
  /** Rows per Parquet row group (default 100,000). */
  rowGroupSize?: number
  /** Unreferenced files younger than this are kept by `gc()` (default 1 hour). */
  gcGraceMs?: number
  /**
   * Check at first use that the store enforces conditional writes, and refuse to write if it
   * does not (default true). Only a single-writer deployment may turn this off.
   */
  requireConditionalWrites?: boolean
  /**
   * Refuse to open a dataset whose stored partitioning differs from `partitionBy`
   * (default true). When false the dataset's own stored partitioning is used.
   */
  validatePartitioning?: boolean
  /** Maximum partitions processed concurrently by one write or read (default 16). */
  concurrency?: number
  /** What `maintain()` does (default: `DEFAULT_ROTATION`: size_based compaction to 100 MB files, 30 days of archives). */
  rotation?: RotationPolicy
  /** Columns per dataset and per write, partitions per write (default `DEFAULT_LIMITS`). */
  limits?: InputLimits
}
