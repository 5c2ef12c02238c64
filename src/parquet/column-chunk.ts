/**
 * One column chunk (one column of one row group) as Parquet pages, straight from our typed-array
 * columns: a v1 data page (PLAIN, or RLE_DICTIONARY after a dictionary page for strings), the
 * definition levels of an OPTIONAL column, and the chunk's statistics.
 */

import { BOOL_NULL, type Column } from '../core/types.js'
import { Bytes } from './bytes.js'
import { bitWidth, writeBitPackedBooleans, writeHybrid, writeRepeated } from './rle.js'
import { CompactWriter } from './thrift-compact.js'
import { DataPageHeaderField, DictionaryPageHeaderField, Encoding, PageHeaderField, PageType, Type } from './thrift-ids.js'

/** A page compressor; `null` = UNCOMPRESSED. */
export interface PageCodec {
  id: number
  compress: ((input: Uint8Array) => Uint8Array) | null
}

export interface ChunkStats {
  min?: Uint8Array
  max?: Uint8Array
  nullCount: number
  /** Also write the deprecated `min`/`max` fields (signed-order types only). */
  legacy: boolean
}

export interface ChunkMeta {
  type: number
  encodings: number[]
  codec: number
  numValues: number
  uncompressedSize: number
  compressedSize: number
  dataPageOffset: number
  dictionaryPageOffset?: number
  stats: ChunkStats
}

/** Dictionaries larger than this fall back to PLAIN strings. */
const MAX_DICT_ENTRIES = 1 << 16
const MAX_DICT_BYTES = 1 << 20
/** String statistics longer than this are left out rather than truncated. */
const MAX_STAT_BYTES = 64
const TWO_32 = 4294967296

export function physicalType(type: Column['type']): number {
  switch (type) {
    case 'float64':
      return Type.DOUBLE
    case 'timestamp':
    case 'int64':
      return Type.INT64
    case 'boolean':
      return Type.BOOLEAN
    case 'string':
      return Type.BYTE_ARRAY
  }
}

/**
 * Writes rows [from, to) of `col` to `out` as one column chunk. A REQUIRED column must hold no
 * null (throws naming the row); an OPTIONAL one gets definition levels.
 */
export function writeColumnChunk(
  out: Bytes,
  name: string,
  col: Column,
  from: number,
  to: number,
  required: boolean,
  codec: PageCodec,
): ChunkMeta {
  const n = to - from
  // page bodies are built here, then compressed (or copied) into the file; one buffer per call,
  // so a call that fails part-way cannot leave state that changes a later one
  const body = new Bytes(64 * 1024)
  const present = presence(col, from, to)
  const nullCount = present ? n - countPresent(present) : 0
  if (required && nullCount) throw new Error(`column '${name}' is required but row ${from + present!.indexOf(0)} is null`)
  const start = out.pos
  let uncompressedSize = 0
  let dictionaryPageOffset: number | undefined
  let encoding: number = Encoding.PLAIN

  let dict: { entries: string[]; indices: Int32Array } | null = null
  if (col.type === 'string') dict = buildDictionary(col.values, from, to)
  if (dict) {
    dictionaryPageOffset = out.pos
    body.pos = 0
    for (const s of dict.entries) {
      const at = body.pos
      body.u32(0)
      const len = body.utf8(s)
      body.view.setUint32(at, len, true)
    }
    uncompressedSize += writePage(out, body, PageType.DICTIONARY_PAGE, dict.entries.length, Encoding.PLAIN, codec)
    encoding = Encoding.RLE_DICTIONARY
  }

  const dataPageOffset = out.pos
  body.pos = 0
  if (!required) {
    const at = body.pos
    body.u32(0)
    if (present) writeHybrid(body, present, n, 1)
    else writeRepeated(body, 1, n, 1) // no null: every level 1
    body.view.setUint32(at, body.pos - at - 4, true)
  }
  if (dict) {
    const width = bitWidth(Math.max(0, dict.entries.length - 1))
    body.u8(width)
    writeHybrid(body, dict.indices, dict.indices.length, width)
  } else writePlainValues(body, col, from, to, present)
  uncompressedSize += writePage(out, body, PageType.DATA_PAGE, n, encoding, codec)

  const encodings: number[] = dict ? [Encoding.PLAIN, Encoding.RLE, Encoding.RLE_DICTIONARY] : [Encoding.PLAIN]
  if (!dict && !required) encodings.push(Encoding.RLE)
  return {
    type: physicalType(col.type),
    encodings,
    codec: codec.id,
    numValues: n,
    uncompressedSize,
    compressedSize: out.pos - start,
    dataPageOffset,
    dictionaryPageOffset,
    stats: { ...minMax(col, from, to, present, dict?.entries), nullCount, legacy: col.type !== 'string' },
  }
}

