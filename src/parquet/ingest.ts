/**
 * Parquet files that nobody here wrote (HTTP request bodies) → our Table, strictly: every
 * column is stored exactly or the file is refused with a 4xx naming the column and its type.
 * Nothing in the file is trusted: row counts, page counts and page sizes are checked against
 * the body and against `ParquetIngestLimits` before anything is allocated or decompressed, a
 * page may not decompress to more than its header claims, decoded counts must match the claims,
 * and decoding yields to the event loop between pages. No state outlives a call.
 */

import { Decompress as ZstdStream } from 'fzstd'
import type { ColumnChunk, CompressionCodec, FileMetaData, PageHeader, SchemaElement, SchemaTree } from 'hyparquet'
import { parquetHeader, readPage } from 'hyparquet/src/column.js'
import { parquetSchema } from 'hyparquet/src/metadata.js'
import { readVarInt } from 'hyparquet/src/thrift.js'
import type { ColumnDecoder } from 'hyparquet/src/types.js'
import { StorageError, ValidationError } from '../core/errors.js'
import { BOOL_NULL, type Column, type ColumnType, type Table } from '../core/types.js'
import { readFooter } from './footer.js'

/** What one body may claim; each is answered with a 413 when passed. */
export interface ParquetIngestLimits {
  /** Rows the file may hold (sum over row groups). */
  maxRows: number
  /** Rows x columns: bounds the decoded table's memory. */
  maxCells: number
  /** Uncompressed size of one page, as its header claims it. */
  maxPageBytes: number
  /** Uncompressed size of all pages together. */
  maxDecodedBytes: number
}

export const DEFAULT_PARQUET_INGEST_LIMITS: Readonly<ParquetIngestLimits> = Object.freeze({
  maxRows: 10_000_000,
  maxCells: 100_000_000,
  maxPageBytes: 16 * 1024 * 1024,
  maxDecodedBytes: 512 * 1024 * 1024,
})

/** Codecs decoded here; any other is a 415 naming it. */
const CODECS = new Set<CompressionCodec>(['UNCOMPRESSED', 'SNAPPY', 'ZSTD'])
/** Decoded bytes between two yields to the event loop. */
const YIELD_EVERY_BYTES = 4 * 1024 * 1024
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** How a file column's raw physical values become one of our columns. */
type Kind = 'int32' | 'uint32' | 'int64' | 'uint64' | 'double' | 'boolean' | 'string' | 'ts-ms' | 'ts-us' | 'ts-ns'

interface Plan {
  name: string
  kind: Kind
  type: ColumnType
  element: SchemaElement
  /** The element with its annotations stripped: hyparquet hands back raw physical values. */
  raw: SchemaElement
  schemaPath: SchemaTree[]
  leaf: number
}

/** The type of a file column as messages name it: `INT32 DECIMAL(9,2)`, `BYTE_ARRAY JSON`. */
function describe(e: SchemaElement): string {
  const logical = e.logical_type
  let note = ''
  if (logical) {
    const l = logical as Record<string, unknown>
    if (l.type === undefined) note = ' (an unknown logical type)'
    else if (l.type === 'DECIMAL') note = ` DECIMAL(${l.precision},${l.scale})`
    else if (l.type === 'TIMESTAMP' || l.type === 'TIME') note = ` ${l.type}(${l.unit})`
    else if (l.type === 'INTEGER') note = ` ${l.isSigned ? 'INT' : 'UINT'}(${l.bitWidth})`
    else note = ` ${String(l.type)}`
  } else if (e.converted_type) note = ` ${e.converted_type}`
  const width = e.type === 'FIXED_LEN_BYTE_ARRAY' ? `(${e.type_length})` : ''
  return `${e.type ?? 'group'}${width}${note}`
}

function refuse(column: string, message: string, row?: number): ValidationError {
  return new ValidationError([{ field: column, message, ...(row !== undefined ? { row } : {}) }])
}

