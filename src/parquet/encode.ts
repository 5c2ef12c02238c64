/**
 * Table → Parquet bytes: our typed-array columns written straight into pages (see
 * `file-writer.ts`), compressed by the codecs passed in `options.codecs` (default: pure JS).
 */

import { emptyTable } from '../core/table.js'
import type { Column, Schema, Table } from '../core/types.js'
import { type ParquetCodecs, type ParquetCompression, pageCodec } from './codecs.js'
import { firstNull } from './column-chunk.js'
import { type FileColumn, ParquetFileWriter } from './file-writer.js'

export { microsToInt64 } from './column-chunk.js'

export interface EncodeOptions {
  /** Page compression; default `snappy`. `zstd` needs `codecs.zstd`; `none` writes pages uncompressed. */
  compression?: ParquetCompression
  /** Page compressors (default `jsCodecs()`: pure-JS Snappy, no zstd). */
  codecs?: ParquetCodecs
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

/**
 * Encodes a table as one Parquet file. `symbol` and `timestamp` are REQUIRED (a null there
 * throws); every other column is OPTIONAL (with `alwaysOptional: false`, only when it holds a
 * null). Timestamps are INT64 TIMESTAMP(MICROS, UTC), which DuckDB reads as
 * `TIMESTAMP WITH TIME ZONE`; strings are UTF-8 STRING (dictionary-encoded); float64 DOUBLE;
 * int64 INT64; boolean BOOLEAN. An empty table gives a valid file with no row groups.
 */
export function encodeParquet(table: Table, options: EncodeOptions = {}): Uint8Array {
  const { compression = 'snappy', rowGroupSize = DEFAULT_ROW_GROUP_SIZE, kvMetadata, alwaysOptional = true } = options
  const codec = pageCodec(compression, options.codecs)
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
