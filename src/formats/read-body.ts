/** Reading a request body as a stream, never more than a byte limit, as bytes or as UTF-8 text. */

import { LimitExceededError, PayloadTooLargeError, ValidationError } from '../core/errors.js'

export interface BodyLimit {
  maxBytes: number
  /** The request's Content-Length, when it sent one: over the limit fails before reading. */
  declaredLength?: number
  /**
   * Seconds the whole body may take to arrive (`limits.max_body_read_seconds`): past it the read
   * stops with a 408 `LimitExceededError` and the stream is cancelled. None: no deadline.
   */
  maxReadSeconds?: number
}

const TIMED_OUT = Symbol('timed out')

function bodyTimeout(seconds: number): LimitExceededError {
  return new LimitExceededError(
    408,
    'max_body_read_seconds',
    seconds,
    `the request body did not arrive within ${seconds} s (limits.max_body_read_seconds): nothing was stored`,
  )
}

/**
 * The body's chunks as they arrive. Throws `PayloadTooLargeError` before reading when
 * `declaredLength` exceeds the limit, and as soon as the running byte count passes it. Whenever
 * iteration stops early (limit, a parse error thrown by the consumer, `break`) the stream is
 * cancelled, so nothing more is read or buffered.
 */
export async function* limitedChunks(body: ReadableStream<Uint8Array> | null, limit: BodyLimit): AsyncGenerator<Uint8Array> {
  const { maxBytes, declaredLength } = limit
  if (declaredLength !== undefined && declaredLength > maxBytes) {
    await body?.cancel().catch(() => {})
    throw new PayloadTooLargeError(maxBytes)
  }
  if (!body) return
  const reader = body.getReader()
  let done = false
  const seconds = limit.maxReadSeconds
  let timer: ReturnType<typeof setTimeout> | undefined
  // one timer for the whole body; it resolves (never rejects) so no rejection is left unhandled
  const deadline =
    seconds !== undefined && Number.isFinite(seconds)
      ? new Promise<typeof TIMED_OUT>((resolve) => {
          timer = setTimeout(() => resolve(TIMED_OUT), seconds * 1000)
        })
      : undefined
  try {
    let total = 0
    for (;;) {
      const next = deadline ? await Promise.race([reader.read(), deadline]) : await reader.read()
      if (next === TIMED_OUT) throw bodyTimeout(seconds as number)
      if (next.done) {
        done = true
        return
      }
      total += next.value.byteLength
      if (total > maxBytes) throw new PayloadTooLargeError(maxBytes)
      if (next.value.byteLength > 0) yield next.value
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    if (!done) await reader.cancel().catch(() => {})
    reader.releaseLock()
  }
}

/** The whole body in one byte array (for formats that need it all: JSON, Parquet). */
export async function readAllBytes(body: ReadableStream<Uint8Array> | null, limit: BodyLimit): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of limitedChunks(body, limit)) {
    chunks.push(chunk)
    total += chunk.byteLength
  }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(total)
  let off = 0
  for (const c of chunks) {
    out.set(c, off)
    off += c.byteLength
  }
  return out
}

function invalidUtf8(): ValidationError {
  return new ValidationError([{ field: 'body', message: 'the body is not valid UTF-8' }])
}

/** Strict UTF-8 decoding of a whole byte array (a leading BOM is dropped). */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw invalidUtf8()
  }
}

/**
 * The body as UTF-8 text pieces, decoded as the bytes arrive: a character split across chunks
 * is completed by the next one. A leading BOM is dropped; invalid UTF-8 is a `ValidationError`.
 */
export async function* textChunks(body: ReadableStream<Uint8Array> | null, limit: BodyLimit): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  const decode = (chunk?: Uint8Array): string => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode()
    } catch {
      throw invalidUtf8()
    }
  }
  for await (const chunk of limitedChunks(body, limit)) {
    const text = decode(chunk)
    if (text) yield text
  }
  const rest = decode()
  if (rest) yield rest
}