/** Writes the page in `body` (header + compressed body) to `out`; returns its uncompressed size incl. header. */
function writePage(out: Bytes, body: Bytes, type: number, numValues: number, encoding: number, codec: PageCodec): number {
  const raw = body.written()
  const data = codec.compress ? codec.compress(raw) : raw
  const headerStart = out.pos
  const t = new CompactWriter(out)
  t.begin()
  t.i32(PageHeaderField.TYPE, type)
  t.i32(PageHeaderField.UNCOMPRESSED_PAGE_SIZE, raw.length)
  t.i32(PageHeaderField.COMPRESSED_PAGE_SIZE, data.length)
  if (type === PageType.DATA_PAGE) {
    t.struct(PageHeaderField.DATA_PAGE_HEADER)
    t.i32(DataPageHeaderField.NUM_VALUES, numValues)
    t.i32(DataPageHeaderField.ENCODING, encoding)
    t.i32(DataPageHeaderField.DEFINITION_LEVEL_ENCODING, Encoding.RLE)
    t.i32(DataPageHeaderField.REPETITION_LEVEL_ENCODING, Encoding.RLE)
    t.end()
  } else {
    t.struct(PageHeaderField.DICTIONARY_PAGE_HEADER)
    t.i32(DictionaryPageHeaderField.NUM_VALUES, numValues)
    t.i32(DictionaryPageHeaderField.ENCODING, encoding)
    t.end()
  }
  t.end()
  const headerSize = out.pos - headerStart
  out.bytes(data)
  return headerSize + raw.length
}

/** 1 = value present, 0 = null, for rows [from, to); null when the column has no null there. */
function presence(col: Column, from: number, to: number): Uint8Array | null {
  const first = firstNull(col, from, to)
  if (first < 0) return null
  const mask = new Uint8Array(to - from).fill(1)
  for (let i = first; i < to; i++) if (isNullAt(col, i)) mask[i - from] = 0
  return mask
}

/** Index of the first null in rows [from, to), or -1 (tight loops: this runs on every column chunk). */
export function firstNull(col: Column, from: number, to: number): number {
  switch (col.type) {
    case 'float64':
    case 'timestamp': {
      const v = col.values
      for (let i = from; i < to; i++) if (v[i] !== v[i]) return i
      return -1
    }
    case 'int64': {
      const nulls = col.nulls
      if (nulls) for (let i = from; i < to; i++) if (nulls[i] === 1) return i
      return -1
    }
    case 'boolean': {
      const v = col.values
      for (let i = from; i < to; i++) if (v[i] === BOOL_NULL) return i
      return -1
    }
    case 'string': {
      const v = col.values
      for (let i = from; i < to; i++) if (v[i] === null) return i
      return -1
    }
  }
}

function isNullAt(col: Column, i: number): boolean {
  switch (col.type) {
    case 'float64':
    case 'timestamp':
      return col.values[i] !== col.values[i]
    case 'int64':
      return col.nulls?.[i] === 1
    case 'boolean':
      return col.values[i] === BOOL_NULL
    case 'string':
      return col.values[i] === null
  }
}

function countPresent(mask: Uint8Array): number {
  let c = 0
  for (let i = 0; i < mask.length; i++) c += mask[i]
  return c
}

/** Non-null values of rows [from, to) of a numeric column, as a contiguous array. */
function compact<T extends Float64Array | BigInt64Array>(v: T, from: number, to: number, present: Uint8Array | null): T {
  if (!present) return v.subarray(from, to) as T
  const out = new (v.constructor as new (n: number) => T)(countPresent(present))
  let k = 0
  for (let i = from; i < to; i++) if (present[i - from]) out[k++] = v[i]
  return out
}

function writePlainValues(out: Bytes, col: Column, from: number, to: number, present: Uint8Array | null): void {
  switch (col.type) {
    case 'float64':
      out.typed(compact(col.values, from, to, present))
      return
    case 'int64':
      out.typed(compact(col.values, from, to, present))
      return
    case 'timestamp': {
      out.typed(microsToInt64(compact(col.values, from, to, present)))
      return
    }
    case 'boolean': {
      const v = col.values
      const bits = present ? new Uint8Array(countPresent(present)) : v.subarray(from, to)
      if (present) {
        let k = 0
        for (let i = from; i < to; i++) if (present[i - from]) bits[k++] = v[i]
      }
      writeBitPackedBooleans(out, bits, bits.length)
      return
    }
    case 'string': {
      const v = col.values
      for (let i = from; i < to; i++) {
        const s = v[i]
        if (s === null) continue
        const at = out.pos
        out.u32(0)
        const len = out.utf8(s)
        out.view.setUint32(at, len, true)
      }
      return
    }
  }
}

