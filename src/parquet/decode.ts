/** Parquet bytes → columnar Table, on hyparquet: footer first, only the columns and row groups asked for. */

import type { AsyncBuffer, ColumnData, FileMetaData, SchemaElement } from 'hyparquet'
import { parquetRead } from 'hyparquet/src/index.js'
import { Unsupported } from '../core/errors.js'
import { BOOL_NULL, type Column, type ColumnType, type Schema, type Table } from '../core/types.js'
import { type Decompressors, decompressorsOf, type ParquetCodecs } from './codecs.js'
import { decodeChunk } from './flat-decode.js'
import { PARSERS, type ParquetSource, readFooter, readParquetMetadata } from './footer.js'

export interface DecodeOptions {
  /** Columns to return (absent ones are left out); default all. */
  columns?: string[]
  /** Epoch µs, inclusive: row groups whose `timestamp` statistics lie wholly outside are skipped. */
  minTs?: number
  maxTs?: number
  /** Metadata from `readParquetMetadata`, to avoid reading the footer twice. */
  metadata?: FileMetaData
  /** Page decompressors (default `jsCodecs()`: pure-JS Snappy, fzstd for zstd). */
  codecs?: ParquetCodecs
  /**
   * `auto` (default): the in-memory fast path when it applies, else hyparquet's general reader.
   * `fast` fails instead of falling back; `general` always uses hyparquet (both for tests).
   */
  engine?: 'auto' | 'fast' | 'general'
}

const TWO_32 = 4294967296

function asAsyncBuffer(source: ParquetSource): AsyncBuffer {
  if (!(source instanceof Uint8Array)) return source
  const { buffer, byteOffset, byteLength } = source
  return {
    byteLength,
    slice: (start, end = byteLength) => buffer.slice(byteOffset + start, byteOffset + end) as ArrayBuffer,
  }
}

/** Timestamp unit of an INT64 element, or undefined when it is not a timestamp. */
function timestampUnit({ type, converted_type, logical_type }: SchemaElement): 'MILLIS' | 'MICROS' | 'NANOS' | undefined {
  if (type !== 'INT64') return undefined
  if (logical_type?.type === 'TIMESTAMP') return logical_type.unit
  if (converted_type === 'TIMESTAMP_MICROS') return 'MICROS'
  if (converted_type === 'TIMESTAMP_MILLIS') return 'MILLIS'
  return undefined
}

function columnType(element: SchemaElement): ColumnType | undefined {
  if (element.num_children) return undefined // nested groups are not part of our model
  if (element.repetition_type === 'REPEATED') return undefined
  switch (element.type) {
    case 'BYTE_ARRAY':
      return 'string'
    case 'DOUBLE':
    case 'FLOAT':
      return 'float64'
    case 'INT32':
      return 'int64'
    case 'INT64':
      return timestampUnit(element) ? 'timestamp' : 'int64'
    case 'BOOLEAN':
      return 'boolean'
    default:
      return undefined // INT96, FIXED_LEN_BYTE_ARRAY: not produced by this codebase
  }
}

/** Top-level flat columns of a file as our schema, in file order. Columns of other shapes are left out. */
export function fileSchema(metadata: FileMetaData): Schema {
  const schema: Schema = []
  const elements = metadata.schema
  let i = 1
  const end = elements.length
  while (i < end) {
    const element = elements[i]
    const type = columnType(element)
    if (type) schema.push({ name: element.name, type })
    i = skipSubtree(elements, i)
  }
  return schema
}

/** Index just past the element at `i` and all its descendants. */
function skipSubtree(elements: SchemaElement[], i: number): number {
  let pending = 1
  while (pending > 0) {
    pending += (elements[i].num_children ?? 0) - 1
    i++
  }
  return i
}

function statMicros(value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value === 'bigint') return Number(value)
  if (value instanceof Date) return value.getTime() * 1000
  return undefined
}

