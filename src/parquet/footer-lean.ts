/**
 * The lean parse of a Parquet footer (FileMetaData, Thrift compact) for the in-memory fast path:
 * it keeps only what decoding pages needs (schema elements, row counts, each column chunk's
 * codec, offsets and sizes) and skips statistics, encodings and key/value metadata, which
 * hyparquet's full reader materializes for every file. Values come out in hyparquet's shapes
 * (enum names as strings), so the result is used where a `FileMetaData` is expected.
 * Reached through `footer.ts` (`readFooter(bytes, { lean: true })`), which checks the magic and
 * the footer length first.
 */

import type { FileMetaData } from 'hyparquet'
import { CompactReader, TType } from './thrift-compact.js'
import {
  CODEC_NAMES,
  CONVERTED_TYPE_NAMES,
  ColumnChunkField,
  ColumnMetaDataField,
  FileMetaDataField,
  IntTypeField,
  LOGICAL_TYPE_NAMES,
  LogicalTypeField,
  REPETITION_NAMES,
  RowGroupField,
  SchemaElementField,
  TIME_UNIT_NAMES,
  TimestampTypeField,
  TYPE_NAMES,
} from './thrift-ids.js'

const isBool = (t: number): boolean => t === TType.TRUE || t === TType.FALSE

function logicalType(r: CompactReader): Record<string, unknown> {
  let out: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return out
    id = f
    const name = LOGICAL_TYPE_NAMES[f] || `LOGICAL_${f}`
    if (f === LogicalTypeField.TIMESTAMP && t === TType.STRUCT) {
      out = { type: name }
      let fid = 0
      for (;;) {
        const [g, u] = r.field(fid)
        if (!u) break
        fid = g
        if (g === TimestampTypeField.IS_ADJUSTED_TO_UTC && isBool(u)) out.isAdjustedToUTC = u === TType.TRUE
        else if (g === TimestampTypeField.UNIT && u === TType.STRUCT) {
          const [unit, ut] = r.field(0)
          if (ut) {
            out.unit = TIME_UNIT_NAMES[unit] ?? `UNIT_${unit}`
            r.skip(ut)
            r.skip(TType.STRUCT) // rest of the TimeUnit union
          }
        } else r.skip(u)
      }
    } else if (f === LogicalTypeField.INTEGER && t === TType.STRUCT) {
      out = { type: name }
      let fid = 0
      for (;;) {
        const [g, u] = r.field(fid)
        if (!u) break
        fid = g
        if (g === IntTypeField.BIT_WIDTH && u === TType.BYTE) out.bitWidth = r.byte()
        else if (g === IntTypeField.IS_SIGNED && isBool(u)) out.isSigned = u === TType.TRUE
        else r.skip(u)
      }
    } else {
      out = { type: name }
      r.skip(t)
    }
  }
}

function schemaElement(r: CompactReader): Record<string, unknown> {
  const e: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return e
    id = f
    if (f === SchemaElementField.TYPE && t === TType.I32) e.type = TYPE_NAMES[r.zigzag()]
    else if (f === SchemaElementField.REPETITION_TYPE && t === TType.I32) e.repetition_type = REPETITION_NAMES[r.zigzag()]
    else if (f === SchemaElementField.NAME && t === TType.BINARY) e.name = r.string()
    else if (f === SchemaElementField.NUM_CHILDREN && t === TType.I32) e.num_children = r.zigzag()
    else if (f === SchemaElementField.CONVERTED_TYPE && t === TType.I32) e.converted_type = CONVERTED_TYPE_NAMES[r.zigzag()]
    else if (f === SchemaElementField.LOGICAL_TYPE && t === TType.STRUCT) e.logical_type = logicalType(r)
    else r.skip(t)
  }
}

function columnMetaData(r: CompactReader): Record<string, unknown> {
  const m: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return m
    id = f
    if (f === ColumnMetaDataField.TYPE && t === TType.I32) m.type = TYPE_NAMES[r.zigzag()]
    else if (f === ColumnMetaDataField.PATH_IN_SCHEMA && t === TType.LIST) {
      const [n] = r.list()
      const path: string[] = []
      for (let i = 0; i < n; i++) path.push(r.string())
      m.path_in_schema = path
    } else if (f === ColumnMetaDataField.CODEC && t === TType.I32) {
      const codec = r.zigzag()
      m.codec = CODEC_NAMES[codec] ?? `CODEC_${codec}`
    } else if (f === ColumnMetaDataField.NUM_VALUES && t === TType.I64) m.num_values = r.zigzag()
    else if (f === ColumnMetaDataField.TOTAL_COMPRESSED_SIZE && t === TType.I64) m.total_compressed_size = r.zigzag()
    else if (f === ColumnMetaDataField.DATA_PAGE_OFFSET && t === TType.I64) m.data_page_offset = r.zigzag()
    else if (f === ColumnMetaDataField.DICTIONARY_PAGE_OFFSET && t === TType.I64) m.dictionary_page_offset = r.zigzag()
    else r.skip(t)
  }
}

function columnChunk(r: CompactReader): Record<string, unknown> {
  const c: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return c
    id = f
    if (f === ColumnChunkField.FILE_PATH && t === TType.BINARY) c.file_path = r.string()
    else if (f === ColumnChunkField.META_DATA && t === TType.STRUCT) c.meta_data = columnMetaData(r)
    else r.skip(t)
  }
}

function rowGroup(r: CompactReader): Record<string, unknown> {
  const g: Record<string, unknown> = { columns: [] }
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return g
    id = f
    if (f === RowGroupField.COLUMNS && t === TType.LIST) {
      const [n] = r.list()
      const columns: unknown[] = []
      for (let i = 0; i < n; i++) columns.push(columnChunk(r))
      g.columns = columns
    } else if (f === RowGroupField.NUM_ROWS && t === TType.I64) g.num_rows = r.zigzag()
    else r.skip(t)
  }
}

/**
 * The parts of a FileMetaData (the Thrift bytes between the data and the footer length) needed to
 * decode pages. Numbers stay numbers (offsets and counts below 2^53).
 */
export function parseFooterLean(metadata: Uint8Array): FileMetaData {
  const r = new CompactReader(metadata)
  const meta: Record<string, unknown> = { schema: [], row_groups: [], num_rows: 0 }
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) break
    id = f
    if (f === FileMetaDataField.SCHEMA && t === TType.LIST) {
      const [k] = r.list()
      const schema: unknown[] = []
      for (let i = 0; i < k; i++) schema.push(schemaElement(r))
      meta.schema = schema
    } else if (f === FileMetaDataField.NUM_ROWS && t === TType.I64) meta.num_rows = r.zigzag()
    else if (f === FileMetaDataField.ROW_GROUPS && t === TType.LIST) {
      const [k] = r.list()
      const groups: unknown[] = []
      for (let i = 0; i < k; i++) groups.push(rowGroup(r))
      meta.row_groups = groups
    } else r.skip(t)
  }
  return meta as unknown as FileMetaData
}