function unsupported(column: string, e: SchemaElement, why: string): ValidationError {
  return refuse(column, `Parquet column '${column}' has type ${describe(e)}, which is not accepted: ${why}`)
}

function malformed(message: string): ValidationError {
  return new ValidationError([{ field: 'body', message: `not a valid Parquet file: ${message}` }])
}

/** A 413 shaped as the other input limits' answers (`limit_exceeded`, `details.limit`, `details.value`). */
function tooLarge(what: string, claimed: number, limit: number, name: string): StorageError {
  return new StorageError(
    413,
    'limit_exceeded',
    `the Parquet body claims ${claimed} ${what}, above the limit of ${limit} (limits.${name})`,
    {
      limit: name,
      value: limit,
    },
  )
}

/** The kind of a flat column, or a 400 naming it and its type. */
function kindOf(name: string, e: SchemaElement): { kind: Kind; type: ColumnType } {
  const logical = e.logical_type as { type?: string; unit?: string; isSigned?: boolean; bitWidth?: number } | undefined
  const lt = logical?.type
  const ct = e.converted_type
  // a logical type newer than this reader: its raw physical values would not mean what the writer meant
  if (logical && !lt) return refuse2(name, e, 'its logical type is unknown to this reader')
  if (lt === 'DECIMAL' || ct === 'DECIMAL') return refuse2(name, e, 'decimals are not stored (no exact decimal column type)')
  switch (e.type) {
    case 'BOOLEAN':
      if (lt || ct) break
      return { kind: 'boolean', type: 'boolean' }
    case 'INT32': {
      if (!lt && !ct) return { kind: 'int32', type: 'int64' }
      if (lt === 'INTEGER') return { kind: logical?.isSigned === false ? 'uint32' : 'int32', type: 'int64' }
      if (!lt && ct && /^INT_(8|16|32)$/.test(ct)) return { kind: 'int32', type: 'int64' }
      if (!lt && ct && /^UINT_(8|16|32)$/.test(ct)) return { kind: 'uint32', type: 'int64' }
      if (lt === 'DATE' || ct === 'DATE')
        return refuse2(name, e, 'dates are not stored (no date column type); send them as timestamps')
      if (lt === 'TIME' || ct === 'TIME_MILLIS') return refuse2(name, e, 'times of day are not stored (no time column type)')
      break
    }
    case 'INT64': {
      if (!lt && !ct) return { kind: 'int64', type: 'int64' }
      if (lt === 'INTEGER') return { kind: logical?.isSigned === false ? 'uint64' : 'int64', type: 'int64' }
      if (!lt && ct === 'INT_64') return { kind: 'int64', type: 'int64' }
      if (!lt && ct === 'UINT_64') return { kind: 'uint64', type: 'int64' }
      const unit =
        lt === 'TIMESTAMP'
          ? logical?.unit
          : ct === 'TIMESTAMP_MILLIS'
            ? 'MILLIS'
            : ct === 'TIMESTAMP_MICROS'
              ? 'MICROS'
              : undefined
      if (unit === 'MILLIS') return { kind: 'ts-ms', type: 'timestamp' }
      if (unit === 'MICROS') return { kind: 'ts-us', type: 'timestamp' }
      if (unit === 'NANOS') return { kind: 'ts-ns', type: 'timestamp' }
      if (lt === 'TIME' || ct === 'TIME_MICROS') return refuse2(name, e, 'times of day are not stored (no time column type)')
      break
    }
    case 'FLOAT':
    case 'DOUBLE':
      if (lt || ct) break
      return { kind: 'double', type: 'float64' }
    case 'BYTE_ARRAY':
      if (lt === 'STRING' || lt === 'ENUM' || (!lt && (ct === 'UTF8' || ct === 'ENUM'))) return { kind: 'string', type: 'string' }
      if (lt === 'JSON' || ct === 'JSON') return refuse2(name, e, 'JSON values are not stored; send them as a STRING column')
      if (!lt && !ct) return refuse2(name, e, 'binary values are not stored; send text as a STRING (UTF8) column')
      break
    case 'INT96':
      return refuse2(name, e, 'INT96 timestamps are not stored; write timestamps as INT64 TIMESTAMP(MICROS)')
    case 'FIXED_LEN_BYTE_ARRAY':
      return refuse2(name, e, 'fixed-length byte arrays (float16, UUID, interval, wide decimal) are not stored')
  }
  return refuse2(name, e, 'this annotation is not supported')
}