/** Row groups that may hold timestamps in [minTs, maxTs]; groups without statistics are kept. */
function selectRowGroups(metadata: FileMetaData, minTs: number, maxTs: number) {
  return metadata.row_groups.filter((group) => {
    const chunk = group.columns.find(
      (c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === 'timestamp',
    )
    const stats = chunk?.meta_data?.statistics
    const lo = statMicros(stats?.min_value ?? stats?.min)
    const hi = statMicros(stats?.max_value ?? stats?.max)
    if (lo === undefined || hi === undefined) return true
    return hi >= minTs && lo <= maxTs
  })
}

type Sink = (data: ColumnData['columnData'], start: number) => void

function allocate(type: ColumnType, n: number, unit: 'MILLIS' | 'MICROS' | 'NANOS' | undefined): { column: Column; sink: Sink } {
  switch (type) {
    case 'float64': {
      const values = new Float64Array(n)
      return { column: { type, values }, sink: floatSink(values) }
    }
    case 'timestamp': {
      const values = new Float64Array(n)
      return { column: { type, values }, sink: timestampSink(values, unit ?? 'MICROS') }
    }
    case 'int64': {
      const values = new BigInt64Array(n)
      const column: Column = { type, values }
      const sink: Sink = (data, start) => {
        if (data instanceof BigInt64Array) return values.set(data, start)
        for (let i = 0; i < data.length; i++) {
          const v = data[i]
          if (v === null || v === undefined) {
            column.nulls ??= new Uint8Array(n)
            column.nulls[start + i] = 1
          } else values[start + i] = BigInt(v)
        }
      }
      return { column, sink }
    }
    case 'boolean': {
      const values = new Uint8Array(n)
      const sink: Sink = (data, start) => {
        for (let i = 0; i < data.length; i++) {
          const v = data[i]
          values[start + i] = v === null || v === undefined ? BOOL_NULL : v ? 1 : 0
        }
      }
      return { column: { type, values }, sink }
    }
    case 'string': {
      const values: (string | null)[] = new Array(n).fill(null)
      const sink: Sink = (data, start) => {
        for (let i = 0; i < data.length; i++) {
          const v = data[i]
          values[start + i] = v === undefined ? null : v
        }
      }
      return { column: { type, values }, sink }
    }
  }
}

function floatSink(values: Float64Array): Sink {
  return (data, start) => {
    if (data instanceof Float64Array || data instanceof Float32Array) return values.set(data, start)
    for (let i = 0; i < data.length; i++) {
      const v = data[i]
      values[start + i] = v === null || v === undefined ? Number.NaN : v
    }
  }
}

function timestampSink(values: Float64Array, unit: 'MILLIS' | 'MICROS' | 'NANOS'): Sink {
  const scale = unit === 'MILLIS' ? 1000 : 1
  return (data, start) => {
    if (data instanceof BigInt64Array && unit !== 'NANOS') {
      // lo/hi words → number without a BigInt per value (exact below 2^53)
      const words = new Int32Array(data.buffer, data.byteOffset, data.length * 2)
      for (let i = 0; i < data.length; i++) {
        values[start + i] = (words[2 * i + 1] * TWO_32 + (words[2 * i] >>> 0)) * scale
      }
      return
    }
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as bigint | null | undefined
      if (v === null || v === undefined) values[start + i] = Number.NaN
      else values[start + i] = unit === 'NANOS' ? Number(v / 1000n) : Number(v) * scale
    }
  }
}

/**
 * Decodes a Parquet file into a Table holding the requested columns that the file has, in file
 * order. Only the row groups that can match `minTs`/`maxTs` are read (so the result may hold rows
 * outside the range from groups that overlap it: filter rows yourself). An empty selection gives
 * a table of length 0.
 */
