/**
 * Rows of a `Table` as PostgreSQL binary COPY data (`COPY ... FROM STDIN (FORMAT binary)`),
 * encoded column by column into preallocated chunks. Values arrive bit-exact with no text
 * formatting or parsing on either side: float64 as its 8 IEEE bytes, timestamps as int64 µs
 * since 2000-01-01, int64 as 8 bytes, booleans as one byte, strings as UTF-8; null = length -1.
 */

import { BOOL_NULL, type Schema, type Table } from '../../core/types.js'

/** `PGCOPY\n\377\r\n\0`, flags (int32 0), header extension length (int32 0). */
const HEADER = new Uint8Array([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0])
const TRAILER_BYTES = 2 // int16 -1
const PG_EPOCH_US = 946_684_800_000_000 // 2000-01-01T00:00:00Z in epoch µs
const PG_EPOCH_US_BIG = 946_684_800_000_000n
const TWO_32 = 4_294_967_296
const FIXED_WIDTH = { float64: 8, timestamp: 8, int64: 8, boolean: 1 } as const

/** Rows per chunk: about 1.3 MB of minute bars. */
export const COPY_CHUNK_ROWS = 16_384
/** Bytes per chunk at most, unless one row is larger (wide string columns). */
const CHUNK_BYTES = 8 << 20

const encoder = new TextEncoder()

/** UTF-8 byte length of `s` as `TextEncoder` encodes it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(s: string): number {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2 // a surrogate pair: 2 units, 4 bytes
      i++
    } else n += 2
  }
  return n
}

/**
 * The binary COPY stream of rows `[start, end)` of `table`, fields in the order of `columns`
 * (each must be a column of `table`), in chunks of at most `chunkRows` rows and, past the first
 * row, `CHUNK_BYTES`: the first chunk starts with the header, the last ends with the trailer.
 * Nothing is encoded before it is asked for.
 */
export function* copyBinaryChunks(
  table: Table,
  columns: Schema,
  start = 0,
  end = table.length,
  chunkRows = COPY_CHUNK_ROWS,
): Generator<Uint8Array> {
  if (end <= start) {
    const only = new Uint8Array(HEADER.length + TRAILER_BYTES)
    only.set(HEADER)
    new DataView(only.buffer).setInt16(HEADER.length, -1)
    yield only
    return
  }
  for (let lo = start; lo < end; ) {
    const chunk = encodeChunk(table, columns, lo, Math.min(end, lo + chunkRows), lo === start, end)
    lo = chunk.next
    yield chunk.bytes
  }
}

/** Rows `[lo, hi)`, cut short after `CHUNK_BYTES`; `next` = the first row not encoded. */
function encodeChunk(
  table: Table,
  columns: Schema,
  lo: number,
  hi: number,
  first: boolean,
  end: number,
): { bytes: Uint8Array; next: number } {
  let n = hi - lo
  // pass 1: the size of every row (field count, length words, non-null values)
  const pos = new Int32Array(n).fill(2 + 4 * columns.length)
  const stringBytes: (Int32Array | null)[] = []
  for (const c of columns) {
    const col = table.columns[c.name]
    if (!col) throw new Error(`column ${c.name} is not in the table`)
    if (col.type !== c.type) throw new Error(`column ${c.name} is ${col.type} where ${c.type} was expected`)
    let lens: Int32Array | null = null
    switch (col.type) {
      case 'float64':
      case 'timestamp':
        for (let i = 0; i < n; i++) if (!Number.isNaN(col.values[lo + i])) pos[i] += 8
        break
      case 'int64':
        for (let i = 0; i < n; i++) if (col.nulls?.[lo + i] !== 1) pos[i] += 8
        break
      case 'boolean':
        for (let i = 0; i < n; i++) if (col.values[lo + i] !== BOOL_NULL) pos[i] += 1
        break
      case 'string':
        lens = new Int32Array(n)
        for (let i = 0; i < n; i++) {
          const v = col.values[lo + i]
          lens[i] = v === null || v === undefined ? -1 : utf8Length(v)
          if (lens[i] > 0) pos[i] += lens[i]
        }
        break
    }
    stringBytes.push(lens)
  }
  // row sizes -> row start offsets, stopping once the chunk is big enough
  let size = first ? HEADER.length : 0
  for (let i = 0; i < n; i++) {
    if (i > 0 && size + pos[i] > CHUNK_BYTES) {
      n = i
      break
    }
    const rowBytes = pos[i]
    pos[i] = size
    size += rowBytes
  }
  const last = lo + n === end
  const out = new Uint8Array(size + (last ? TRAILER_BYTES : 0))
  const view = new DataView(out.buffer)
  if (first) out.set(HEADER)
  for (let i = 0; i < n; i++) {
    view.setInt16(pos[i], columns.length)
    pos[i] += 2
  }
  // pass 2: one column at a time, each row's cursor advancing
  for (let k = 0; k < columns.length; k++) {
    const col = table.columns[columns[k].name]
    switch (col.type) {
      case 'float64':
        for (let i = 0; i < n; i++) {
          const v = col.values[lo + i]
          const p = pos[i]
          if (Number.isNaN(v)) {
            view.setInt32(p, -1)
            pos[i] = p + 4
          } else {
            view.setInt32(p, FIXED_WIDTH.float64)
            view.setFloat64(p + 4, v)
            pos[i] = p + 12
          }
        }
        break
      case 'timestamp':
        for (let i = 0; i < n; i++) {
          const us = col.values[lo + i]
          const p = pos[i]
          if (Number.isNaN(us)) {
            view.setInt32(p, -1)
            pos[i] = p + 4
            continue
          }
          view.setInt32(p, FIXED_WIDTH.timestamp)
          const v = us - PG_EPOCH_US
          if (Number.isSafeInteger(us) && Number.isSafeInteger(v)) {
            const high = Math.floor(v / TWO_32)
            view.setInt32(p + 4, high)
            view.setUint32(p + 8, v - high * TWO_32)
          } else {
            view.setBigInt64(p + 4, BigInt(us) - PG_EPOCH_US_BIG)
          }
          pos[i] = p + 12
        }
        break
      case 'int64':
        for (let i = 0; i < n; i++) {
          const p = pos[i]
          if (col.nulls?.[lo + i] === 1) {
            view.setInt32(p, -1)
            pos[i] = p + 4
          } else {
            view.setInt32(p, FIXED_WIDTH.int64)
            view.setBigInt64(p + 4, col.values[lo + i])
            pos[i] = p + 12
          }
        }
        break
      case 'boolean':
        for (let i = 0; i < n; i++) {
          const v = col.values[lo + i]
          const p = pos[i]
          if (v === BOOL_NULL) {
            view.setInt32(p, -1)
            pos[i] = p + 4
          } else {
            view.setInt32(p, FIXED_WIDTH.boolean)
            out[p + 4] = v === 1 ? 1 : 0
            pos[i] = p + 5
          }
        }
        break
      case 'string': {
        const lens = stringBytes[k] as Int32Array
        for (let i = 0; i < n; i++) {
          const len = lens[i]
          let p = pos[i]
          view.setInt32(p, len)
          p += 4
          if (len > 0) {
            const v = col.values[lo + i] as string
            if (len === v.length) for (let j = 0; j < len; j++) out[p + j] = v.charCodeAt(j)
            else encoder.encodeInto(v, out.subarray(p, p + len))
            p += len
          }
          pos[i] = p
        }
        break
      }
    }
  }
  if (last) view.setInt16(size, -1)
  return { bytes: out, next: lo + n }
}
