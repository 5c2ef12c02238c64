/**
 * Native codecs for Node/Bun: the `snappy` package (napi-rs prebuilt binary) compresses Parquet
 * pages. Decompression stays in JS: measured on the benchmark's small pages, the native call's
 * overhead ate its gain.
 */

import { createRequire } from 'node:module'
import { setSnappyCompressor } from '../../parquet/index.js'

let installed: boolean | undefined

/**
 * Makes Parquet encoding use native Snappy, several times faster than the pure-JS compressor
 * and format-compatible with it. Returns false (and changes nothing) where the native binary is
 * not available for the platform: the JS compressor keeps working.
 */
export function useNativeCodecs(): boolean {
  if (installed !== undefined) return installed
  try {
    const snappy = createRequire(import.meta.url)('snappy') as { compressSync(input: Uint8Array): Uint8Array }
    setSnappyCompressor((input) => snappy.compressSync(input))
    installed = true
  } catch {
    installed = false
  }
  return installed
}
