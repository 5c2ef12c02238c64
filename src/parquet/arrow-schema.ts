/**
 * The `ARROW:schema` and `pandas` key/value metadata of the files we write, so Arrow-based
 * readers (pyarrow, pandas, polars) and fastparquet type our columns as we mean them:
 *
 * - `symbol` is `dictionary<values=string, indices=int32>`: the type pyarrow infers for a hive
 *   directory key (`symbol=AAPL/`). Without it, `pyarrow.parquet.read_table(dir)` and
 *   `pandas.read_parquet(dir)` refuse the lake ("Unable to merge: Field symbol has incompatible
 *   types: string vs dictionary") because the column is also in the files.
 * - `timestamp` is `timestamp[us, tz=UTC]`; the pandas metadata says `timezone: UTC`, which is
 *   where fastparquet looks (it ignores the Parquet `isAdjustedToUTC` flag).
 * - int64 columns are pandas `Int64` and booleans `boolean` (nullable dtypes), so pandas keeps
 *   int64 values beyond 2^53 exact when the column has nulls instead of turning it into float64.
 * - `partition_columns` names the hive keys a lake may use (`symbol`, `date`, `month`) as strings,
 *   so fastparquet does not turn a symbol such as `7203` into a number or a date into a Timestamp.
 *
 * `ARROW:schema` is an Arrow IPC Schema message (flatbuffers, format/Schema.fbs and Message.fbs),
 * base64-encoded, as pyarrow writes it.
 */

import { Builder } from 'flatbuffers'
import type { ColumnType } from '../core/types.js'

export interface ArrowField {
  name: string
  type: ColumnType
  nullable: boolean
}

/** Columns written as a dictionary (the hive key pyarrow infers as `dictionary<string, int32>`). */
export const DICTIONARY_COLUMNS: ReadonlySet<string> = new Set(['symbol'])

// union Type (Schema.fbs)
const TYPE_INT = 2
const TYPE_FLOATING_POINT = 3
const TYPE_UTF8 = 5
const TYPE_BOOL = 6
const TYPE_TIMESTAMP = 10
const PRECISION_DOUBLE = 2
const TIME_UNIT_MICROSECOND = 2
const METADATA_V5 = 4
const HEADER_SCHEMA = 1

function intType(b: Builder, bitWidth: number, signed: boolean): number {
  b.startObject(2)
  b.addFieldInt32(0, bitWidth, 0)
  b.addFieldInt8(1, signed ? 1 : 0, 0)
  return b.endObject()
}

function emptyTable(b: Builder): number {
  b.startObject(0)
  return b.endObject()
}

/** The (type_type, type) pair of a column's Arrow value type. */
function valueType(b: Builder, type: ColumnType): [number, number] {
  switch (type) {
    case 'int64':
      return [TYPE_INT, intType(b, 64, true)]
    case 'float64': {
      b.startObject(1)
      b.addFieldInt16(0, PRECISION_DOUBLE, 0)
      return [TYPE_FLOATING_POINT, b.endObject()]
    }
    case 'string':
      return [TYPE_UTF8, emptyTable(b)]
    case 'boolean':
      return [TYPE_BOOL, emptyTable(b)]
    case 'timestamp': {
      const tz = b.createString('UTC')
      b.startObject(2)
      b.addFieldInt16(0, TIME_UNIT_MICROSECOND, 0)
      b.addFieldOffset(1, tz, 0)
      return [TYPE_TIMESTAMP, b.endObject()]
    }
  }
}

function field(b: Builder, f: ArrowField, dictionaryId: number | null): number {
  const name = b.createString(f.name)
  const [typeType, type] = valueType(b, f.type)
  let dictionary = 0
  if (dictionaryId !== null) {
    const indexType = intType(b, 32, true)
    b.startObject(4)
    b.addFieldInt64(0, BigInt(dictionaryId), 0n)
    b.addFieldOffset(1, indexType, 0)
    dictionary = b.endObject()
  }
  b.startVector(4, 0, 4)
  const children = b.endVector()
  b.startObject(7)
  b.addFieldOffset(0, name, 0)
  b.addFieldInt8(1, f.nullable ? 1 : 0, 0)
  b.addFieldInt8(2, typeType, 0)
  b.addFieldOffset(3, type, 0)
  if (dictionary) b.addFieldOffset(4, dictionary, 0)
  b.addFieldOffset(5, children, 0)
  return b.endObject()
}

