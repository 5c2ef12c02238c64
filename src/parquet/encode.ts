/** Table → Parquet bytes, on hyparquet-writer, with fast paths for our typed-array columns. */

import type { SchemaElement } from 'hyparquet'
import { ByteWriter, type ColumnSource, ParquetWriter } from 'hyparquet-writer/src/index.js'
import { BOOL_NULL, type Column, type Table } from '../types.js'
import { type Decompressor, setZstdDecompressor } from './decode.js'

export type ParquetCompression = 'snappy' | 'zstd'

export interface EncodeOptions {
  /** Page compression; default `snappy`. `zstd` needs `initZstd()` to have resolved first. */
  compression?: ParquetCompression
  /** Rows per row group (default 100,000). Smaller groups let readers skip more by time range. */
  rowGroupSize?: number
  /** Written as the file's key/value metadata. */
  kvMetadata?: Record<string, string>
  /**
   * Write every column except `symbol` and `timestamp` OPTIONAL even when it holds no null.
   * Default false: a column without nulls in this file is written REQUIRED, which readers
   * (hyparquet in particular) decode straight into typed arrays, several times faster.
   */
  alwaysOptional?: boolean
}

/** Columns that are never null: written REQUIRED. */
const REQUIRED_COLUMNS = new Set(['symbol', 'timestamp'])
const DEFAULT_ROW_GROUP_SIZE = 100_000
const TWO_32 = 4294967296

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

/**
 * Encodes a table as one Parquet file. `symbol` and `timestamp` are REQUIRED (a null there
 * throws); every other column is OPTIONAL when it holds a null (or `alwaysOptional`), else REQUIRED. Timestamps are INT64 TIMESTAMP(MICROS, UTC), which
 * DuckDB reads as `TIMESTAMP WITH TIME ZONE`; strings are UTF-8 STRING; float64 DOUBLE; int64
 * INT64; boolean BOOLEAN. An empty table gives a valid file with no row groups.
 */
