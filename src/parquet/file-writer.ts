/**
 * A Parquet file writer for our flat columnar tables: row groups written as they come (so a
 * response can stream), then the footer (FileMetaData, Thrift compact). Files use v1 data pages,
 * PLAIN numbers, dictionary-encoded strings, min/max/null-count statistics and column orders,
 * the combination DuckDB, Polars, Spark, Athena and pyarrow all read. The footer carries the
 * `ARROW:schema` and `pandas` metadata of `arrow-schema.ts` (unless the caller sets those keys),
 * so pyarrow, pandas, polars and fastparquet type the columns as we do.
 */

import type { ColumnType, Table } from '../core/types.js'
import { arrowSchemaMetadata, pandasMetadata } from './arrow-schema.js'
import { Bytes } from './bytes.js'
import { type ChunkMeta, type PageCodec, physicalType, writeColumnChunk } from './column-chunk.js'
import { CompactWriter, TType } from './thrift-compact.js'
import {
  ColumnChunkField as CC,
  ColumnMetaDataField as CM,
  ColumnOrderField,
  ConvertedType,
  FieldRepetitionType,
  FileMetaDataField as FM,
  KeyValueField,
  LogicalTypeField,
  RowGroupField as RG,
  SchemaElementField as SE,
  StatisticsField as ST,
  TimestampTypeField,
  TimeUnitField,
} from './thrift-ids.js'

export interface FileColumn {
  name: string
  type: ColumnType
  required: boolean
}

export interface FileWriterOptions {
  codec: PageCodec
  kvMetadata?: Record<string, string>
  /** Leave out the `ARROW:schema` and `pandas` metadata (default: written). */
  noReaderMetadata?: boolean
  /** `<app> version <semver>`: the form parquet-mr parses before trusting string statistics. */
  createdBy?: string
}

interface RowGroupMeta {
  chunks: { offset: number; meta: ChunkMeta }[]
  numRows: number
  offset: number
  totalByteSize: number
  compressedSize: number
}

const MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0x31]) // PAR1
/** The FileMetaData version written. */
const FORMAT_VERSION = 2

export class ParquetFileWriter {
  private readonly out: Bytes
  /** File offset of `out`'s first byte (bytes before it were taken). */
  private base = 0
  private numRows = 0
  private readonly groups: RowGroupMeta[] = []

  constructor(
    readonly columns: FileColumn[],
    private readonly options: FileWriterOptions,
    capacity = 64 * 1024,
  ) {
    this.out = new Bytes(capacity)
    this.out.bytes(MAGIC)
  }

  /** Appends rows [from, to) of `table` as one row group; its columns are matched by name. */
  writeRowGroup(table: Table, from = 0, to = table.length): void {
    if (to <= from) return
    const offset = this.base + this.out.pos
    const chunks: RowGroupMeta['chunks'] = []
    let totalByteSize = 0
    for (const { name, type, required } of this.columns) {
      const col = table.columns[name]
      if (!col) throw new Error(`column '${name}' is in the schema but has no data`)
      if (col.type !== type) throw new Error(`column '${name}' is declared ${type} but holds ${col.type}`)
      const chunkOffset = this.base + this.out.pos
      const meta = writeColumnChunk(this.out, name, col, from, to, required, this.options.codec)
      const shift = this.base
      meta.dataPageOffset += shift
      if (meta.dictionaryPageOffset !== undefined) meta.dictionaryPageOffset += shift
      chunks.push({ offset: chunkOffset, meta })
      totalByteSize += meta.uncompressedSize
    }
    this.groups.push({
      chunks,
      numRows: to - from,
      offset,
      totalByteSize,
      compressedSize: this.base + this.out.pos - offset,
    })
    this.numRows += to - from
  }

  /** The bytes written since the last `take` (a copy). */
  take(): Uint8Array {
    const bytes = this.out.written().slice()
    this.base += this.out.pos
    this.out.pos = 0
    return bytes
  }

  /** Writes the footer; `take()` then returns the rest of the file. */
  finish(): void {
    const footerStart = this.out.pos
    this.writeFooter(new CompactWriter(this.out))
    this.out.u32(this.out.pos - footerStart)
    this.out.bytes(MAGIC)
  }

  private keyValueMetadata(): Record<string, string> {
    const own = this.options.kvMetadata ?? {}
    if (this.options.noReaderMetadata) return own
    const fields = this.columns.map((c) => ({ name: c.name, type: c.type, nullable: !c.required }))
    return { ...readerMetadata(fields), ...own }
  }