function refuse2(name: string, e: SchemaElement, why: string): never {
  throw unsupported(name, e, why)
}

/** Each top-level column of the file, planned; nested, repeated and unknown ones are refused. */
function planColumns(metadata: FileMetaData): Plan[] {
  let root: SchemaTree
  try {
    root = parquetSchema(metadata)
  } catch (error) {
    throw malformed(`the schema is damaged (${(error as Error).message})`)
  }
  const plans: Plan[] = []
  const seen = new Set<string>()
  let leaf = 0
  for (const child of root.children) {
    const e = child.element
    const name = e.name
    if (seen.has(name)) throw refuse(name, `Parquet column '${name}' appears twice`)
    seen.add(name)
    if (child.children.length || e.num_children) {
      const l = (e.logical_type as { type?: string } | undefined)?.type ?? e.converted_type ?? 'group'
      throw refuse(name, `Parquet column '${name}' is nested (${l}), which is not accepted: only flat columns are stored`)
    }
    if (e.repetition_type === 'REPEATED') {
      throw refuse(
        name,
        `Parquet column '${name}' is repeated (${describe(e)}), which is not accepted: only flat columns are stored`,
      )
    }
    const { kind, type } = kindOf(name, e)
    const { converted_type: _c, logical_type: _l, ...raw } = e
    plans.push({ name, kind, type, element: e, raw, schemaPath: [root, { ...child, element: raw }], leaf })
    leaf++
  }
  return plans
}

