/** Shared state of one LakeStorage: the store, the manifest log and the resolved options. */

import { newId } from '../core/ids.js'
import { metaDir } from '../core/layout.js'
import type { PartitionKey } from '../core/partitioning.js'
import type { ManifestFile, Schema, Table } from '../core/types.js'
import { decodeParquet, encodeParquet, type ParquetCodecs, type ZstdCodec } from '../parquet/index.js'
import type { ObjectStore } from '../stores/types.js'
import { fileEntry, type Sha256Hex, sha256 } from './manifest.js'
import type { ManifestLog } from './manifest-log.js'
import type { Compression } from './options.js'

export interface LakeContext {
  store: ObjectStore
  log: ManifestLog
  compression: Compression
  /** This lake's page codecs; `zstd` is added by `loadCodecs` when `compression` is zstd. */
  codecs: ParquetCodecs
  /** Where `loadCodecs` gets zstd from. */
  loadZstd: () => Promise<ZstdCodec>
  /** The hash of the file checksums. */
  sha256: Sha256Hex
  rowGroupSize: number
  gcGraceMs: number
  concurrency: number
  /** Partition commits retried (lost race, or a file replaced while planning): reported in `requestStats().retries`. */
  counters: { retries: number }
}

export interface DatasetDoc {
  format: 'friday.dataset'
  /** 2: metadata under `_friday/<dataset>/`, data alone under `<dataset>/` (1 kept both in `<dataset>/`). */
  formatVersion: 2
  name: string
  version: number
  commitId: string
  committedAt: string
  createdAt: string
  partitionBy: PartitionKey[]
  schema: Schema
}

// The lake's layout (see src/core/layout.ts): data under `<dataset>/`, the rest under `_friday/<dataset>/`.
export const datasetBase = (ds: string): string => `${metaDir(ds)}/_dataset`
/** The dataset's schema as a Parquet file with no rows, for outside readers (rewritten on each column addition). */
export const commonMetadataKey = (ds: string): string => `${metaDir(ds)}/_common_metadata`
/** Where the partition's data files are: `<dataset>/<partition path>`. */
export const partitionDir = (ds: string, path: string): string => `${ds}/${path}`
/** The partition's manifest chain: `_friday/<dataset>/<partition path>/_manifest`. */
export const manifestBase = (ds: string, path: string): string => `${metaDir(ds)}/${path}/_manifest`

export const newCommitId = (): string => newId()

/**
 * Makes the lake's codecs able to write its compression: loads zstd (`ctx.loadZstd`) into this
 * lake's codecs when it writes zstd and was given none. Called once per storage (its caller
 * forgets a failed attempt, so the next call loads again).
 */
export async function loadCodecs(ctx: LakeContext): Promise<void> {
  if (ctx.compression !== 'zstd' || ctx.codecs.zstd) return
  const zstd = await ctx.loadZstd()
  ctx.codecs = { ...ctx.codecs, zstd }
}

/** Encodes and stores `table` as a new data file in the partition; returns its manifest entry. */
export async function writeDataFile(ctx: LakeContext, ds: string, path: string, table: Table): Promise<ManifestFile> {
  const bytes = encodeParquet(table, { compression: ctx.compression, codecs: ctx.codecs, rowGroupSize: ctx.rowGroupSize })
  const name = `part-${newId()}.parquet`
  const [checksum] = await Promise.all([sha256(bytes, ctx.sha256), ctx.store.put(`${partitionDir(ds, path)}/${name}`, bytes)])
  return fileEntry(name, bytes, checksum, table)
}

/** Files up to 1 MiB (a symbol-day is ~20-50 KB) are fetched with one GET; larger ones by ranges: footer, then only the needed column chunks. */
export const WHOLE_FILE_MAX = 1024 * 1024

/**
 * Reads one data file (only `columns`, only row groups that can hold [minTs, maxTs]).
 * Returns null if the file is gone (replaced by a newer commit): the caller re-reads the manifest.
 */
export async function readDataFile(
  ctx: LakeContext,
  ds: string,
  path: string,
  file: ManifestFile,
  columns?: string[],
  minTs?: number,
  maxTs?: number,
): Promise<Table | null> {
  const key = `${partitionDir(ds, path)}/${file.name}`
  const cols = columns?.filter((c) => c in file.columns)
  if (file.bytes <= WHOLE_FILE_MAX) {
    const got = await ctx.store.get(key)
    if (!got) return null
    return decodeParquet(got.body, { columns: cols, minTs, maxTs, codecs: ctx.codecs })
  }
  let missing = false
  const source = {
    byteLength: file.bytes,
    slice: async (start: number, end?: number): Promise<ArrayBuffer> => {
      const stop = end ?? file.bytes
      const got = await ctx.store.get(key, { offset: start, length: stop - start })
      if (!got) {
        missing = true
        return new ArrayBuffer(0)
      }
      return got.body.buffer.slice(got.body.byteOffset, got.body.byteOffset + got.body.byteLength) as ArrayBuffer
    },
  }
  try {
    const t = await decodeParquet(source, { columns: cols, minTs, maxTs, codecs: ctx.codecs })
    return missing ? null : t
  } catch (err) {
    if (missing) return null
    throw err
  }
}
