/**
 * `GET /v1/datasets/:dataset/rows` (streamed as json/ndjson/csv/parquet) and `POST
 * /v1/datasets/:dataset/rows` (a body of rows, parsed within the body limits, written as one
 * batch: all or nothing).
 */

import type { Hono } from 'hono'
import { LimitExceededError, PayloadTooLargeError, ValidationError } from '../../core/errors.js'
import { emptyTable } from '../../core/table.js'
import type { TimeUnit } from '../../core/time.js'
import type { Table } from '../../core/types.js'
import { bodyFormat, outputFormat, parseBody, tableResponse, withBodyLines } from '../../formats/index.js'
import type { ParquetCodecs } from '../../parquet/index.js'
import type { Env } from '../app-types.js'
import type { BodyGate, BodyLimits } from '../body-limits.js'
import { escapeFormulas } from '../guard.js'
import { ReadQuery, WriteQuery } from '../params.js'
import { datasetNotFound, datasetOf, queryOf, type RouteContext } from './context.js'

export interface RowsRouteOptions {
  /** Request body limit in bytes: 413 `payload_too_large`. */
  maxBodyBytes: number
  bodyLimits: BodyLimits
  /** Turns for parsing bodies (`bodyLimits.maxConcurrentBodies`, `maxQueuedBodies`). */
  bodyGate: BodyGate
  /** Unit of epoch numbers in written bodies when the request names no `time_unit`. */
  timeUnit?: TimeUnit
  /** Page codecs of `format=parquet` responses (default `jsCodecs()`). */
  codecs?: ParquetCodecs
}

/** 408: the body did not arrive within `seconds` of the request (`limits.max_body_read_seconds`). */
function bodyTooSlow(seconds: number): LimitExceededError {
  return new LimitExceededError(
    408,
    'max_body_read_seconds',
    seconds,
    `the request body did not arrive within ${seconds} s (limits.max_body_read_seconds): nothing was stored`,
  )
}

export function registerRowsRoutes(app: Hono<Env>, ctx: RouteContext, o: RowsRouteOptions): void {
  const { storage, requireScope, op, stats } = ctx
  const { maxBodyBytes, bodyLimits, bodyGate } = o

  /** Streams the rows; the first batch is read before the response starts, so filter errors are still a 400. */
  app.get('/v1/datasets/:dataset/rows', op('rows.read'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    const q = queryOf(ReadQuery, c)
    const format = outputFormat(q.format, c.req.header('accept'))
    const escapeCsv = q.csv_escape_formulas === 'true'
    if (escapeCsv && format !== 'csv') {
      throw new ValidationError([{ field: 'csv_escape_formulas', message: `applies to format csv only, not ${format}` }])
    }
    const it = storage
      .scan(name, { symbols: q.symbols, start: q.start, end: q.end, columns: q.columns, limit: q.limit })
      [Symbol.asyncIterator]()
    const first = await it.next()
    let batches: AsyncIterable<Table>
    if (first.done) {
      const description = await storage.describe(name)
      if (!description) throw datasetNotFound(name)
      const want = new Set(['symbol', 'timestamp', ...(q.columns ?? description.schema.map((s) => s.name))])
      batches = (async function* () {
        yield emptyTable(description.schema.filter((s) => want.has(s.name)))
      })()
    } else {
      batches = (async function* () {
        yield first.value
        yield* { [Symbol.asyncIterator]: () => it }
      })()
    }
    if (escapeCsv) {
      const raw = batches
      batches = (async function* () {
        for await (const batch of raw) yield escapeFormulas(batch)
      })()
    }
    return tableResponse(batches, format, {
      codecs: o.codecs,
      onError: (err) => console.error(`[http] ${c.req.method} ${c.req.path} failed after the response started:`, err),
    })
  })

  app.post('/v1/datasets/:dataset/rows', op('rows.write'), requireScope('write'), async (c) => {
    const arrived = Date.now()
    const name = datasetOf(c)
    const { mode, time_unit, types } = queryOf(WriteQuery, c)
    const columns = { timeUnit: time_unit ?? o.timeUnit, types }
    const format = bodyFormat(c.req.header('content-type'))
    const lengthHeader = c.req.header('content-length')
    let declaredLength: number | undefined
    if (lengthHeader !== undefined) {
      if (!/^\d+$/.test(lengthHeader)) {
        throw new ValidationError([
          { field: 'content-length', message: `expected a byte count, got ${JSON.stringify(lengthHeader)}` },
        ])
      }
      declaredLength = Number(lengthHeader)
      if (declaredLength > maxBodyBytes) {
        await c.req.raw.body?.cancel().catch(() => {})
        throw new PayloadTooLargeError(maxBodyBytes)
      }
    }
    const emptyBody = () =>
      new ValidationError([{ field: 'body', message: `the request body is empty: expected ${format} rows` }])
    const raw = c.req.raw.body
    if (!raw || declaredLength === 0) throw emptyBody()
    let received = 0
    const body = raw.pipeThrough(stats.counter('in', (n) => (received = n)))
    const input = await readBodyInTurn(body, async () => {
      // the deadline counts from the request's arrival, time waiting for a turn included
      const seconds = bodyLimits.maxBodyReadSeconds
      const left = seconds - (Date.now() - arrived) / 1000
      if (!(left > 0)) throw bodyTooSlow(seconds)
      return parseBody(body, format, {
        maxBytes: maxBodyBytes,
        declaredLength,
        maxReadSeconds: left,
        maxColumns: bodyLimits.maxColumnsPerRequest,
        parquet: bodyLimits.parquet,
        columns,
      }).catch((err) => {
        throw err instanceof LimitExceededError && err.status === 408 ? bodyTooSlow(seconds) : err
      })
    })
    if (received === 0) throw emptyBody()
    // the storage names a bad row by index: the error gets the row's CSV/NDJSON line too
    const written = await storage.write(name, input, { mode }).catch((err) => {
      throw withBodyLines(err, input)
    })
    return c.json(written)
  })

  /** Runs `parse` in a turn of the body gate; a body refused (429) or timed out in the queue is cancelled. */
  async function readBodyInTurn<T>(body: ReadableStream<Uint8Array>, parse: () => Promise<T>): Promise<T> {
    try {
      return await bodyGate.run(parse)
    } catch (err) {
      await body.cancel().catch(() => {})
      throw err
    }
  }
}