/** Pages of one column chunk, checked against the body, the claims and the limits. */
function scanChunk(
  bytes: Uint8Array,
  plan: Plan,
  chunk: ColumnChunk,
  rows: number,
  limits: ParquetIngestLimits,
  budget: { decoded: number },
): { start: number; end: number } {
  const meta = chunk.meta_data
  const name = plan.name
  if (!meta || chunk.file_path) throw malformed(`column '${name}' has a chunk without metadata or in another file`)
  if (meta.path_in_schema.length !== 1 || meta.path_in_schema[0] !== name)
    throw malformed(`column chunk order does not match the schema at '${name}'`)
  if (meta.type !== plan.raw.type)
    throw malformed(`column '${name}' chunk type ${meta.type} differs from its schema type ${plan.raw.type}`)
  if (!CODECS.has(meta.codec)) {
    throw new StorageError(
      415,
      'unsupported_codec',
      `Parquet column '${name}' uses the unsupported codec ${meta.codec} (accepted: UNCOMPRESSED, SNAPPY, ZSTD)`,
      {
        column: name,
        codec: meta.codec,
      },
    )
  }
  if (Number(meta.num_values) !== rows)
    throw malformed(`column '${name}' claims ${meta.num_values} values in a row group of ${rows} rows`)
  // an empty row group holds nothing to read: writers leave its offsets at 0 or pointing anywhere
  if (rows === 0) return { start: 0, end: 0 }
  const dict = meta.dictionary_page_offset !== undefined ? Number(meta.dictionary_page_offset) : undefined
  const data = Number(meta.data_page_offset)
  const start = dict !== undefined && dict > 0 && dict < data ? dict : data
  const end = start + Number(meta.total_compressed_size)
  if (!(start >= 4 && end <= bytes.length - 8 && end >= start)) throw malformed(`column '${name}' lies outside the file`)
  const reader = { view: new DataView(bytes.buffer, bytes.byteOffset, end), offset: start }
  let values = 0
  while (reader.offset < end && values < rows) {
    let header: PageHeader
    try {
      header = parquetHeader(reader)
    } catch (error) {
      throw malformed(`column '${name}': bad page header (${(error as Error).message})`)
    }
    const size = Number(header.uncompressed_page_size)
    const compressed = Number(header.compressed_page_size)
    if (!(compressed >= 0 && reader.offset + compressed <= end)) throw malformed(`column '${name}': a page runs past its chunk`)
    if (!(size >= 0)) throw malformed(`column '${name}': a page claims a negative size`)
    if (size > limits.maxPageBytes)
      throw tooLarge(`bytes in one page of column '${name}'`, size, limits.maxPageBytes, 'parquet_max_page_bytes')
    budget.decoded += size
    if (budget.decoded > limits.maxDecodedBytes)
      throw tooLarge('decompressed bytes', budget.decoded, limits.maxDecodedBytes, 'parquet_max_decoded_bytes')
    if (meta.codec === 'UNCOMPRESSED' && header.type !== 'DATA_PAGE_V2' && size !== compressed) {
      throw malformed(`column '${name}': an uncompressed page claims ${size} bytes but holds ${compressed}`)
    }
    if (header.type === 'DATA_PAGE') values += Number(header.data_page_header?.num_values ?? Number.NaN)
    else if (header.type === 'DATA_PAGE_V2') {
      const h = header.data_page_header_v2
      if (!h || h.num_rows !== h.num_values) throw malformed(`column '${name}': a v2 page's row and value counts differ`)
      values += Number(h.num_values)
    } else if (header.type === 'DICTIONARY_PAGE') {
      const n = Number(header.dictionary_page_header?.num_values)
      if (!(n >= 0 && n <= size * 8)) throw malformed(`column '${name}': the dictionary claims ${n} values in ${size} bytes`)
    }
    reader.offset += compressed
    if (!(values >= 0 && values <= rows))
      throw malformed(`column '${name}': pages claim more values than the row group's ${rows} rows`)
  }
  if (values !== rows) throw malformed(`column '${name}': pages hold ${values} values, the row group claims ${rows}`)
  return { start, end: reader.offset }
}

/**
 * zstd into exactly the claimed size, streamed block by block: a page that would decompress to
 * more than its header claims is refused at the first block past the claim, not after.
 */
function boundedZstd(input: Uint8Array, outputLength: number): Uint8Array {
  const out = new Uint8Array(outputLength)
  let at = 0
  const stream = new ZstdStream((chunk) => {
    if (at + chunk.length > outputLength) {
      throw new Error(`a zstd page decompresses to more than the ${outputLength} bytes its header claims`)
    }
    out.set(chunk, at)
    at += chunk.length
  })
  stream.push(input, true)
  if (at !== outputLength) throw new Error(`a zstd page decompresses to ${at} bytes, its header claims ${outputLength}`)
  return out
}

/**
 * Checks one RLE/bit-packed hybrid run list the way hyparquet will read it (`readRleBitPackedHybrid`
 * fills a plain `Array` of `capacity` slots). An RLE run is written slot by slot whatever the
 * slots left: one claiming more than are left grows that array by its claimed length (up to
 * 2^31: a fatal V8 "invalid size" error that ends the process, not an exception) or spins as
 * long, so it is a 400 before hyparquet reads it. A bit-packed run stops writing at the last
 * slot (writers pad it past the end: DuckDB to 256 values) and reads its bytes as it goes, so
 * only a count that overflows to negative (an endless loop there) is refused.
 */
