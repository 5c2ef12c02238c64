/**
 * Compression of archived files: gzip through the Web-standard `CompressionStream` (every
 * runtime), zstd through the same WebAssembly codec the Parquet writer uses
 * (`@bokuweb/zstd-wasm`, loaded on first use; Node and Bun).
 */

import type { ArchiveCodec } from './rotation-policy.js'

interface Zstd {
  compress(input: Uint8Array, level?: number): Uint8Array
  decompress(input: Uint8Array, opts?: { defaultHeapSize?: number }): Uint8Array
}

let zstd: Promise<Zstd> | undefined

function loadZstd(): Promise<Zstd> {
  zstd ??= (async () => {
    const mod = await import('@bokuweb/zstd-wasm')
    await mod.init()
    return mod as Zstd
  })().catch((err) => {
    zstd = undefined
    throw err
  })
  return zstd
}

/** File name suffix of an archived object. */
export function codecSuffix(codec: ArchiveCodec): string {
  return codec === 'gzip' ? '.gz' : codec === 'zstd' ? '.zst' : ''
}

async function throughStream(bytes: Uint8Array, stream: TransformStream<Uint8Array, Uint8Array>): Promise<Uint8Array> {
  const out = await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream)).arrayBuffer()
  return new Uint8Array(out)
}

export async function compress(codec: ArchiveCodec, bytes: Uint8Array): Promise<Uint8Array> {
  if (codec === 'none') return bytes
  if (codec === 'gzip')
    return throughStream(bytes, new CompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>)
  return (await loadZstd()).compress(bytes, 9)
}

/** `size`: the original length (recorded in the archive entry), so zstd can size its buffer. */
export async function decompress(codec: ArchiveCodec, bytes: Uint8Array, size: number): Promise<Uint8Array> {
  if (codec === 'none') return bytes
  if (codec === 'gzip')
    return throughStream(bytes, new DecompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>)
  return (await loadZstd()).decompress(bytes, { defaultHeapSize: Math.max(size, 1024) })
}
