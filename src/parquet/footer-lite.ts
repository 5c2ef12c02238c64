/**
 * A lean reader of the Parquet footer (FileMetaData, Thrift compact protocol) for the in-memory
 * fast path: it keeps only what decoding pages needs (schema elements, row counts, each column
 * chunk's codec, offsets and sizes) and skips statistics, encodings and key/value metadata,
 * which hyparquet's full reader materializes for every file. Values come out in hyparquet's
 * shapes (enum names as strings), so the result is used where a `FileMetaData` is expected.
 */

import type { FileMetaData } from 'hyparquet'
import { CompressionCodecs, ConvertedTypes, FieldRepetitionTypes, ParquetTypes } from 'hyparquet/src/constants.js'

const utf8 = new TextDecoder()

class Reader {
  p = 0
  constructor(readonly b: Uint8Array) {}

  byte(): number {
    if (this.p >= this.b.length) throw new Error('parquet footer ends early')
    return this.b[this.p++]
  }

  varint(): number {
    let result = 0
    let mul = 1
    for (;;) {
      const byte = this.byte()
      result += (byte & 0x7f) * mul
      if (!(byte & 0x80)) return result
      mul *= 128
    }
  }

  zigzag(): number {
    const v = this.varint()
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2
  }

  string(): string {
    const n = this.varint()
    const s = utf8.decode(this.b.subarray(this.p, this.p + n))
    this.p += n
    return s
  }

  /** Reads a field header: [fieldId, type], or type 0 at the end of the struct. */
  field(last: number): [number, number] {
    const byte = this.byte()
    const type = byte & 0x0f
    if (type === 0) return [0, 0]
    const delta = byte >> 4
    return [delta ? last + delta : this.zigzag(), type]
  }

  /** A list header: [size, element type]. */
  list(): [number, number] {
    const byte = this.byte()
    const size = byte >> 4
    return [size === 15 ? this.varint() : size, byte & 0x0f]
  }

  skip(type: number): void {
    switch (type) {
      case 1:
      case 2:
        return // booleans live in the field header
      case 3:
        this.p++
        return
      case 4:
      case 5:
      case 6:
        this.varint()
        return
      case 7:
        this.p += 8
        return
      case 8: {
        const n = this.varint() // read first: `this.p += this.varint()` would lose the varint's bytes
        this.p += n
        return
      }
      case 9:
      case 10: {
        const [n, t] = this.list()
        for (let i = 0; i < n; i++) {
          if (t === 1 || t === 2) this.p++
          else this.skip(t)
        }
        return
      }
      case 11: {
        const n = this.varint()
        if (!n) return
        const kv = this.byte()
        for (let i = 0; i < n; i++) {
          this.skip(kv >> 4)
          this.skip(kv & 0x0f)
        }
        return
      }
      case 12: {
        let id = 0
        for (;;) {
          const [f, t] = this.field(id)
          if (!t) return
          this.skip(t)
          id = f
        }
      }
      default:
        throw new Error(`parquet footer: unknown thrift type ${type}`)
    }
  }
}

const TIME_UNITS = ['', 'MILLIS', 'MICROS', 'NANOS']
const LOGICAL_NAMES = ['', 'STRING', 'MAP', 'LIST', 'ENUM', 'DECIMAL', 'DATE', 'TIME', 'TIMESTAMP', '', 'INTEGER', 'NULL', 'JSON']

function logicalType(r: Reader): Record<string, unknown> {
  let out: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return out
    id = f
    const name = LOGICAL_NAMES[f] || `LOGICAL_${f}`
    if (f === 8 && t === 12) {
      out = { type: name }
      let fid = 0
      for (;;) {
        const [g, u] = r.field(fid)
        if (!u) break
        fid = g
        if (g === 1 && (u === 1 || u === 2)) out.isAdjustedToUTC = u === 1
        else if (g === 2 && u === 12) {
          const [unit, ut] = r.field(0)
          if (ut) {
            out.unit = TIME_UNITS[unit] ?? `UNIT_${unit}`
            r.skip(ut)
            r.skip(12) // rest of the TimeUnit union
          }
        } else r.skip(u)
      }
    } else if (f === 10 && t === 12) {
      out = { type: name }
      let fid = 0
      for (;;) {
        const [g, u] = r.field(fid)
        if (!u) break
        fid = g
        if (g === 1 && u === 3) out.bitWidth = r.b[r.p++]
        else if (g === 2 && (u === 1 || u === 2)) out.isSigned = u === 1
        else r.skip(u)
      }
    } else {
      out = { type: name }
      r.skip(t)
    }
  }
}