function checkHybrid(page: Uint8Array, at: number, width: number, capacity: number, what: string): void {
  if (!(width >= 0 && width <= 32)) throw new Error(`${what}: bit width ${width} is above 32`)
  const reader = { view: new DataView(page.buffer, page.byteOffset, page.byteLength), offset: at }
  let seen = 0
  while (seen < capacity && reader.offset < page.byteLength) {
    const header = readVarInt(reader)
    if (header & 1) {
      const count = (header >> 1) << 3
      if (count < 0 || (header >>> 1) * 8 !== count) {
        throw new Error(`${what}: a bit-packed run claims ${(header >>> 1) * 8} values`)
      }
      reader.offset += (count / 8) * width
      seen += count
    } else {
      const count = header >>> 1
      if (seen + count > capacity) throw new Error(`${what}: an RLE run claims ${count} values, ${capacity - seen} are left`)
      reader.offset += (width + 7) >> 3
      seen += count
    }
  }
}

/** The hybrid-encoded values of a data page (dictionary indices, RLE booleans), checked. */
function checkValues(plan: Plan, page: Uint8Array, at: number, encoding: string, values: number): void {
  if (encoding === 'RLE' && plan.raw.type === 'BOOLEAN') checkHybrid(page, at + 4, 1, values, 'RLE booleans')
  else if (encoding === 'RLE_DICTIONARY' || encoding === 'PLAIN_DICTIONARY') {
    if (at >= page.length) throw new Error('a dictionary-encoded page has no bit width')
    // bit width 0: hyparquet reads no runs (every index is 0)
    if (page[at] > 0) checkHybrid(page, at + 1, page[at], values, 'dictionary indices')
  }
}

/** The definition levels of a v1 page (length-prefixed) and then its values, checked. */
function checkPageV1(plan: Plan, page: Uint8Array, header: PageHeader): void {
  const h = header.data_page_header!
  const values = Number(h.num_values)
  let at = 0
  if (plan.raw.repetition_type === 'OPTIONAL') {
    if (page.length < 4) throw new Error('a page is too short for its definition levels')
    const length = new DataView(page.buffer, page.byteOffset, page.byteLength).getUint32(0, true)
    checkHybrid(page, 4, 1, values, 'definition levels')
    at = 4 + length
  }
  checkValues(plan, page, at, h.encoding, values)
}

/**
 * Snappy into exactly `outputLength` bytes, linear in the input: every element is bounds-checked
 * before it is copied. (hyparquet's `snappyUncompress` reads a 4-byte literal length as a signed
 * int, so a damaged page can send its read position backwards and spin for seconds.)
 */
function boundedSnappy(input: Uint8Array, outputLength: number): Uint8Array {
  const out = new Uint8Array(outputLength)
  if (outputLength === 0 && input.length === 0) return out // an empty v2 page's values (writers leave out the preamble)
  let pos = 0
  let claimed = 0
  for (let shift = 0; ; shift += 7) {
    if (pos >= input.length || shift > 28) throw new Error('a snappy page has a bad length preamble')
    const c = input[pos++]
    claimed += (c & 0x7f) * 2 ** shift
    if (c < 128) break
  }
  if (claimed !== outputLength) throw new Error(`a snappy page holds ${claimed} bytes, its header claims ${outputLength}`)
  let at = 0
  while (pos < input.length) {
    const c = input[pos++]
    const tag = c & 3
    if (tag === 0) {
      let len = (c >>> 2) + 1
      if (len > 60) {
        const size = len - 60
        if (pos + size > input.length) throw new Error('a snappy literal length runs past the page')
        len = 0
        for (let i = size - 1; i >= 0; i--) len = len * 256 + input[pos + i]
        len += 1
        pos += size
      }
      if (pos + len > input.length || at + len > outputLength) throw new Error('a snappy literal runs past its page')
      out.set(input.subarray(pos, pos + len), at)
      pos += len
      at += len
      continue
    }
    let len: number
    let offset: number
    if (tag === 1) {
      if (pos + 1 > input.length) throw new Error('a snappy copy runs past the page')
      len = ((c >>> 2) & 7) + 4
      offset = ((c >>> 5) << 8) | input[pos]
      pos += 1
    } else if (tag === 2) {
      if (pos + 2 > input.length) throw new Error('a snappy copy runs past the page')
      len = (c >>> 2) + 1
      offset = input[pos] | (input[pos + 1] << 8)
      pos += 2
    } else {
      if (pos + 4 > input.length) throw new Error('a snappy copy runs past the page')
      len = (c >>> 2) + 1
      offset = (input[pos] | (input[pos + 1] << 8) | (input[pos + 2] << 16)) + input[pos + 3] * 2 ** 24
      pos += 4
    }
    if (offset === 0 || offset > at || at + len > outputLength) throw new Error('a snappy copy points outside its page')
    for (let i = 0; i < len; i++, at++) out[at] = out[at - offset]
  }
  if (at !== outputLength) throw new Error(`a snappy page decompresses to ${at} bytes, its header claims ${outputLength}`)
  return out
}

const yieldToLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0))

/** One column chunk's values, page by page (yielding between pages). */
async function decodeChunk(
  bytes: Uint8Array,
  plan: Plan,
  chunk: ColumnChunk,
  range: { start: number; end: number },
  progress: { sinceYield: number },
): Promise<unknown[][] | ArrayLike<unknown>[]> {
  const meta = chunk.meta_data!
  const decoder: ColumnDecoder = {
    pathInSchema: [plan.name],
    type: plan.raw.type!,
    element: plan.raw,
    schemaPath: plan.schemaPath,
    codec: meta.codec,
    parsers: {} as ColumnDecoder['parsers'],
    compressors: {
      // each decompressed page is checked before hyparquet decodes it (see checkHybrid)
      ZSTD: (input, n) => checked(boundedZstd(input, n)),
      SNAPPY: (input, n) => checked(boundedSnappy(input, n)),
    },
    utf8: false,
  }
  let current: PageHeader | undefined
  /** The decompressed part of the current page: all of a v1 page, the values of a v2 page. */
  const checked = (page: Uint8Array): Uint8Array => {
    if (current?.type === 'DATA_PAGE') checkPageV1(plan, page, current)
    else if (current?.type === 'DATA_PAGE_V2') {
      checkValues(plan, page, 0, current.data_page_header_v2!.encoding, Number(current.data_page_header_v2!.num_values))
    }
    return page
  }
  const reader = { view: new DataView(bytes.buffer, bytes.byteOffset, range.end), offset: range.start }
  const pages: ArrayLike<unknown>[] = []
  let dictionary: ArrayLike<unknown> | undefined
  while (reader.offset < range.end) {
    const header = parquetHeader(reader)
    current = header
    const raw = bytes.subarray(reader.offset, reader.offset + Number(header.compressed_page_size))
    if (header.type === 'DATA_PAGE' && meta.codec === 'UNCOMPRESSED') checkPageV1(plan, raw, header)
    else if (header.type === 'DATA_PAGE_V2') {
      const h = header.data_page_header_v2!
      const levels = Number(h.repetition_levels_byte_length) + Number(h.definition_levels_byte_length)
      if (!(levels >= 0 && levels <= raw.length)) throw new Error('a v2 page claims more level bytes than it holds')
      if (Number(h.definition_levels_byte_length) > 0) {
        checkHybrid(raw, Number(h.repetition_levels_byte_length), 1, Number(h.num_values), 'definition levels')
      }
      if (meta.codec === 'UNCOMPRESSED' || h.is_compressed === false) {
        checkValues(plan, raw.subarray(levels), 0, h.encoding, Number(h.num_values))
      }
    }
    const encoding = header.data_page_header?.encoding ?? header.data_page_header_v2?.encoding
    if (!dictionary && (encoding === 'RLE_DICTIONARY' || encoding === 'PLAIN_DICTIONARY')) {
      throw new Error('a dictionary-encoded page comes before any dictionary page')
    }
    const result = readPage(reader, header, decoder, dictionary as never, undefined, 0)
    if (header.type === 'DICTIONARY_PAGE') dictionary = result.data as ArrayLike<unknown>
    else if (result.data) pages.push(result.data as ArrayLike<unknown>)
    progress.sinceYield += Number(header.uncompressed_page_size) + 64
    if (progress.sinceYield >= YIELD_EVERY_BYTES) {
      progress.sinceYield = 0
      await yieldToLoop()
    }
  }
  return pages
}