/** A vector of `KeyValue` tables (Schema.fbs), in `entries` order. */
function keyValues(b: Builder, entries: [string, string][]): number {
  const offsets = entries.map(([k, v]) => {
    const key = b.createString(k)
    const value = b.createString(v)
    b.startObject(2)
    b.addFieldOffset(0, key, 0)
    b.addFieldOffset(1, value, 0)
    return b.endObject()
  })
  b.startVector(4, offsets.length, 4)
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i])
  return b.endVector()
}

/**
 * The Arrow IPC Schema message of `fields` (continuation marker, length, flatbuffer, padding).
 * `metadata` becomes the schema's `custom_metadata`: pyarrow takes a file's schema metadata from
 * there (not from the Parquet key/value metadata) when `ARROW:schema` is present, so the `pandas`
 * entry must be in it for `pandas.read_parquet(dir)` to use the nullable dtypes of every file.
 */
export function arrowSchemaMessage(fields: ArrowField[], metadata: Record<string, string> = {}): Uint8Array {
  const entries = Object.entries(metadata)
  const b = new Builder(256 + fields.length * 96 + entries.reduce((n, [k, v]) => n + k.length + v.length * 3, 0))
  let nextDictionary = 0
  const offsets = fields.map((f) => field(b, f, DICTIONARY_COLUMNS.has(f.name) && f.type === 'string' ? nextDictionary++ : null))
  b.startVector(4, offsets.length, 4)
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i])
  const fieldVector = b.endVector()
  const custom = entries.length ? keyValues(b, entries) : 0
  b.startObject(4)
  b.addFieldOffset(1, fieldVector, 0) // endianness (0) is Little, the default
  if (custom) b.addFieldOffset(2, custom, 0)
  const schema = b.endObject()
  b.startObject(5)
  b.addFieldInt16(0, METADATA_V5, 0)
  b.addFieldInt8(1, HEADER_SCHEMA, 0)
  b.addFieldOffset(2, schema, 0)
  const message = b.endObject()
  b.finish(message)
  const flat = b.asUint8Array()
  const padded = Math.ceil(flat.length / 8) * 8
  const out = new Uint8Array(8 + padded)
  const view = new DataView(out.buffer)
  view.setUint32(0, 0xffffffff, true)
  view.setInt32(4, padded, true)
  out.set(flat, 8)
  return out
}

/** `ARROW:schema` value: the Schema message (with `metadata` as its custom metadata), base64 (standard alphabet, padded). */
export function arrowSchemaMetadata(fields: ArrowField[], metadata: Record<string, string> = {}): string {
  return base64(arrowSchemaMessage(fields, metadata))
}

const PANDAS_TYPES: Record<ColumnType, [string, string]> = {
  timestamp: ['datetimetz', 'datetime64[us]'],
  float64: ['float64', 'float64'],
  int64: ['int64', 'Int64'],
  string: ['unicode', 'object'],
  boolean: ['bool', 'boolean'],
}

/** Hive keys a lake may partition by: strings for fastparquet (which otherwise parses numbers and dates). */
const PARTITION_KEYS = ['symbol', 'date', 'month']

/** The `pandas` metadata value (pandas' own format, as pyarrow writes it). */
export function pandasMetadata(fields: ArrowField[], creator = 'friday-market-data'): string {
  // float64 columns read the same with or without an entry: left out (every file carries this
  // twice, and a lake of small files pays for each byte in every footer)
  const columns = fields
    .filter((f) => f.type !== 'float64')
    .map((f) => {
      const [pandasType, numpyType] = PANDAS_TYPES[f.type]
      return {
        name: f.name,
        field_name: f.name,
        pandas_type: pandasType,
        numpy_type: numpyType,
        metadata: f.type === 'timestamp' ? { timezone: 'UTC' } : null,
      }
    })
  const partitionColumns = PARTITION_KEYS.map((name) => ({
    name,
    field_name: name,
    pandas_type: 'unicode',
    numpy_type: 'object',
    metadata: null,
  }))
  return JSON.stringify({
    index_columns: [],
    column_indexes: [],
    columns,
    partition_columns: partitionColumns,
    creator: { library: creator, version: '0.1.0' },
    pandas_version: '2.2.0',
  })
}

function base64(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}
