/**
 * Page codecs of the Parquet writer and reader, as a value passed through options
 * (`EncodeOptions.codecs`, `DecodeOptions.codecs`, `LakeOptions.codecs`): nothing here is
 * installed process-wide, so two storages with different codecs in one process do not see each
 * other's. `jsCodecs()` is the default (pure JS, runs anywhere); `loadZstdWasm()` adds zstd;
 * the Node entry's `nativeCodecs()` (src/backends/node/native-codecs.ts) adds native Snappy.
 */

import { decompress as fzstdDecompress } from 'fzstd'
import { snappyCompress as jsSnappyCompress } from 'hyparquet-writer/src/snappy.js'
import type { PageCodec } from './column-chunk.js'
import { CompressionCodec } from './thrift-ids.js'

/** A synchronous page compressor. */
export type Compressor = (input: Uint8Array) => Uint8Array
/** A synchronous page decompressor; `outputLength` is the page's uncompressed size. */
export type Decompressor = (input: Uint8Array, outputLength: number) => Uint8Array

export interface ZstdCodec {
  compress: Compressor
  decompress: Decompressor
}

export interface ParquetCodecs {
  /** Snappy; a side left out is the pure-JS one (hyparquet-writer's compressor, hyparquet's decompressor). */
  snappy?: { compress?: Compressor; decompress?: Decompressor }
  /** zstd: needed to write zstd pages. Without it, zstd pages are still read, by fzstd (pure JS, slower). */
  zstd?: ZstdCodec
}

export type ParquetCompression = 'snappy' | 'zstd' | 'none'

/** Page decompressors in the shape hyparquet's reader and the fast path take. */
export interface Decompressors {
  ZSTD: Decompressor
  SNAPPY?: Decompressor
}

const fzstd: Decompressor = (input, outputLength) => fzstdDecompress(input, new Uint8Array(outputLength))
const JS_DECOMPRESSORS: Decompressors = Object.freeze({ ZSTD: fzstd })
const JS_CODECS: ParquetCodecs = Object.freeze({ snappy: Object.freeze({ compress: jsSnappyCompress }) })

/** The pure-JS codecs (Snappy both ways; zstd read by fzstd, not written): the default. */
export function jsCodecs(): ParquetCodecs {
  return JS_CODECS
}

/** The decompressors of `codecs` (pure JS for what it leaves out). */
export function decompressorsOf(codecs: ParquetCodecs | undefined): Decompressors {
  if (!codecs || (!codecs.zstd && !codecs.snappy?.decompress)) return JS_DECOMPRESSORS
  const d: Decompressors = { ZSTD: codecs.zstd?.decompress ?? fzstd }
  if (codecs.snappy?.decompress) d.SNAPPY = codecs.snappy.decompress
  return d
}

/** The page codec the writer uses for `compression` with `codecs`. Throws for zstd without a zstd codec. */
export function pageCodec(compression: ParquetCompression, codecs: ParquetCodecs = JS_CODECS): PageCodec {
  switch (compression) {
    case 'none':
      return { id: CompressionCodec.UNCOMPRESSED, compress: null }
    case 'snappy':
      return { id: CompressionCodec.SNAPPY, compress: codecs.snappy?.compress ?? jsSnappyCompress }
    case 'zstd':
      if (!codecs.zstd) {
        throw new Error(
          "compression 'zstd' needs a zstd codec: pass codecs: { zstd: await loadZstdWasm() } (or your own synchronous zstd codec)",
        )
      }
      return { id: CompressionCodec.ZSTD, compress: codecs.zstd.compress }
  }
}

type ZstdWasm = typeof import('@bokuweb/zstd-wasm')

/** The zstd WebAssembly module once it initialized (the module is one instance per process). */
let wasm: Promise<ZstdWasm> | undefined

/**
 * The zstd codec of `@bokuweb/zstd-wasm` (WebAssembly; about 10x faster than fzstd at reading).
 * The module is initialized on the first call and shared afterwards (it holds one instance per
 * process); a failed load is forgotten, so the next call tries again. Runtimes that cannot compile
 * WebAssembly from bytes (Cloudflare Workers) pass their own codec as `codecs.zstd` instead.
 * `load` replaces the module import (tests).
 */
export function loadZstdWasm(load: () => Promise<ZstdWasm> = () => import('@bokuweb/zstd-wasm')): Promise<ZstdCodec> {
  wasm ??= (async () => {
    const zstd = await load()
    await zstd.init()
    return zstd
  })().catch((error: unknown) => {
    wasm = undefined
    throw error
  })
  return wasm.then((zstd) => ({
    compress: (input) => zstd.compress(input, 3),
    decompress: (input, outputLength) => zstd.decompress(input, { defaultHeapSize: outputLength }),
  }))
}
