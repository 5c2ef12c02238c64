/**
 * Tables → JSON, NDJSON and CSV text, batch by batch. Cells are written straight from the column
 * vectors (no row objects): timestamps as ISO-8601 UTC with microseconds when not zero, float
 * NaN as null, int64 as a JSON number up to ±2^53 and a string beyond.
 */

import { formatUs } from '../core/time.js'
import { BOOL_NULL, type Column, type Schema, type Table } from '../core/types.js'

/** What a response says about an error that cut it short (the `error` of an error body). */
export interface StreamErrorRecord {
  code: string
  message: string
  details: Record<string, unknown>
}

/**
 * Encodes a stream of batches; `push` and `finish` return the bytes to send next (maybe none).
 * `fail` gives the last bytes of a body cut short by an error: a record of the error that no
 * reader can take for the end of a complete body (none when the format has no room for one).
 */
export interface BatchEncoder {
  push(batch: Table): Uint8Array[]
  finish(): Uint8Array[]
  fail(error: StreamErrorRecord): Uint8Array[]
}

/** `{"error":{...}}` on one line. */
const errorLine = (error: StreamErrorRecord): string => `${JSON.stringify({ error })}\n`

const TWO_53 = 2n ** 53n
const utf8 = new TextEncoder()

function out(text: string): Uint8Array[] {
  return text ? [utf8.encode(text)] : []
}

/** A JSON value's text for cell `i`. */
function jsonCell(col: Column | undefined, i: number): string {
  if (!col) return 'null'
  switch (col.type) {
    case 'float64': {
      const v = col.values[i]
      return Number.isFinite(v) ? String(v) : 'null'
    }
    case 'timestamp': {
      const v = col.values[i]
      return Number.isNaN(v) ? 'null' : `"${formatUs(v)}"`
    }
    case 'int64': {
      if (col.nulls?.[i] === 1) return 'null'
      const v = col.values[i]
      return v <= TWO_53 && v >= -TWO_53 ? v.toString() : `"${v}"`
    }
    case 'boolean': {
      const v = col.values[i]
      return v === BOOL_NULL ? 'null' : v === 1 ? 'true' : 'false'
    }
    case 'string': {
      const v = col.values[i]
      return v === null ? 'null' : JSON.stringify(v)
    }
  }
}

/** One row object's JSON text per row of the batch, keys in schema order. */
function jsonRows(batch: Table): string[] {
  const keys = batch.schema.map((c) => `${JSON.stringify(c.name)}:`)
  const cols = batch.schema.map((c) => batch.columns[c.name])
  const rows = new Array<string>(batch.length)
  for (let i = 0; i < batch.length; i++) {
    let text = '{'
    for (let c = 0; c < cols.length; c++) text += (c ? ',' : '') + keys[c] + jsonCell(cols[c], i)
    rows[i] = `${text}}`
  }
  return rows
}

/** One JSON array, `[` first, then the rows, each on its own line. */
export function jsonEncoder(): BatchEncoder {
  let rows = 0
  return {
    push(batch) {
      if (batch.length === 0) return []
      const text = (rows === 0 ? '[\n' : ',\n') + jsonRows(batch).join(',\n')
      rows += batch.length
      return out(text)
    },
    finish: () => out(rows === 0 ? '[]\n' : '\n]\n'),
    // one more element, and never the closing `]`: the body is not valid JSON
    fail: (error) => out((rows === 0 ? '[\n' : ',\n') + errorLine(error)),
  }
}

/** One JSON object per line. */
export function ndjsonEncoder(): BatchEncoder {
  return {
    push: (batch) => (batch.length === 0 ? [] : out(`${jsonRows(batch).join('\n')}\n`)),
    finish: () => [],
    // rows always have `symbol` and `timestamp`; this line has the one key `error`
    fail: (error) => out(errorLine(error)),
  }
}

const NEEDS_QUOTES = /[",\r\n]/

/** RFC 4180 field: quoted when it holds a comma, quote or line break; the empty string is `""` (null is empty). */
export function csvField(text: string): string {
  if (text === '') return '""'
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** A CSV cell's text for cell `i` (null → empty). */
function csvCell(col: Column | undefined, i: number): string {
  if (!col) return ''
  switch (col.type) {
    case 'float64': {
      const v = col.values[i]
      return Number.isFinite(v) ? String(v) : ''
    }
    case 'timestamp': {
      const v = col.values[i]
      return Number.isNaN(v) ? '' : formatUs(v)
    }
    case 'int64':
      return col.nulls?.[i] === 1 ? '' : col.values[i].toString()
    case 'boolean': {
      const v = col.values[i]
      return v === BOOL_NULL ? '' : v === 1 ? 'true' : 'false'
    }
    case 'string': {
      const v = col.values[i]
      return v === null ? '' : csvField(v)
    }
  }
}

/**
 * A header line (the first batch's columns) and one line per row, CRLF-terminated. A later
 * batch's columns are matched by name: a missing one gives empty cells, an extra one is left out.
 */
export function csvEncoder(): BatchEncoder {
  let schema: Schema | undefined
  return {
    push(batch) {
      let text = ''
      if (!schema) {
        schema = batch.schema
        text = `${schema.map((c) => csvField(c.name)).join(',')}\r\n`
      }
      const cols = schema.map((c) => {
        const col = batch.columns[c.name]
        return col?.type === c.type ? col : undefined
      })
      for (let i = 0; i < batch.length; i++) {
        let line = ''
        for (let c = 0; c < cols.length; c++) line += (c ? ',' : '') + csvCell(cols[c], i)
        text += `${line}\r\n`
      }
      return out(text)
    },
    finish: () => (schema ? [] : out('symbol,timestamp\r\n')),
    // a quoted field that is never closed: malformed CSV (RFC 4180), so a reader fails on it
    fail: (error) => out(`"error: ${error.code}: ${error.message.replaceAll('"', '""')}\r\n`),
  }
}