  private writeFooter(t: CompactWriter): void {
    const { columns, groups } = this
    t.begin()
    t.i32(FM.VERSION, FORMAT_VERSION)
    t.list(FM.SCHEMA, TType.STRUCT, columns.length + 1)
    t.begin()
    t.string(SE.NAME, 'schema')
    t.i32(SE.NUM_CHILDREN, columns.length)
    t.end()
    for (const c of columns) {
      t.begin()
      t.i32(SE.TYPE, physicalType(c.type))
      t.i32(SE.REPETITION_TYPE, c.required ? FieldRepetitionType.REQUIRED : FieldRepetitionType.OPTIONAL)
      t.string(SE.NAME, c.name)
      if (c.type === 'string') {
        t.i32(SE.CONVERTED_TYPE, ConvertedType.UTF8)
        t.struct(SE.LOGICAL_TYPE)
        t.struct(LogicalTypeField.STRING)
        t.end()
        t.end()
      } else if (c.type === 'timestamp') {
        t.i32(SE.CONVERTED_TYPE, ConvertedType.TIMESTAMP_MICROS)
        t.struct(SE.LOGICAL_TYPE)
        t.struct(LogicalTypeField.TIMESTAMP)
        t.bool(TimestampTypeField.IS_ADJUSTED_TO_UTC, true)
        t.struct(TimestampTypeField.UNIT)
        t.struct(TimeUnitField.MICROS)
        t.end()
        t.end()
        t.end()
        t.end()
      }
      t.end()
    }
    t.i64(FM.NUM_ROWS, this.numRows)
    t.list(FM.ROW_GROUPS, TType.STRUCT, groups.length)
    groups.forEach((g, ordinal) => {
      t.begin()
      t.list(RG.COLUMNS, TType.STRUCT, g.chunks.length)
      for (let i = 0; i < g.chunks.length; i++) writeColumnChunkMeta(t, g.chunks[i].offset, g.chunks[i].meta, columns[i].name)
      t.i64(RG.TOTAL_BYTE_SIZE, g.totalByteSize)
      t.i64(RG.NUM_ROWS, g.numRows)
      t.i64(RG.FILE_OFFSET, g.offset)
      t.i64(RG.TOTAL_COMPRESSED_SIZE, g.compressedSize)
      t.i16(RG.ORDINAL, ordinal)
      t.end()
    })
    const kv = Object.entries(this.keyValueMetadata())
    if (kv.length) {
      t.list(FM.KEY_VALUE_METADATA, TType.STRUCT, kv.length)
      for (const [key, value] of kv) {
        t.begin()
        t.string(KeyValueField.KEY, key)
        t.string(KeyValueField.VALUE, value)
        t.end()
      }
    }
    t.string(FM.CREATED_BY, this.options.createdBy ?? 'friday-market-data version 0.1.0')
    t.list(FM.COLUMN_ORDERS, TType.STRUCT, columns.length)
    for (let i = 0; i < columns.length; i++) {
      t.begin()
      t.struct(ColumnOrderField.TYPE_ORDER)
      t.end()
      t.end()
    }
    t.end()
  }
}

function writeColumnChunkMeta(t: CompactWriter, offset: number, m: ChunkMeta, name: string): void {
  t.begin()
  t.i64(CC.FILE_OFFSET, offset)
  t.struct(CC.META_DATA)
  t.i32(CM.TYPE, m.type)
  t.list(CM.ENCODINGS, TType.I32, m.encodings.length)
  for (const e of m.encodings) t.elemI32(e)
  t.list(CM.PATH_IN_SCHEMA, TType.BINARY, 1)
  t.elemString(name)
  t.i32(CM.CODEC, m.codec)
  t.i64(CM.NUM_VALUES, m.numValues)
  t.i64(CM.TOTAL_UNCOMPRESSED_SIZE, m.uncompressedSize)
  t.i64(CM.TOTAL_COMPRESSED_SIZE, m.compressedSize)
  t.i64(CM.DATA_PAGE_OFFSET, m.dataPageOffset)
  if (m.dictionaryPageOffset !== undefined) t.i64(CM.DICTIONARY_PAGE_OFFSET, m.dictionaryPageOffset)
  t.struct(CM.STATISTICS)
  const s = m.stats
  if (s.legacy && s.max) t.binary(ST.MAX, s.max)
  if (s.legacy && s.min) t.binary(ST.MIN, s.min)
  t.i64(ST.NULL_COUNT, s.nullCount)
  if (s.max) t.binary(ST.MAX_VALUE, s.max)
  if (s.min) t.binary(ST.MIN_VALUE, s.min)
  t.end()
  t.end()
  t.end()
}

/**
 * The `ARROW:schema` and `pandas` entries for a column list: the same for every file of a schema,
 * so built once per schema (a lake writes thousands of files per schema). A pure function's
 * results, bounded: the oldest entry goes past `READER_METADATA_CACHE`.
 */
const readerMetadataCache = new Map<string, { 'ARROW:schema': string; pandas: string }>()
const READER_METADATA_CACHE = 64

function readerMetadata(fields: { name: string; type: ColumnType; nullable: boolean }[]): {
  'ARROW:schema': string
  pandas: string
} {
  const key = JSON.stringify(fields)
  let entry = readerMetadataCache.get(key)
  if (!entry) {
    const pandas = pandasMetadata(fields)
    entry = { 'ARROW:schema': arrowSchemaMetadata(fields, { pandas }), pandas }
    if (readerMetadataCache.size >= READER_METADATA_CACHE) readerMetadataCache.delete(readerMetadataCache.keys().next().value!)
    readerMetadataCache.set(key, entry)
  }
  return entry
}
