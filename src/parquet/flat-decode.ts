/**
 * The fast path of `decodeParquet`: flat columns of a file held in memory, decoded page by page
 * straight into our preallocated typed-array columns (no per-value callbacks, no intermediate
 * arrays for PLAIN numbers). Covers what this codebase, DuckDB and pyarrow write by default:
 * v1 and v2 data pages, PLAIN and dictionary encodings, definition levels of OPTIONAL columns,
 * UNCOMPRESSED / SNAPPY / ZSTD. Anything else throws `Unsupported`, and the caller falls back to
 * hyparquet's general reader. Page headers, RLE runs and Snappy are hyparquet's own routines.
 */

import type { ColumnChunk, SchemaElement } from 'hyparquet'
import { parquetHeader } from 'hyparquet/src/column.js'
import { readRleBitPackedHybrid } from 'hyparquet/src/encoding.js'
import { snappyUncompress } from 'hyparquet/src/snappy.js'
import { Unsupported } from '../core/errors.js'
import { BOOL_NULL, type Column } from '../core/types.js'
import type { Decompressors } from './codecs.js'

const TWO_32 = 4294967296
const utf8 = new TextDecoder()

interface DataReader {
  view: DataView
  offset: number
}

/** Values of a dictionary page, in the column's output representation. */
type Dictionary = Float64Array | BigInt64Array | Uint8Array | string[]

/**
 * Decodes one column chunk into `out` starting at row `rowStart`; returns the rows decoded.
 * `unit` is the timestamp unit when the output is a timestamp column.
 */
export function decodeChunk(
  bytes: Uint8Array,
  chunk: ColumnChunk,
  element: SchemaElement,
  out: Column,
  rowStart: number,
  unit: 'MILLIS' | 'MICROS' | undefined,
  decompressors: Decompressors,
): number {
  const meta = chunk.meta_data
  if (!meta || chunk.file_path) throw new Unsupported('column chunk in another file')
  const optional = element.repetition_type === 'OPTIONAL'
  if (element.repetition_type === 'REPEATED') throw new Unsupported('repeated column')
  const start = Number(meta.dictionary_page_offset ?? meta.data_page_offset)
  const end = start + Number(meta.total_compressed_size)
  if (end > bytes.length) throw new Unsupported('chunk beyond the end of the file')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const reader: DataReader = { view, offset: start }
  const total = Number(meta.num_values)
  let dictionary: Dictionary | null = null
  let row = rowStart
  while (row - rowStart < total && reader.offset < end) {
    const header = parquetHeader(reader)
    const bodyStart = reader.offset
    const compressed = bytes.subarray(bodyStart, bodyStart + header.compressed_page_size)
    reader.offset = bodyStart + header.compressed_page_size
    if (header.type === 'DICTIONARY_PAGE') {
      const page = decompress(compressed, header.uncompressed_page_size, meta.codec, decompressors)
      const n = header.dictionary_page_header!.num_values
      dictionary = plainValues(page, 0, n, element, out, unit)
    } else if (header.type === 'DATA_PAGE') {
      const h = header.data_page_header!
      const page = decompress(compressed, header.uncompressed_page_size, meta.codec, decompressors)
      const n = h.num_values
      let pos = 0
      let defs: Uint8Array | null = null
      if (optional) {
        if (h.definition_level_encoding !== 'RLE') throw new Unsupported(`definition levels ${h.definition_level_encoding}`)
        const length = page.length >= 4 ? page[0] | (page[1] << 8) | (page[2] << 16) | (page[3] << 24) : -1
        if (length >= 0 && allPresent(page, 4, length, n)) pos = 4 + length
        else {
          defs = new Uint8Array(n)
          const r = { view: new DataView(page.buffer, page.byteOffset, page.byteLength), offset: 0 }
          readRleBitPackedHybrid(r, 1, defs)
          pos = r.offset
        }
      }
      decodeValues(page, pos, n, defs, h.encoding, dictionary, element, out, row, unit)
      row += n
    } else if (header.type === 'DATA_PAGE_V2') {
      const h = header.data_page_header_v2!
      if (h.repetition_levels_byte_length) throw new Unsupported('repetition levels')
      const n = h.num_values
      let defs: Uint8Array | null = null
      const defLength = h.definition_levels_byte_length
      if (optional && !allPresent(compressed, 0, defLength, n)) {
        defs = new Uint8Array(n)
        const r = { view: new DataView(compressed.buffer, compressed.byteOffset, compressed.byteLength), offset: 0 }
        readRleBitPackedHybrid(r, 1, defs, defLength)
      }
      const rest = compressed.subarray(defLength)
      const page = h.is_compressed ? decompress(rest, header.uncompressed_page_size - defLength, meta.codec, decompressors) : rest
      decodeValues(page, 0, n, defs, h.encoding, dictionary, element, out, row, unit)
      row += n
    } else {
      // index pages and unknown page types carry no values
    }
  }
  return row - rowStart
}

