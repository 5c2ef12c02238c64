/**
 * JSON (an array of row objects) and NDJSON (one row object per line) bodies → typed columns.
 * An NDJSON line goes through `JSON.parse` straight into the columns when its values are plain
 * (`TypedColumns.addPlainRow`), else through `parseJson`, which keeps big integers exact and
 * words syntax errors. A time or int64 value written with a fraction or an exponent is read from
 * its text (`NumberText`), never through a double that may not be the number written.
 */

import { type FieldIssue, ValidationError } from '../core/errors.js'
import { describeValue } from '../core/keys.js'
import type { InputColumns } from '../core/types.js'
import type { ColumnPlan } from './column-options.js'
import { findBadElement, parseJson } from './json-text.js'
import { type BodyLimit, decodeUtf8, readAllBytes, textChunks } from './read-body.js'
import { TypedColumns } from './typed-columns.js'

function isRowObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function syntaxMessage(error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error)
  return `invalid JSON: ${reason.length > 200 ? `${reason.slice(0, 200)}...` : reason}`
}

/** A JSON array of row objects. */
export async function parseJsonBody(
  body: ReadableStream<Uint8Array> | null,
  limit: BodyLimit,
  maxColumns?: number,
  plan?: ColumnPlan,
): Promise<InputColumns> {
  const text = decodeUtf8(await readAllBytes(body, limit))
  const builder = new TypedColumns(maxColumns, plan)
  let parsed: ReturnType<typeof parseJson>
  try {
    parsed = parseJson(text, true, builder.needsExactNumbers(text))
  } catch (error) {
    const bad = findBadElement(text)
    if (!bad) throw new ValidationError([{ field: 'body', message: syntaxMessage(error) }])
    throw new ValidationError([{ row: bad.row, line: bad.line, field: 'body', message: syntaxMessage(bad.error) }])
  }
  const rows = parsed.value
  if (!Array.isArray(rows)) {
    throw new ValidationError([{ field: 'body', message: `expected a JSON array of row objects, got ${describeValue(rows)}` }])
  }
  const issues: FieldIssue[] = []
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]
    if (isRowObject(row)) builder.addRow(row, parsed.revive)
    else if (issues.push({ row: i, field: 'row', message: `expected an object, got ${describeValue(row)}` }) >= 20) break
  }
  if (issues.length) throw new ValidationError(issues)
  return builder.finish()
}

/**
 * One JSON object per line; blank lines are skipped (but counted for line numbers: a row's errors
 * name the 1-based line it is on; a leading BOM or a `\r` before the `\n` moves none).
 */
export async function parseNdjsonBody(
  body: ReadableStream<Uint8Array> | null,
  limit: BodyLimit,
  maxColumns?: number,
  plan?: ColumnPlan,
): Promise<InputColumns> {
  const columns = new TypedColumns(maxColumns, plan)
  let line = 0
  /** The exact way: blank lines skipped, big integers kept, errors worded. */
  const parseLine = (raw: string, exact = false): void => {
    const trimmed = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (trimmed.trim() === '') return
    const row = columns.length
    let parsed: ReturnType<typeof parseJson>
    try {
      parsed = parseJson(trimmed, true, exact)
    } catch (error) {
      throw new ValidationError([{ row, line, field: 'body', message: syntaxMessage(error) }])
    }
    if (!isRowObject(parsed.value)) {
      const message = `expected a JSON object on each line, got ${describeValue(parsed.value)}`
      throw new ValidationError([{ row, line, field: 'row', message }])
    }
    columns.addRow(parsed.value, parsed.revive)
  }
  const readLine = (raw: string): void => {
    line++
    columns.line = line // named in a value's error, and noted for the storage's (a number: no object per row)
    let row: unknown
    try {
      row = JSON.parse(raw)
    } catch {
      row = undefined // parseLine throws the error (or skips a blank line)
    }
    if (!isRowObject(row) || !columns.addPlainRow(row, raw)) parseLine(raw, columns.needsExactNumbers(raw))
  }
  // Complete lines are read as soon as they arrive; only the newly arrived text is searched for
  // the last newline, so a very long line costs linear time.
  let pending = '' // the start of a line, no newline in it
  for await (const chunk of textChunks(body, limit)) {
    const last = chunk.lastIndexOf('\n')
    if (last < 0) {
      pending += chunk
      continue
    }
    let start = 0
    if (pending !== '') {
      const nl = chunk.indexOf('\n')
      readLine(pending + chunk.slice(0, nl))
      start = nl + 1
    }
    while (start <= last) {
      const nl = chunk.indexOf('\n', start)
      readLine(chunk.slice(start, nl))
      start = nl + 1
    }
    pending = chunk.slice(last + 1)
  }
  if (pending !== '') readLine(pending)
  return columns.finish()
}
