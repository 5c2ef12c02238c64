/** Parquet codec: our columnar Table to and from Parquet bytes (Web standards only; runs on Workers). */

export {
  type Compressor,
  type Decompressor,
  jsCodecs,
  loadZstdWasm,
  type ParquetCodecs,
  type ParquetCompression,
  pageCodec,
  type ZstdCodec,
} from './codecs.js'
export { type DecodeOptions, decodeParquet, decodeParquetInto, fileSchema } from './decode.js'
export { type EncodeOptions, encodeParquet, encodeSchemaFile, microsToInt64 } from './encode.js'
export { type FileColumn, ParquetFileWriter } from './file-writer.js'
export { type FooterOptions, type ParquetSource, readFooter, readParquetMetadata } from './footer.js'
export { DEFAULT_PARQUET_INGEST_LIMITS, decodeParquetBody, type ParquetIngestLimits } from './ingest.js'