/** Dictionary entries (in first-seen order) and per-non-null-value indices, or null when too large. */
function buildDictionary(values: (string | null)[], from: number, to: number): { entries: string[]; indices: Int32Array } | null {
  const ids = new Map<string, number>()
  const entries: string[] = []
  const indices = new Int32Array(to - from)
  let k = 0
  let bytes = 0
  let prev: string | null = null
  let prevId = -1
  for (let i = from; i < to; i++) {
    const s = values[i]
    if (s === null) continue
    if (s === prev) {
      indices[k++] = prevId
      continue
    }
    let id = ids.get(s)
    if (id === undefined) {
      id = entries.length
      ids.set(s, id)
      entries.push(s)
      bytes += s.length + 4
      if (entries.length > MAX_DICT_ENTRIES || bytes > MAX_DICT_BYTES) return null
    }
    indices[k++] = id
    prev = s
    prevId = id
  }
  return { entries, indices: indices.subarray(0, k) }
}

/** Min and max as PLAIN-encoded bytes (NaN and nulls skipped; -0/+0 per the spec), or nothing. */
function minMax(
  col: Column,
  from: number,
  to: number,
  present: Uint8Array | null,
  dictEntries: string[] | undefined,
): { min?: Uint8Array; max?: Uint8Array } {
  switch (col.type) {
    case 'float64':
    case 'timestamp': {
      const v = col.values
      let min = Number.POSITIVE_INFINITY
      let max = Number.NEGATIVE_INFINITY
      for (let i = from; i < to; i++) {
        const x = v[i]
        if (x < min) min = x
        if (x > max) max = x
      }
      if (min > max) return {}
      if (col.type === 'timestamp') return { min: int64Bytes(min), max: int64Bytes(max) }
      if (min === 0) min = -0
      if (max === 0) max = 0
      return { min: f64Bytes(min), max: f64Bytes(max) }
    }
    case 'int64': {
      const v = col.values
      let min: bigint | null = null
      let max: bigint | null = null
      for (let i = from; i < to; i++) {
        if (present && !present[i - from]) continue
        const x = v[i]
        if (min === null || x < min) min = x
        if (max === null || x > max) max = x
      }
      if (min === null || max === null) return {}
      const b = new BigInt64Array([min, max])
      return { min: new Uint8Array(b.buffer, 0, 8), max: new Uint8Array(b.buffer, 8, 8) }
    }
    case 'boolean': {
      let t = false
      let f = false
      const v = col.values
      for (let i = from; i < to; i++) {
        if (v[i] === 1) t = true
        else if (v[i] === 0) f = true
      }
      if (!t && !f) return {}
      return { min: Uint8Array.of(f ? 0 : 1), max: Uint8Array.of(t ? 1 : 0) }
    }
    case 'string': {
      const candidates = dictEntries ?? (col.values.slice(from, to).filter((s) => s !== null) as string[])
      if (!candidates.length) return {}
      let min = candidates[0]
      let max = candidates[0]
      for (const s of candidates) {
        if (compareCodePoints(s, min) < 0) min = s
        if (compareCodePoints(s, max) > 0) max = s
      }
      const enc = new TextEncoder()
      const minBytes = enc.encode(min)
      const maxBytes = enc.encode(max)
      if (minBytes.length > MAX_STAT_BYTES || maxBytes.length > MAX_STAT_BYTES) return {}
      return { min: minBytes, max: maxBytes }
    }
  }
}

function f64Bytes(x: number): Uint8Array {
  return new Uint8Array(new Float64Array([x]).buffer)
}

function int64Bytes(x: number): Uint8Array {
  return new Uint8Array(new BigInt64Array([BigInt(x)]).buffer)
}

/** Compares in Unicode code point order (= UTF-8 byte order, the order of Parquet string statistics). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    // surrogates (code points above U+FFFF) sort after U+E000..U+FFFF in code point order
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys) return (xs ? 0x10000 : x) - (ys ? 0x10000 : y)
    return x - y
  }
  return a.length - b.length
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
