/** Tables → HTTP responses (streamed batch by batch) and whole files. */

import { encodeParquet } from '../../parquet/index.js'
import type { Table } from '../../types.js'
import { OUTPUT_CONTENT_TYPES, type OutputFormat } from './media-types.js'
import { parquetEncoder } from './parquet-output.js'
import { type BatchEncoder, csvEncoder, jsonEncoder, ndjsonEncoder } from './text-output.js'

function encoderFor(format: OutputFormat): BatchEncoder {
  switch (format) {
    case 'json':
      return jsonEncoder()
    case 'ndjson':
      return ndjsonEncoder()
    case 'csv':
      return csvEncoder()
    case 'parquet':
      return parquetEncoder()
  }
}

/**
 * A streaming Response of the batches (e.g. from `storage.scan`): each batch is encoded and sent
 * when it arrives, and the next one is only requested when the client has taken the last (so a
 * slow client holds back the scan, and memory stays at about one batch). json = one JSON array;
 * ndjson = one object per line; csv = header + rows; parquet = one Parquet file, a row group per
 * batch. Headers: `content-type`, and for parquet `content-disposition: attachment`; `init.headers`
 * are added last (and win). If a batch fails once the response has started, the body stream
 * errors (the client sees a truncated body): read the first batch before calling this to turn
 * early failures into proper error responses. Cancelling the body stops the iteration.
 */
export function tableResponse(
  batches: AsyncIterable<Table>,
  format: OutputFormat,
  init: { status?: number; headers?: Record<string, string> } = {},
): Response {
  const encoder = encoderFor(format)
  const iterator = batches[Symbol.asyncIterator]()
  let finished = false
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
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
        controller.error(error)
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

/** Whole-table encoding for files (the CLI's `query --out`). Parquet goes through `encodeParquet`. */
export async function encodeTable(table: Table, format: OutputFormat): Promise<Uint8Array> {
  if (format === 'parquet') return encodeParquet(table)
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
