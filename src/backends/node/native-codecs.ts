/**
 * Native codecs for Node/Bun: the `snappy` package (napi-rs prebuilt binary) compresses Parquet
 * pages, and file checksums use node:crypto's synchronous SHA-256. Snappy decompression stays
 * in JS: measured on the benchmark's small pages, the native call's overhead ate its gain.
 */

import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { setSha256 } from '../../lake/manifest.js'
import { setSnappyCompressor } from '../../parquet/index.js'

let installed: boolean | undefined

const nodeSha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/**
 * Makes Parquet encoding use native Snappy, several times faster than the pure-JS compressor
 * and format-compatible with it, and checksums node:crypto. Returns false where the native
 * Snappy binary is not available for the platform: the JS compressor keeps working.
 */
export function useNativeCodecs(): boolean {
  setSha256(nodeSha256)
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
