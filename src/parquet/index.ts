/** Parquet codec: our columnar Table to and from Parquet bytes (Web standards only; runs on Workers). */

export {
  type DecodeOptions,
  type Decompressor,
  decodeParquet,
  decodeParquetInto,
  fileSchema,
  type ParquetSource,
  readParquetMetadata,
  setSnappyDecompressor,
  setZstdDecompressor,
} from './decode.js'
export {
  type Compressor,
  type EncodeOptions,
  encodeParquet,
  encodeSchemaFile,
  initZstd,
  microsToInt64,
  type ParquetCompression,
  pageCodec,
  setSnappyCompressor,
} from './encode.js'
export { type FileColumn, ParquetFileWriter } from './file-writer.js'
export { DEFAULT_PARQUET_INGEST_LIMITS, decodeParquetBody, type ParquetIngestLimits } from './ingest.js'