/**
 * Whether the definition levels in `bytes[at, at + length)` (RLE/bit-packed hybrid, bit width 1)
 * are one RLE run of 1s covering all `n` values: a column chunk without a null, as the lake
 * writes every OPTIONAL data column. Then no level array is needed.
 */
function allPresent(bytes: Uint8Array, at: number, length: number, n: number): boolean {
  const end = at + length
  if (length < 2 || end > bytes.length) return false
  let header = 0
  let shift = 0
  let p = at
  for (;;) {
    if (p >= end || shift > 28) return false
    const b = bytes[p++]
    header |= (b & 0x7f) << shift
    if (!(b & 0x80)) break
    shift += 7
  }
  // an RLE run (low bit 0) of `header >>> 1` values, its value in one byte, and nothing after it
  return (header & 1) === 0 && header >>> 1 >= n && p + 1 === end && bytes[p] === 1
}

function decompress(input: Uint8Array, size: number, codec: string, d: Decompressors): Uint8Array {
  switch (codec) {
    case 'UNCOMPRESSED':
      return input
    case 'SNAPPY': {
      if (d.SNAPPY) return d.SNAPPY(input, size)
      // a fresh buffer per page: nothing outlives a failed call
      const out = new Uint8Array(size)
      snappyUncompress(input, out)
      return out
    }
    case 'ZSTD':
      return d.ZSTD(input, size)
    default:
      throw new Unsupported(`codec ${codec}`)
  }
}

/** Decodes `n` values (nulls per `defs`) of one data page into `out` at `row`. */
function decodeValues(
  page: Uint8Array,
  pos: number,
  n: number,
  defs: Uint8Array | null,
  encoding: string,
  dictionary: Dictionary | null,
  element: SchemaElement,
  out: Column,
  row: number,
  unit: 'MILLIS' | 'MICROS' | undefined,
): void {
  let present = n
  if (defs) {
    present = 0
    for (let i = 0; i < n; i++) present += defs[i]
    // an OPTIONAL column without a null on this page (the lake writes every data column
    // OPTIONAL): decode it as a REQUIRED one, straight into the output
    if (present === n) defs = null
  }
  let dense: Dictionary
  if (encoding === 'PLAIN') {
    if (!defs && out.type !== 'string' && out.type !== 'boolean' && element.type !== 'INT32' && element.type !== 'FLOAT') {
      plainInto(page, pos, n, out, row, unit)
      return
    }
    dense = plainValues(page, pos, present, element, out, unit)
  } else if (encoding === 'RLE_DICTIONARY' || encoding === 'PLAIN_DICTIONARY') {
    if (!dictionary) throw new Unsupported('dictionary page missing')
    const width = page[pos]
    const indices = new Int32Array(present)
    if (present) {
      const r = { view: new DataView(page.buffer, page.byteOffset, page.byteLength), offset: pos + 1 }
      readRleBitPackedHybrid(r, width, indices, page.length - pos - 1)
    }
    dense = gather(dictionary, indices)
  } else if (encoding === 'RLE' && element.type === 'BOOLEAN') {
    const bits = new Uint8Array(present)
    const r = { view: new DataView(page.buffer, page.byteOffset, page.byteLength), offset: pos }
    readRleBitPackedHybrid(r, 1, bits)
    dense = bits
  } else throw new Unsupported(`encoding ${encoding}`)
  scatter(dense, defs, n, out, row)
}

/** PLAIN values of a column without nulls, written straight into the output. */
function plainInto(page: Uint8Array, pos: number, n: number, out: Column, row: number, unit: 'MILLIS' | 'MICROS' | undefined) {
  if (pos + n * 8 > page.length) throw new Unsupported('page too short')
  if (out.type === 'float64' || out.type === 'int64') {
    new Uint8Array(out.values.buffer, out.values.byteOffset + row * 8, n * 8).set(page.subarray(pos, pos + n * 8))
    return
  }
  if (out.type === 'timestamp') int64ToMicros(page, pos, n, out.values, row, unit)
}