/** The JavaScript type hyparquet gives each kind's raw values (strings: `Uint8Array`, an object). */
const PHYSICAL: Record<Kind, string> = {
  int32: 'number',
  uint32: 'number',
  int64: 'bigint',
  uint64: 'bigint',
  double: 'number',
  boolean: 'boolean',
  string: 'object',
  'ts-ms': 'bigint',
  'ts-us': 'bigint',
  'ts-ns': 'bigint',
}

/** Writes one chunk's values into `out` at `row`; refuses values that would not be stored exactly. */
function store(
  plan: Plan,
  pages: ArrayLike<unknown>[],
  out: Column,
  row: number,
  rows: number,
  nulls: { int64?: Uint8Array },
): void {
  const name = plan.name
  const fatal = new TextDecoder('utf-8', { fatal: true })
  let r = row
  for (const page of pages) {
    if (r + page.length > row + rows) throw malformed(`column '${name}' decodes to more values than its row group's ${rows} rows`)
    for (let i = 0; i < page.length; i++, r++) {
      const v = page[i]
      if (v === undefined) throw malformed(`column '${name}', row ${r}: a value is missing (dictionary index out of range?)`)
      if (v === null) {
        if (out.type === 'int64') {
          nulls.int64 ??= new Uint8Array(out.values.length)
          nulls.int64[r] = 1
        } else if (out.type === 'boolean') out.values[r] = BOOL_NULL
        else if (out.type === 'string') out.values[r] = null
        else out.values[r] = Number.NaN
        continue
      }
      if (typeof v !== PHYSICAL[plan.kind]) {
        // e.g. a dictionary-encoded page in a chunk without a dictionary page: its raw indices
        throw malformed(`column '${name}', row ${r}: a ${typeof v} where ${describe(plan.element)} values are expected`)
      }
      switch (plan.kind) {
        case 'int32':
          ;(out.values as BigInt64Array)[r] = BigInt(v as number)
          break
        case 'uint32':
          ;(out.values as BigInt64Array)[r] = BigInt((v as number) >>> 0)
          break
        case 'int64':
          ;(out.values as BigInt64Array)[r] = v as bigint
          break
        case 'uint64':
          if ((v as bigint) < 0n) {
            throw refuse(
              name,
              `Parquet column '${name}' (UINT64): ${BigInt.asUintN(64, v as bigint)} is above the int64 range`,
              r,
            )
          }
          ;(out.values as BigInt64Array)[r] = v as bigint
          break
        case 'double': {
          const x = v as number
          if (!Number.isFinite(x)) throw refuse(name, `Parquet column '${name}' (float): ${x} is not a finite number`, r)
          ;(out.values as Float64Array)[r] = x
          break
        }
        case 'boolean':
          ;(out.values as Uint8Array)[r] = v ? 1 : 0
          break
        case 'string':
          try {
            ;(out.values as (string | null)[])[r] = fatal.decode(v as Uint8Array)
          } catch {
            throw refuse(name, `Parquet column '${name}' (STRING): the value is not valid UTF-8`, r)
          }
          break
        default: {
          let micros = v as bigint
          if (plan.kind === 'ts-ms') micros *= 1000n
          else if (plan.kind === 'ts-ns') {
            if (micros % 1000n !== 0n) {
              throw refuse(
                name,
                `Parquet column '${name}' (TIMESTAMP(NANOS)): ${micros} ns has digits below the microsecond, which would be lost`,
                r,
              )
            }
            micros /= 1000n
          }
          if (micros > MAX_SAFE || micros < -MAX_SAFE)
            throw refuse(name, `Parquet column '${name}' (${plan.kind}): ${v} is outside the exact time range`, r)
          ;(out.values as Float64Array)[r] = Number(micros)
        }
      }
    }
  }
  if (r !== row + rows) throw malformed(`column '${name}' decodes to ${r - row} values, its row group claims ${rows}`)
}

