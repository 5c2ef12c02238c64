/** Tables → HTTP responses (streamed batch by batch) and whole files. */

import type { Table } from '../core/types.js'
import { publicError } from '../http/public-error.js'
import { encodeParquet, type ParquetCodecs } from '../parquet/index.js'
import { OUTPUT_CONTENT_TYPES, type OutputFormat } from './media-types.js'
import { parquetEncoder } from './parquet-output.js'
import { type BatchEncoder, csvEncoder, jsonEncoder, ndjsonEncoder, type StreamErrorRecord } from './text-output.js'

/** The error as an error body shows it (`publicError`: backend failures get a generic message and a `ref`). */
export function streamErrorRecord(error: unknown): StreamErrorRecord {
  const { code, message, details } = publicError(error, 'a streamed read')
  return { code, message, details }
}

function encoderFor(format: OutputFormat, codecs?: ParquetCodecs): BatchEncoder {
  switch (format) {
    case 'json':
      return jsonEncoder()
    case 'ndjson':
      return ndjsonEncoder()
    case 'csv':
      return csvEncoder()
    case 'parquet':
      return parquetEncoder(codecs)
  }
}

/**
 * A streaming Response of the batches (e.g. from `storage.scan`): each batch is encoded and sent
 * when it arrives, and the next one is only requested when the client has taken the last (so a
 * slow client holds back the scan, and memory stays at about one batch). json = one JSON array;
 * ndjson = one object per line; csv = header + rows; parquet = one Parquet file, a row group per
 * batch. Headers: `content-type`, and for parquet `content-disposition: attachment`; `init.headers`
 * are added last (and win). Read the first batch before calling this to turn early failures into
 * proper error responses. Cancelling the body stops the iteration.
 *
 * If a batch fails once the response has started, the status (200) cannot change: the body ends
 * with the format's error record (`BatchEncoder.fail`: an NDJSON line `{"error":{...}}`, a last
 * JSON array element of that shape without the closing `]`, a never-closed quoted CSV field; none
 * for Parquet), and then the stream errors, so the server cuts the connection without the end of
 * the chunked body: the client sees a network error, never a complete-looking body. (A runtime
 * that ends the body cleanly after a stream error, as workerd does, still leaves the record and
 * an invalid document.) `init.onError` hears about the error (e.g. to log it). `init.codecs`
 * compress the Parquet pages (default `jsCodecs()`; Node passes `nativeCodecs()`).
 */
export function tableResponse(
  batches: AsyncIterable<Table>,
  format: OutputFormat,
  init: {
    status?: number
    headers?: Record<string, string>
    onError?: (error: unknown) => void
    codecs?: ParquetCodecs
  } = {},
): Response {
  const encoder = encoderFor(format, init.codecs)
  const iterator = batches[Symbol.asyncIterator]()
  let finished = false
  /** Set once the error record is out: the next pull errors the stream. */
  let failed: { error: unknown } | undefined
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (failed) {
        // the consumer has taken the record; let the server flush it (Node writes on the next
        // tick) before the error makes it cut the connection
        await new Promise((resolve) => setTimeout(resolve, 0))
        controller.error(failed.error)
        return
      }
      try {
        for (;;) {
          const next = await iterator.next()
          const chunks = next.done ? encoder.finish() : encoder.push(next.value)
          for (const chunk of chunks) controller.enqueue(chunk)
          if (next.done) {
            finished = true
            controller.close()
            return
          }
          if (chunks.length > 0) return
        }
      } catch (error) {
        if (!finished) {
          finished = true
          await iterator.return?.()?.catch(() => {})
        }
        init.onError?.(error)
        const record = encoder.fail(streamErrorRecord(error))
        // erroring drops what is queued: send the record first, error once it has been taken
        for (const chunk of record) controller.enqueue(chunk)
        if (record.length === 0) controller.error(error)
        else failed = { error }
      }
    },
    async cancel() {
      if (finished) return
      finished = true
      await iterator.return?.()
    },
  })
  const headers = new Headers({ 'content-type': OUTPUT_CONTENT_TYPES[format] })
  if (format === 'parquet') headers.set('content-disposition', 'attachment; filename="rows.parquet"')
  for (const [name, value] of Object.entries(init.headers ?? {})) headers.set(name, value)
  return new Response(body, { status: init.status ?? 200, headers })
}

/** Whole-table encoding for files. Parquet goes through `encodeParquet`, its pages compressed by `options.codecs` (default `jsCodecs()`). */
export async function encodeTable(
  table: Table,
  format: OutputFormat,
  options: { codecs?: ParquetCodecs } = {},
): Promise<Uint8Array> {
  if (format === 'parquet') return encodeParquet(table, { codecs: options.codecs })
  const encoder = encoderFor(format)
  const chunks = [...encoder.push(table), ...encoder.finish()]
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let off = 0
  for (const c of chunks) {
    out.set(c, off)
    off += c.byteLength
  }
  return out
}