function int64ToMicros(
  page: Uint8Array,
  pos: number,
  n: number,
  into: Float64Array,
  at: number,
  unit: 'MILLIS' | 'MICROS' | undefined,
) {
  const scale = unit === 'MILLIS' ? 1000 : 1
  const aligned = (page.byteOffset + pos) % 4 === 0
  const words = aligned
    ? new Int32Array(page.buffer, page.byteOffset + pos, n * 2)
    : new Int32Array(page.slice(pos, pos + n * 8).buffer)
  for (let i = 0; i < n; i++) into[at + i] = (words[2 * i + 1] * TWO_32 + (words[2 * i] >>> 0)) * scale
}

/** `n` PLAIN values from `page[pos...]` in the output column's representation. */
function plainValues(
  page: Uint8Array,
  pos: number,
  n: number,
  element: SchemaElement,
  out: Column,
  unit: 'MILLIS' | 'MICROS' | undefined,
): Dictionary {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
  switch (out.type) {
    case 'float64': {
      const values = new Float64Array(n)
      if (element.type === 'FLOAT') for (let i = 0; i < n; i++) values[i] = view.getFloat32(pos + 4 * i, true)
      else new Uint8Array(values.buffer).set(page.subarray(pos, pos + n * 8))
      return values
    }
    case 'timestamp': {
      const values = new Float64Array(n)
      int64ToMicros(page, pos, n, values, 0, unit)
      return values
    }
    case 'int64': {
      const values = new BigInt64Array(n)
      if (element.type === 'INT32') for (let i = 0; i < n; i++) values[i] = BigInt(view.getInt32(pos + 4 * i, true))
      else new Uint8Array(values.buffer).set(page.subarray(pos, pos + n * 8))
      return values
    }
    case 'boolean': {
      const values = new Uint8Array(n)
      for (let i = 0; i < n; i++) values[i] = (page[pos + (i >> 3)] >> (i & 7)) & 1
      return values
    }
    case 'string': {
      const values: string[] = new Array(n)
      let p = pos
      for (let i = 0; i < n; i++) {
        const len = view.getUint32(p, true)
        p += 4
        values[i] = decodeUtf8(page, p, p + len)
        p += len
      }
      if (p > page.length) throw new Unsupported('page too short')
      return values
    }
  }
}

/** Short ASCII strings without TextDecoder's per-call cost. */
function decodeUtf8(b: Uint8Array, start: number, end: number): string {
  if (end - start <= 24) {
    let s = ''
    for (let i = start; i < end; i++) {
      const c = b[i]
      if (c >= 0x80) return utf8.decode(b.subarray(start, end))
      s += String.fromCharCode(c)
    }
    return s
  }
  return utf8.decode(b.subarray(start, end))
}

function gather(dictionary: Dictionary, indices: Int32Array): Dictionary {
  const n = indices.length
  const size = dictionary.length
  for (let i = 0; i < n; i++) if (indices[i] >= size) throw new Unsupported('dictionary index out of range')
  if (Array.isArray(dictionary)) {
    const out: string[] = new Array(n)
    for (let i = 0; i < n; i++) out[i] = dictionary[indices[i]]
    return out
  }
  const out = new (dictionary.constructor as new (n: number) => typeof dictionary)(n)
  for (let i = 0; i < n; i++) out[i] = dictionary[indices[i]]
  return out
}

/** Dense values → output rows [row, row + n), nulls where `defs` is 0. */
function scatter(dense: Dictionary, defs: Uint8Array | null, n: number, out: Column, row: number): void {
  switch (out.type) {
    case 'float64':
    case 'timestamp': {
      const v = out.values
      const d = dense as Float64Array
      if (!defs) {
        v.set(d.subarray(0, n), row)
        return
      }
      for (let i = 0, j = 0; i < n; i++) v[row + i] = defs[i] ? d[j++] : Number.NaN
      return
    }
    case 'int64': {
      const d = dense as BigInt64Array
      if (!defs) {
        out.values.set(d.subarray(0, n), row)
        return
      }
      for (let i = 0, j = 0; i < n; i++) {
        if (defs[i]) out.values[row + i] = d[j++]
        else {
          out.nulls ??= new Uint8Array(out.values.length)
          out.nulls[row + i] = 1
        }
      }
      return
    }
    case 'boolean': {
      const d = dense as Uint8Array
      for (let i = 0, j = 0; i < n; i++) out.values[row + i] = !defs || defs[i] ? d[j++] : BOOL_NULL
      return
    }
    case 'string': {
      const d = dense as string[]
      const v = out.values
      for (let i = 0, j = 0; i < n; i++) v[row + i] = !defs || defs[i] ? d[j++] : null
      return
    }
  }
}