export function encodeParquet(table: Table, options: EncodeOptions = {}): Uint8Array {
  const { compression = 'snappy', rowGroupSize = DEFAULT_ROW_GROUP_SIZE, kvMetadata, alwaysOptional = false } = options
  if (compression === 'zstd' && !zstdCompress) {
    throw new Error("zstd compression is not initialized: await initZstd() before encodeParquet(..., { compression: 'zstd' })")
  }
  if (!(Number.isInteger(rowGroupSize) && rowGroupSize > 0)) throw new Error(`rowGroupSize must be a positive integer`)

  const schema: SchemaElement[] = [{ name: 'root', num_children: table.schema.length }]
  const columnData: ColumnSource[] = []
  /** Timestamp elements get their logical type only after the pages are written (see below). */
  const timestampElements: SchemaElement[] = []
  for (const { name, type } of table.schema) {
    const column = table.columns[name]
    if (!column) throw new Error(`column '${name}' is in the schema but has no data`)
    if (column.type !== type) throw new Error(`column '${name}' is declared ${type} but holds ${column.type}`)
    if (columnLength(column) !== table.length) {
      throw new Error(`column '${name}' has ${columnLength(column)} values, the table has ${table.length} rows`)
    }
    const required = REQUIRED_COLUMNS.has(name) || (!alwaysOptional && !hasNull(column))
    const element: SchemaElement = { name, type: 'INT64', repetition_type: required ? 'REQUIRED' : 'OPTIONAL' }
    if (column.type === 'string') {
      element.type = 'BYTE_ARRAY'
      element.converted_type = 'UTF8'
      element.logical_type = { type: 'STRING' }
    } else if (column.type === 'float64') {
      element.type = 'DOUBLE'
    } else if (column.type === 'boolean') {
      element.type = 'BOOLEAN'
    } else if (column.type === 'timestamp') {
      timestampElements.push(element)
    }
    schema.push(element)
    // Numeric columns skip hyparquet-writer's dictionary trial: market data rarely wins from it
    // and the trial (a Map over every value) is the single largest encode cost.
    const encoding = column.type === 'float64' || column.type === 'int64' || column.type === 'timestamp' ? 'PLAIN' : undefined
    columnData.push({ name, data: physicalValues(name, column, required) as ColumnSource['data'], encoding })
  }

  const writer = new ByteWriter(Math.max(1024, table.length * table.schema.length * 9))
  const pq = new ParquetWriter({
    writer,
    schema,
    codec: compression === 'zstd' ? 'ZSTD' : 'SNAPPY',
    compressors: { ...(zstdCompress ? { ZSTD: zstdCompress } : {}), ...(snappyCompress ? { SNAPPY: snappyCompress } : {}) },
    kvMetadata: kvMetadata ? Object.entries(kvMetadata).map(([key, value]) => ({ key, value })) : undefined,
    createdBy: 'friday-market-data (hyparquet-writer 0.17.0)',
  })
  // hyparquet-writer converts every value of a TIMESTAMP column with BigInt(). Our values are
  // already physical INT64 micros, so the pages and statistics are written from a plain INT64
  // element, and the logical type is set before the footer (which is all it affects) is written.
  pq.write({ columnData, rowGroupSize })
  for (const element of timestampElements) {
    element.converted_type = 'TIMESTAMP_MICROS'
    element.logical_type = { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' }
  }
  pq.finish()
  // a copy, so the (over-sized) write buffer is not kept alive by the result
  return new Uint8Array(writer.getBuffer())
}

function hasNull(column: Column): boolean {
  switch (column.type) {
    case 'float64':
    case 'timestamp':
      return column.values.some(Number.isNaN)
    case 'int64':
      return column.nulls?.includes(1) === true
    case 'boolean':
      return column.values.includes(BOOL_NULL)
    case 'string':
      return column.values.includes(null)
  }
}

function columnLength(column: Column): number {
  return column.values.length
}

/** Our null encodings → what hyparquet-writer expects: a typed array when there are no nulls. */
function physicalValues(name: string, column: Column, required: boolean): ArrayLike<unknown> {
  const n = column.values.length
  const nullError = (i: number) => new Error(`column '${name}' is required but row ${i} is null`)
  switch (column.type) {
    case 'float64': {
      const v = column.values
      const firstNull = v.findIndex(Number.isNaN)
      if (firstNull < 0) return v
      if (required) throw nullError(firstNull)
      const out: (number | null)[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = Number.isNaN(v[i]) ? null : v[i]
      return out
    }
    case 'timestamp': {
      const v = column.values
      const firstNull = v.findIndex(Number.isNaN)
      if (firstNull < 0) return microsToInt64(v)
      if (required) throw nullError(firstNull)
      const out: (bigint | null)[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = Number.isNaN(v[i]) ? null : BigInt(v[i])
      return out
    }
    case 'int64': {
      const { values, nulls } = column
      const firstNull = nulls ? nulls.indexOf(1) : -1
      if (firstNull < 0) return values
      if (required) throw nullError(firstNull)
      const out: (bigint | null)[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = nulls![i] === 1 ? null : values[i]
      return out
    }
    case 'boolean': {
      const v = column.values
      const out: (boolean | null)[] = new Array(n)
      for (let i = 0; i < n; i++) {
        const b = v[i]
        if (b === BOOL_NULL) {
          if (required) throw nullError(i)
          out[i] = null
        } else out[i] = b === 1
      }
      return out
    }
    case 'string': {
      const v = column.values
      if (required) {
        const firstNull = v.indexOf(null)
        if (firstNull >= 0) throw nullError(firstNull)
      }
      return v
    }
  }
}

/**
 * Exact integer epoch micros (|v| < 2^53) → INT64, without a BigInt per value: the low and high
 * 32-bit halves go straight into a little-endian view of the same buffer.
 */
export function microsToInt64(values: Float64Array): BigInt64Array {
  const n = values.length
  const out = new BigInt64Array(n)
  const words = new Int32Array(out.buffer)
  for (let i = 0; i < n; i++) {
    const v = values[i]
    const hi = Math.floor(v / TWO_32)
    words[2 * i] = v - hi * TWO_32 // in [0, 2^32): stored modulo 2^32 as the unsigned low word
    words[2 * i + 1] = hi
  }
  return out
}