function schemaElement(r: Reader): Record<string, unknown> {
  const e: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return e
    id = f
    if (f === 1 && t === 5) e.type = ParquetTypes[r.zigzag()]
    else if (f === 3 && t === 5) e.repetition_type = FieldRepetitionTypes[r.zigzag()]
    else if (f === 4 && t === 8) e.name = r.string()
    else if (f === 5 && t === 5) e.num_children = r.zigzag()
    else if (f === 6 && t === 5) e.converted_type = ConvertedTypes[r.zigzag()]
    else if (f === 10 && t === 12) e.logical_type = logicalType(r)
    else r.skip(t)
  }
}

function columnMetaData(r: Reader): Record<string, unknown> {
  const m: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return m
    id = f
    if (f === 1 && t === 5) m.type = ParquetTypes[r.zigzag()]
    else if (f === 3 && t === 9) {
      const [n] = r.list()
      const path: string[] = []
      for (let i = 0; i < n; i++) path.push(r.string())
      m.path_in_schema = path
    } else if (f === 4 && t === 5) {
      const codec = r.zigzag()
      m.codec = CompressionCodecs[codec] ?? `CODEC_${codec}`
    } else if (f === 5 && t === 6) m.num_values = r.zigzag()
    else if (f === 7 && t === 6) m.total_compressed_size = r.zigzag()
    else if (f === 9 && t === 6) m.data_page_offset = r.zigzag()
    else if (f === 11 && t === 6) m.dictionary_page_offset = r.zigzag()
    else r.skip(t)
  }
}

function columnChunk(r: Reader): Record<string, unknown> {
  const c: Record<string, unknown> = {}
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return c
    id = f
    if (f === 1 && t === 8) c.file_path = r.string()
    else if (f === 3 && t === 12) c.meta_data = columnMetaData(r)
    else r.skip(t)
  }
}

function rowGroup(r: Reader): Record<string, unknown> {
  const g: Record<string, unknown> = { columns: [] }
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) return g
    id = f
    if (f === 1 && t === 9) {
      const [n] = r.list()
      const columns: unknown[] = []
      for (let i = 0; i < n; i++) columns.push(columnChunk(r))
      g.columns = columns
    } else if (f === 3 && t === 6) g.num_rows = r.zigzag()
    else r.skip(t)
  }
}

/**
 * The parts of a file's footer needed to decode its pages, or null when `bytes` is not a whole
 * Parquet file. Numbers stay numbers (offsets and counts below 2^53).
 */
export function readFooterLite(bytes: Uint8Array): FileMetaData | null {
  const n = bytes.length
  if (n < 12 || bytes[n - 4] !== 0x50 || bytes[n - 3] !== 0x41 || bytes[n - 2] !== 0x52 || bytes[n - 1] !== 0x31) return null
  const len = bytes[n - 8] | (bytes[n - 7] << 8) | (bytes[n - 6] << 16) | (bytes[n - 5] << 24)
  if (len <= 0 || len > n - 12) return null
  const r = new Reader(bytes.subarray(n - 8 - len, n - 8))
  const meta: Record<string, unknown> = { schema: [], row_groups: [], num_rows: 0 }
  let id = 0
  for (;;) {
    const [f, t] = r.field(id)
    if (!t) break
    id = f
    if (f === 2 && t === 9) {
      const [k] = r.list()
      const schema: unknown[] = []
      for (let i = 0; i < k; i++) schema.push(schemaElement(r))
      meta.schema = schema
    } else if (f === 3 && t === 6) meta.num_rows = r.zigzag()
    else if (f === 4 && t === 9) {
      const [k] = r.list()
      const groups: unknown[] = []
      for (let i = 0; i < k; i++) groups.push(rowGroup(r))
      meta.row_groups = groups
    } else r.skip(t)
  }
  return meta as unknown as FileMetaData
}