export async function decodeParquet(source: ParquetSource, options: DecodeOptions = {}): Promise<Table> {
  const file = asAsyncBuffer(source)
  const metadata = options.metadata ?? (await readParquetMetadata(source))
  const wanted = options.columns ? new Set(options.columns) : undefined
  const schema = fileSchema(metadata).filter((c) => !wanted || wanted.has(c.name))

  const { minTs = Number.NEGATIVE_INFINITY, maxTs = Number.POSITIVE_INFINITY } = options
  const filtered = minTs > Number.NEGATIVE_INFINITY || maxTs < Number.POSITIVE_INFINITY
  const rowGroups = filtered ? selectRowGroups(metadata, minTs, maxTs) : metadata.row_groups
  let length = 0
  for (const group of rowGroups) length += Number(group.num_rows)

  // Timestamp columns are read as raw INT64 (their logical type stripped from a copy of the
  // schema) and converted here: hyparquet would otherwise call a parser per value.
  const units = new Map<string, 'MILLIS' | 'MICROS' | 'NANOS' | undefined>()
  const readSchema = metadata.schema.map((element, i) => {
    const unit = i > 0 ? timestampUnit(element) : undefined
    if (!unit) return element
    units.set(element.name, unit)
    const { converted_type: _c, logical_type: _l, ...plain } = element
    return plain
  })

  const engine = options.engine ?? 'auto'
  const decompressors = decompressorsOf(options.codecs)
  if (engine !== 'general' && source instanceof Uint8Array && length > 0) {
    const fast = decodeInMemory(source, metadata, rowGroups, schema, length, units, decompressors)
    if (fast) return { length, schema, columns: fast }
  }
  if (engine === 'fast' && length > 0) throw new Error('this file needs the general Parquet reader')

  const columns: Record<string, Column> = {}
  const sinks = new Map<string, Sink>()
  for (const { name, type } of schema) {
    const { column, sink } = allocate(type, length, units.get(name))
    columns[name] = column
    sinks.set(name, sink)
  }
  if (length === 0 || schema.length === 0) return { length, schema, columns }

  await parquetRead({
    file,
    metadata: { ...metadata, schema: readSchema, row_groups: rowGroups, num_rows: BigInt(length) },
    columns: schema.map((c) => c.name),
    compressors: decompressors,
    parsers: PARSERS,
    utf8: true,
    onChunk: ({ columnName, columnData, rowStart }) => sinks.get(columnName)?.(columnData, rowStart),
  })
  return { length, schema, columns }
}

/** Annotations the fast path reproduces exactly as hyparquet's reader + our sinks would. */
function fastElement(e: SchemaElement, type: ColumnType): boolean {
  const logical = e.logical_type?.type
  switch (type) {
    case 'string':
      return (!logical || logical === 'STRING') && (!e.converted_type || e.converted_type === 'UTF8')
    case 'timestamp':
      return timestampUnit(e) !== 'NANOS'
    case 'int64': {
      const signed = !e.converted_type || ['INT_8', 'INT_16', 'INT_32', 'INT_64'].includes(e.converted_type)
      return signed && (!logical || (e.logical_type?.type === 'INTEGER' && e.logical_type.isSigned))
    }
    default:
      return !e.converted_type && !logical
  }
}

/**
 * Our own decoder for a whole file in memory (see `flat-decode.ts`), or null when the file needs
 * hyparquet's general reader.
 */
function decodeInMemory(
  bytes: Uint8Array,
  metadata: FileMetaData,
  rowGroups: FileMetaData['row_groups'],
  schema: Schema,
  length: number,
  units: Map<string, 'MILLIS' | 'MICROS' | 'NANOS' | undefined>,
  decompressors: Decompressors,
): Record<string, Column> | null {
  const columns: Record<string, Column> = {}
  for (const { name, type } of schema) columns[name] = allocate(type, length, undefined).column
  return decodeColumnsInto(bytes, metadata, rowGroups, schema, units, columns, 0, decompressors) ? columns : null
}