function allocate(type: ColumnType, n: number): Column {
  switch (type) {
    case 'float64':
    case 'timestamp':
      return { type, values: new Float64Array(n) }
    case 'int64':
      return { type, values: new BigInt64Array(n) }
    case 'boolean':
      return { type, values: new Uint8Array(n) }
    case 'string':
      return { type, values: new Array<string | null>(n).fill(null) }
  }
}

/**
 * Decodes a whole Parquet file held in memory, strictly (see the module comment). Throws
 * `ValidationError` (400) for a damaged file, a column type we do not store exactly, or a value
 * that would change; a 413 `StorageError` when a claim passes a limit; a 415 for a codec we do
 * not decode. Never allocates by a claim the limits have not bounded.
 */
export async function decodeParquetBody(bytes: Uint8Array, options: Partial<ParquetIngestLimits> = {}): Promise<Table> {
  const limits: ParquetIngestLimits = { ...DEFAULT_PARQUET_INGEST_LIMITS, ...options }
  let metadata: FileMetaData
  try {
    metadata = readFooter(bytes)
  } catch (error) {
    throw new ValidationError([{ field: 'body', message: `not a Parquet file: ${(error as Error).message}` }])
  }
  const plans = planColumns(metadata)
  let length = 0
  const groupRows: number[] = []
  for (const group of metadata.row_groups) {
    const n = Number(group.num_rows)
    if (!Number.isSafeInteger(n) || n < 0) throw malformed(`a row group claims ${group.num_rows} rows`)
    if (group.columns.length !== plans.length) throw malformed('a row group does not have one chunk per column')
    groupRows.push(n)
    length += n
    if (length > limits.maxRows) throw tooLarge('rows', length, limits.maxRows, 'parquet_max_rows')
  }
  if (length * plans.length > limits.maxCells)
    throw tooLarge('values (rows x columns)', length * plans.length, limits.maxCells, 'parquet_max_cells')

  // every claim is checked before anything is allocated or decompressed
  const budget = { decoded: 0 }
  const ranges = metadata.row_groups.map((group, g) =>
    plans.map((plan) => scanChunk(bytes, plan, group.columns[plan.leaf], groupRows[g], limits, budget)),
  )

  const columns: Record<string, Column> = {}
  const nulls = new Map<string, { int64?: Uint8Array }>()
  for (const plan of plans) {
    columns[plan.name] = allocate(plan.type, length)
    nulls.set(plan.name, {})
  }
  const progress = { sinceYield: 0 }
  let row = 0
  for (let g = 0; g < metadata.row_groups.length; g++) {
    const group = metadata.row_groups[g]
    for (const plan of plans) {
      const chunk = group.columns[plan.leaf]
      let pages: ArrayLike<unknown>[]
      try {
        pages = (await decodeChunk(bytes, plan, chunk, ranges[g][plan.leaf], progress)) as ArrayLike<unknown>[]
      } catch (error) {
        if (error instanceof StorageError) throw error
        throw malformed(`column '${plan.name}' (${describe(plan.element)}): ${(error as Error).message}`)
      }
      store(plan, pages, columns[plan.name], row, groupRows[g], nulls.get(plan.name)!)
    }
    row += groupRows[g]
  }
  for (const plan of plans) {
    const col = columns[plan.name]
    const n = nulls.get(plan.name)?.int64
    if (col.type === 'int64' && n) col.nulls = n
  }
  return { length, schema: plans.map(({ name, type }) => ({ name, type })), columns }
}
