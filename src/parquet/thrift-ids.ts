/**
 * The Parquet format's Thrift field ids and enums (parquet.thrift), in one place: the writer
 * (`file-writer.ts`, `column-chunk.ts`) and the footer reader (`footer-lean.ts`) use these names,
 * never bare numbers. Enum names are spelled as hyparquet spells them, so metadata read here has
 * hyparquet's shapes (a test compares the lists with hyparquet's own).
 */

// ---- field ids, by struct ---------------------------------------------------------------

export const FileMetaDataField = {
  VERSION: 1,
  SCHEMA: 2,
  NUM_ROWS: 3,
  ROW_GROUPS: 4,
  KEY_VALUE_METADATA: 5,
  CREATED_BY: 6,
  COLUMN_ORDERS: 7,
} as const

export const SchemaElementField = {
  TYPE: 1,
  TYPE_LENGTH: 2,
  REPETITION_TYPE: 3,
  NAME: 4,
  NUM_CHILDREN: 5,
  CONVERTED_TYPE: 6,
  SCALE: 7,
  PRECISION: 8,
  FIELD_ID: 9,
  LOGICAL_TYPE: 10,
} as const

export const RowGroupField = {
  COLUMNS: 1,
  TOTAL_BYTE_SIZE: 2,
  NUM_ROWS: 3,
  SORTING_COLUMNS: 4,
  FILE_OFFSET: 5,
  TOTAL_COMPRESSED_SIZE: 6,
  ORDINAL: 7,
} as const

export const ColumnChunkField = { FILE_PATH: 1, FILE_OFFSET: 2, META_DATA: 3 } as const

export const ColumnMetaDataField = {
  TYPE: 1,
  ENCODINGS: 2,
  PATH_IN_SCHEMA: 3,
  CODEC: 4,
  NUM_VALUES: 5,
  TOTAL_UNCOMPRESSED_SIZE: 6,
  TOTAL_COMPRESSED_SIZE: 7,
  KEY_VALUE_METADATA: 8,
  DATA_PAGE_OFFSET: 9,
  INDEX_PAGE_OFFSET: 10,
  DICTIONARY_PAGE_OFFSET: 11,
  STATISTICS: 12,
} as const

export const StatisticsField = { MAX: 1, MIN: 2, NULL_COUNT: 3, DISTINCT_COUNT: 4, MAX_VALUE: 5, MIN_VALUE: 6 } as const

export const KeyValueField = { KEY: 1, VALUE: 2 } as const

/** ColumnOrder is a union; TYPE_ORDER (an empty struct) is its only member so far. */
export const ColumnOrderField = { TYPE_ORDER: 1 } as const

export const PageHeaderField = {
  TYPE: 1,
  UNCOMPRESSED_PAGE_SIZE: 2,
  COMPRESSED_PAGE_SIZE: 3,
  CRC: 4,
  DATA_PAGE_HEADER: 5,
  INDEX_PAGE_HEADER: 6,
  DICTIONARY_PAGE_HEADER: 7,
  DATA_PAGE_HEADER_V2: 8,
} as const

export const DataPageHeaderField = {
  NUM_VALUES: 1,
  ENCODING: 2,
  DEFINITION_LEVEL_ENCODING: 3,
  REPETITION_LEVEL_ENCODING: 4,
  STATISTICS: 5,
} as const

export const DictionaryPageHeaderField = { NUM_VALUES: 1, ENCODING: 2, IS_SORTED: 3 } as const

/** LogicalType is a union: the field id says which logical type (see `LOGICAL_TYPE_NAMES`). */
export const LogicalTypeField = {
  STRING: 1,
  MAP: 2,
  LIST: 3,
  ENUM: 4,
  DECIMAL: 5,
  DATE: 6,
  TIME: 7,
  TIMESTAMP: 8,
  INTEGER: 10,
  NULL: 11,
  JSON: 12,
} as const

export const TimestampTypeField = { IS_ADJUSTED_TO_UTC: 1, UNIT: 2 } as const
/** TimeUnit is a union of empty structs. */
export const TimeUnitField = { MILLIS: 1, MICROS: 2, NANOS: 3 } as const
export const IntTypeField = { BIT_WIDTH: 1, IS_SIGNED: 2 } as const

// ---- enums: names by value (as hyparquet names them) and the values the writer uses -------

export const TYPE_NAMES = ['BOOLEAN', 'INT32', 'INT64', 'INT96', 'FLOAT', 'DOUBLE', 'BYTE_ARRAY', 'FIXED_LEN_BYTE_ARRAY'] as const
export const Type = { BOOLEAN: 0, INT32: 1, INT64: 2, DOUBLE: 5, BYTE_ARRAY: 6 } as const

export const REPETITION_NAMES = ['REQUIRED', 'OPTIONAL', 'REPEATED'] as const
export const FieldRepetitionType = { REQUIRED: 0, OPTIONAL: 1, REPEATED: 2 } as const

export const CONVERTED_TYPE_NAMES = [
  'UTF8',
  'MAP',
  'MAP_KEY_VALUE',
  'LIST',
  'ENUM',
  'DECIMAL',
  'DATE',
  'TIME_MILLIS',
  'TIME_MICROS',
  'TIMESTAMP_MILLIS',
  'TIMESTAMP_MICROS',
  'UINT_8',
  'UINT_16',
  'UINT_32',
  'UINT_64',
  'INT_8',
  'INT_16',
  'INT_32',
  'INT_64',
  'JSON',
  'BSON',
  'INTERVAL',
] as const
export const ConvertedType = { UTF8: 0, TIMESTAMP_MICROS: 10 } as const

export const ENCODING_NAMES = [
  'PLAIN',
  'GROUP_VAR_INT',
  'PLAIN_DICTIONARY',
  'RLE',
  'BIT_PACKED',
  'DELTA_BINARY_PACKED',
  'DELTA_LENGTH_BYTE_ARRAY',
  'DELTA_BYTE_ARRAY',
  'RLE_DICTIONARY',
  'BYTE_STREAM_SPLIT',
] as const
export const Encoding = { PLAIN: 0, RLE: 3, RLE_DICTIONARY: 8 } as const

export const CODEC_NAMES = ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'LZO', 'BROTLI', 'LZ4', 'ZSTD', 'LZ4_RAW'] as const
export const CompressionCodec = { UNCOMPRESSED: 0, SNAPPY: 1, ZSTD: 6 } as const

export const PAGE_TYPE_NAMES = ['DATA_PAGE', 'INDEX_PAGE', 'DICTIONARY_PAGE', 'DATA_PAGE_V2'] as const
export const PageType = { DATA_PAGE: 0, DICTIONARY_PAGE: 2 } as const

/** LogicalType union members by field id ('' = unused id). */
export const LOGICAL_TYPE_NAMES = [
  '',
  'STRING',
  'MAP',
  'LIST',
  'ENUM',
  'DECIMAL',
  'DATE',
  'TIME',
  'TIMESTAMP',
  '',
  'INTEGER',
  'NULL',
  'JSON',
  'BSON',
  'UUID',
  'FLOAT16',
] as const

/** TimeUnit union members by field id. */
export const TIME_UNIT_NAMES = ['', 'MILLIS', 'MICROS', 'NANOS'] as const