/** Decodes `schema`'s columns of `rowGroups` into `columns` from row `offset`; false if unsupported. */
function decodeColumnsInto(
  bytes: Uint8Array,
  metadata: FileMetaData,
  rowGroups: FileMetaData['row_groups'],
  schema: Schema,
  units: Map<string, 'MILLIS' | 'MICROS' | 'NANOS' | undefined>,
  columns: Record<string, Column>,
  offset: number,
  decompressors: Decompressors,
): boolean {
  const leaves = new Map<string, { element: SchemaElement; leaf: number }>()
  const elements = metadata.schema
  let leaf = 0
  for (let i = 1; i < elements.length; i = skipSubtree(elements, i)) {
    if (!elements[i].num_children) leaves.set(elements[i].name, { element: elements[i], leaf })
    leaf += countLeaves(elements, i)
  }
  try {
    for (const { name, type } of schema) {
      const found = leaves.get(name)
      const column = columns[name]
      if (!found || column?.type !== type || !fastElement(found.element, type)) return false
      let row = offset
      for (const group of rowGroups) {
        const chunk = group.columns[found.leaf]
        if (chunk?.meta_data?.path_in_schema.length !== 1 || chunk.meta_data.path_in_schema[0] !== name) return false
        const unit = units.get(name) as 'MILLIS' | 'MICROS' | undefined
        const n = decodeChunk(bytes, chunk, found.element, column, row, unit, decompressors)
        if (n !== Number(group.num_rows)) return false
        row += n
      }
    }
  } catch (err) {
    if (err instanceof Unsupported) return false
    throw err
  }
  return true
}

/** Timestamp units of a file's INT64 timestamp columns, by name. */
function timestampUnits(metadata: FileMetaData): Map<string, 'MILLIS' | 'MICROS' | 'NANOS' | undefined> {
  const units = new Map<string, 'MILLIS' | 'MICROS' | 'NANOS' | undefined>()
  metadata.schema.forEach((element, i) => {
    const unit = i > 0 ? timestampUnit(element) : undefined
    if (unit) units.set(element.name, unit)
  })
  return units
}

/**
 * Decodes a whole file held in memory into existing columns, rows `offset ..` (every row group;
 * the caller knows the file's row count). Decodes the requested `columns` the file has; each
 * must already exist in `into` with the same type. Rows of int64 columns are marked non-null
 * first. Returns false, having possibly written part of the rows, when the file needs the
 * general reader: decode it with `decodeParquet` and copy instead. Returns the rows decoded, or
 * null in that case. Pages are decompressed by `codecs` (default pure JS).
 */
export async function decodeParquetInto(
  bytes: Uint8Array,
  into: Record<string, Column>,
  offset: number,
  columns?: string[],
  codecs?: ParquetCodecs,
): Promise<number | null> {
  let metadata: FileMetaData
  try {
    metadata = readFooter(bytes, { lean: true })
  } catch {
    return null // damaged: the general reader reports it properly
  }
  const wanted = columns ? new Set(columns) : undefined
  const schema = fileSchema(metadata).filter((c) => !wanted || wanted.has(c.name))
  let length = 0
  for (const group of metadata.row_groups) length += Number(group.num_rows)
  for (const { name, type } of schema) {
    const col = into[name]
    if (!col || col.type !== type || col.values.length < offset + length) return null
    if (col.type === 'int64') col.nulls?.fill(0, offset, offset + length)
  }
  const units = timestampUnits(metadata)
  const done = decodeColumnsInto(bytes, metadata, metadata.row_groups, schema, units, into, offset, decompressorsOf(codecs))
  return done ? length : null
}

/** Leaf columns under (and including) the element at `i`. */
function countLeaves(elements: SchemaElement[], i: number): number {
  const end = skipSubtree(elements, i)
  let n = 0
  for (let k = i; k < end; k++) if (!elements[k].num_children) n++
  return n
}
