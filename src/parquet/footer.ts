/**
 * The one Parquet footer reader: every caller (the decoder's full reads, the in-memory fast
 * path's lean read, the strict ingest of uploaded bodies, maintenance's verification) reads a
 * file's FileMetaData here. The magic and the footer length are checked once, in
 * `metadataLength`; the full parse is hyparquet's, the lean one ours (`footer-lean.ts`).
 */

import type { FileMetaData, ParquetParsers } from 'hyparquet'
import { parquetMetadata } from 'hyparquet/src/metadata.js'
import { parseFooterLean } from './footer-lean.js'

/** File bytes, or a random-access reader (e.g. ranged GETs against object storage). */
export type ParquetSource =
  | Uint8Array
  | { byteLength: number; slice(start: number, end?: number): Promise<ArrayBuffer> | ArrayBuffer }

export interface FooterOptions {
  /**
   * Only what decoding pages needs (schema, row counts, chunk codecs, offsets, sizes): no
   * statistics, encodings or key/value metadata. Default false: everything, through hyparquet.
   */
  lean?: boolean
}

/** Statistics and (for foreign files) values come back as epoch-µs numbers, never Dates. */
export const PARSERS: Partial<ParquetParsers> = {
  timestampFromMilliseconds: (v: bigint) => Number(v) * 1000,
  timestampFromMicroseconds: (v: bigint) => Number(v),
  timestampFromNanoseconds: (v: bigint) => Number(v / 1000n),
}

/** 'PAR1' read as a little-endian u32. */
const MAGIC = 0x31524150
/** What follows the FileMetaData: its length (u32, little-endian) and the magic. */
const TAIL = 8
/** Footer bytes fetched up front from a remote file: one request for most footers. */
const FOOTER_FETCH = 64 * 1024

/**
 * Length of the FileMetaData that ends `tail`, the last bytes of a file of `fileLength` bytes.
 * Throws naming what is wrong: too short, no `PAR1` at the end, a length that does not fit.
 */
function metadataLength(tail: Uint8Array, fileLength: number): number {
  const n = tail.length
  if (fileLength < 12 || n < TAIL) throw new Error(`parquet file is too short (${fileLength} bytes)`)
  const view = new DataView(tail.buffer, tail.byteOffset, n)
  if (view.getUint32(n - 4, true) !== MAGIC) throw new Error('parquet file invalid (footer != PAR1)')
  const length = view.getUint32(n - TAIL, true)
  if (length === 0 || length > fileLength - 12) {
    throw new Error(`parquet metadata length ${length} does not fit in a file of ${fileLength} bytes`)
  }
  return length
}

/** Parses the FileMetaData + tail at the end of `bytes` (`length` from `metadataLength`). */
function parse(bytes: Uint8Array, length: number, lean: boolean | undefined): FileMetaData {
  const end = bytes.length - TAIL
  if (lean) return parseFooterLean(bytes.subarray(end - length, end))
  return parquetMetadata(bytes.subarray(end - length), { parsers: PARSERS })
}

/** The footer of a whole file held in memory (read in place). Throws an `Error` naming what is wrong. */
export function readFooter(bytes: Uint8Array, options: FooterOptions = {}): FileMetaData {
  return parse(bytes, metadataLength(bytes, bytes.length), options.lean)
}

/**
 * The footer of `source`. For a byte array it reads it in place; for a remote reader it fetches
 * the last 64 KiB (and, for a larger footer, the rest of it) and nothing else.
 */
export async function readParquetMetadata(source: ParquetSource, options: FooterOptions = {}): Promise<FileMetaData> {
  if (source instanceof Uint8Array) return readFooter(source, options)
  const size = source.byteLength
  const from = Math.max(0, size - FOOTER_FETCH)
  let tail = new Uint8Array(await source.slice(from, size))
  const length = metadataLength(tail, size)
  if (length + TAIL > tail.length) {
    const head = new Uint8Array(await source.slice(size - TAIL - length, from))
    const whole = new Uint8Array(head.length + tail.length)
    whole.set(head)
    whole.set(tail, head.length)
    tail = whole
  }
  return parse(tail, length, options.lean)
}
