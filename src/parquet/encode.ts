/**
 * Table → Parquet bytes: our typed-array columns written straight into pages (see
 * `file-writer.ts`); compression by hyparquet-writer's JS Snappy unless a faster codec is set.
 */

import { snappyCompress as jsSnappyCompress } from 'hyparquet-writer/src/snappy.js'
import { emptyTable } from '../core/table.js'
import type { Column, Schema, Table } from '../core/types.js'
import { CodecId, firstNull, type PageCodec } from './column-chunk.js'

export { microsToInt64 } from './column-chunk.js'

import { type Decompressor, setZstdDecompressor } from './decode.js'
import { type FileColumn, ParquetFileWriter } from './file-writer.js'

export type ParquetCompression = 'snappy' | 'zstd' | 'none'

export interface EncodeOptions {
  /** Page compression; default `snappy`. `zstd` needs `initZstd()` to have resolved first; `none` writes pages uncompressed. */
  compression?: ParquetCompression
  /** Rows per row group (default 100,000). Smaller groups let readers skip more by time range. */
  rowGroupSize?: number
  /** Written as the file's key/value metadata. */
  kvMetadata?: Record<string, string>
  /**
   * Write every column except `symbol` and `timestamp` OPTIONAL even when it holds no null.
   * Default true: every file of a lake then declares a column the same way, which multi-file
   * readers need (fastparquet takes one file's schema for all and misreads a file that declares
   * the column otherwise). `false` writes a column without nulls REQUIRED, which hyparquet
   * decodes straight into typed arrays, faster, for a file read on its own.
   */
  alwaysOptional?: boolean
}

/** Columns that are never null: written REQUIRED. */
const REQUIRED_COLUMNS = new Set(['symbol', 'timestamp'])
const DEFAULT_ROW_GROUP_SIZE = 100_000

/** A synchronous page compressor, as hyparquet-writer calls it. */
export type Compressor = (input: Uint8Array) => Uint8Array

let zstdCompress: Compressor | undefined
let zstdInit: Promise<void> | undefined
let snappyCompress: Compressor | undefined

/**
 * Replaces hyparquet-writer's pure-JS Snappy compressor (the largest encode cost) with a faster
 * one producing the same format, e.g. the native `snappy` package on Node/Bun (the Node entry
 * point does this when it loads). Pass nothing to go back to the JS compressor.
 */
export function setSnappyCompressor(compress?: Compressor): void {
  snappyCompress = compress
}

/**
 * Makes `compression: 'zstd'` available, and makes `decodeParquet` decompress zstd pages with
 * the same (faster) codec. Without arguments it loads the zstd WebAssembly build of
 * `@bokuweb/zstd-wasm` (works in Node). Runtimes that cannot compile WebAssembly from bytes
 * (Cloudflare Workers) pass their own synchronous codec instead. Safe to call repeatedly; a
 * failed load is forgotten so the next call retries.
 */
export function initZstd(codec?: { compress: Compressor; decompress?: Decompressor }): Promise<void> {
  if (codec) {
    zstdCompress = codec.compress
    if (codec.decompress) setZstdDecompressor(codec.decompress)
    return Promise.resolve()
  }
  if (zstdCompress) return Promise.resolve()
  zstdInit ??= (async () => {
    const zstd = await import('@bokuweb/zstd-wasm')
    await zstd.init()
    zstdCompress = (input) => zstd.compress(input, 3)
    setZstdDecompressor((input, outputLength) => zstd.decompress(input, { defaultHeapSize: outputLength }))
  })().catch((error: unknown) => {
    zstdInit = undefined
    throw error
  })
  return zstdInit
}

/** The page codec for `compression`, with the compressors installed so far. */
export function pageCodec(compression: ParquetCompression): PageCodec {
  switch (compression) {
    case 'none':
      return { id: CodecId.UNCOMPRESSED, compress: null }
    case 'snappy':
      return { id: CodecId.SNAPPY, compress: snappyCompress ?? jsSnappyCompress }
    case 'zstd':
      if (!zstdCompress) {
        throw new Error(
          "zstd compression is not initialized: await initZstd() before encodeParquet(..., { compression: 'zstd' })",
        )
      }
      return { id: CodecId.ZSTD, compress: zstdCompress }
  }
}

/**
 * Encodes a table as one Parquet file. `symbol` and `timestamp` are REQUIRED (a null there
 * throws); every other column is OPTIONAL (with `alwaysOptional: false`, only when it holds a
 * null). Timestamps are INT64 TIMESTAMP(MICROS, UTC), which DuckDB reads as
 * `TIMESTAMP WITH TIME ZONE`; strings are UTF-8 STRING (dictionary-encoded); float64 DOUBLE;
 * int64 INT64; boolean BOOLEAN. An empty table gives a valid file with no row groups.
 */
export function encodeParquet(table: Table, options: EncodeOptions = {}): Uint8Array {
  const { compression = 'snappy', rowGroupSize = DEFAULT_ROW_GROUP_SIZE, kvMetadata, alwaysOptional = true } = options
  const codec = pageCodec(compression)
  if (!(Number.isInteger(rowGroupSize) && rowGroupSize > 0)) throw new Error(`rowGroupSize must be a positive integer`)
  const columns: FileColumn[] = table.schema.map(({ name, type }) => {
    const column = table.columns[name]
    if (!column) throw new Error(`column '${name}' is in the schema but has no data`)
    if (column.type !== type) throw new Error(`column '${name}' is declared ${type} but holds ${column.type}`)
    if (column.values.length !== table.length) {
      throw new Error(`column '${name}' has ${column.values.length} values, the table has ${table.length} rows`)
    }
    return { name, type, required: REQUIRED_COLUMNS.has(name) || (!alwaysOptional && !hasNull(column)) }
  })
  const capacity = 1024 + table.length * table.schema.length * 9
  const writer = new ParquetFileWriter(columns, { codec, kvMetadata }, capacity)
  for (let from = 0; from < table.length; from += rowGroupSize) {
    writer.writeRowGroup(table, from, Math.min(table.length, from + rowGroupSize))
  }
  writer.finish()
  return writer.take()
}

function hasNull(column: Column): boolean {
  return firstNull(column, 0, column.values.length) >= 0
}

/**
 * A Parquet file with no rows and `schema`'s columns, as the lake's `_friday/<dataset>/_common_metadata`
 * (the Arrow/Spark name for a dataset's schema sidecar; outside the dataset directory, which holds
 * only data): readers of a dataset whose columns changed take the whole schema from it
 * (`pq.read_schema('<lake>/_friday/<dataset>/_common_metadata')`). Every data file carries the same
 * `pandas` metadata (nullable `Int64`/`boolean` dtypes, UTC), so `pandas.read_parquet(dir)` does not need it.
 */
export function encodeSchemaFile(schema: Schema): Uint8Array {
  return encodeParquet(emptyTable(schema), { compression: 'none' })
}
