/**
 * Native codecs for Node/Bun, passed to the lakes the Node entry builds: the `snappy` package
 * (napi-rs prebuilt binary) compresses Parquet pages, and file checksums use node:crypto's
 * synchronous SHA-256. Snappy decompression stays in JS: measured on the benchmark's small pages,
 * the native call's overhead ate its gain. Nothing is installed process-wide.
 */

import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type { LakeCodecOptions } from '../../lake/options.js'
import { type Compressor, jsCodecs, type ParquetCodecs } from '../../parquet/index.js'

/** The native Snappy compressor, or null where its binary is not available for the platform (looked up once). */
let nativeSnappy: Compressor | null | undefined

function loadNativeSnappy(): Compressor | null {
  if (nativeSnappy !== undefined) return nativeSnappy
  try {
    const snappy = createRequire(import.meta.url)('snappy') as { compressSync(input: Uint8Array): Uint8Array }
    nativeSnappy = (input) => snappy.compressSync(input)
  } catch {
    nativeSnappy = null
  }
  return nativeSnappy
}

/** node:crypto's SHA-256 as lowercase hex, synchronous. */
export const nodeSha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/**
 * Parquet codecs with native Snappy compression, several times faster than the pure-JS
 * compressor and format-compatible with it; `jsCodecs()` where the native binary is not
 * available for the platform. Pass to `encodeParquet`/`decodeParquet` (`codecs`) or a lake.
 */
export function nativeCodecs(): ParquetCodecs {
  const compress = loadNativeSnappy()
  return compress ? { snappy: { compress } } : jsCodecs()
}

/** The Node lake's codecs and checksum hash (`LakeOptions`): native Snappy, node:crypto SHA-256. */
export function nodeLakeCodecs(): LakeCodecOptions {
  return { codecs: nativeCodecs(), sha256: nodeSha256Hex }
}
