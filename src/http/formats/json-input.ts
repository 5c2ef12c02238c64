/** JSON (an array of row objects) and NDJSON (one row object per line) bodies → columnar input. */

import { type FieldIssue, ValidationError } from '../../errors.js'
import { describeValue } from '../../keys.js'
import type { InputColumns } from '../../types.js'
import { BIG_RUN, findBadElement, parseJson } from './json-text.js'
import { type BodyLimit, decodeUtf8, readAllBytes, textChunks } from './read-body.js'

/**
 * Per-column arrays filled as rows arrive. A column first seen at row k starts with k nulls;
 * rows that lack a column get null. Arrays are only ever appended to (no holes).
 */
export class ColumnBuilder {
  private readonly columns = new Map<string, unknown[]>()
  length = 0

  addRow(row: Record<string, unknown>, revive: (v: unknown) => unknown): void {
    const i = this.length
    for (const key in row) {
      let values = this.columns.get(key)
      if (!values) {
        values = new Array(i).fill(null)
        this.columns.set(key, values)
      } else while (values.length < i) values.push(null)
      values.push(revive(row[key]))
    }
    this.length = i + 1
  }

  finish(): InputColumns {
    for (const values of this.columns.values()) while (values.length < this.length) values.push(null)
    return Object.fromEntries(this.columns)
  }
}

function isRowObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function syntaxMessage(error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error)
  return `invalid JSON: ${reason.length > 200 ? `${reason.slice(0, 200)}...` : reason}`
}

/** A JSON array of row objects. */
export async function parseJsonBody(body: ReadableStream<Uint8Array> | null, limit: BodyLimit): Promise<InputColumns> {
  const text = decodeUtf8(await readAllBytes(body, limit))
  let parsed: ReturnType<typeof parseJson>
  try {
    parsed = parseJson(text)
  } catch (error) {
    const bad = findBadElement(text)
    if (!bad) throw new ValidationError([{ field: 'body', message: syntaxMessage(error) }])
    throw new ValidationError([{ row: bad.row, line: bad.line, field: 'body', message: syntaxMessage(bad.error) }])
  }
  const rows = parsed.value
  if (!Array.isArray(rows)) {
    throw new ValidationError([{ field: 'body', message: `expected a JSON array of row objects, got ${describeValue(rows)}` }])
  }
  const builder = new ColumnBuilder()
  const issues: FieldIssue[] = []
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]
    if (isRowObject(row)) builder.addRow(row, parsed.revive)
    else if (issues.push({ row: i, field: 'row', message: `expected an object, got ${describeValue(row)}` }) >= 20) break
  }
  if (issues.length) throw new ValidationError(issues)
  return builder.finish()
}

/** One JSON object per line; blank lines are skipped (but counted for line numbers). */
export async function parseNdjsonBody(body: ReadableStream<Uint8Array> | null, limit: BodyLimit): Promise<InputColumns> {
  const builder = new ColumnBuilder()
  let line = 0
  const takeLine = (raw: string, mayHoldBigInts: boolean): void => {
    line++
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (text.trim() === '') return
    const row = builder.length
    let parsed: ReturnType<typeof parseJson>
    try {
      parsed = parseJson(text, mayHoldBigInts)
    } catch (error) {
      throw new ValidationError([{ row, line, field: 'body', message: syntaxMessage(error) }])
    }
    if (!isRowObject(parsed.value)) {
      const message = `expected a JSON object on each line, got ${describeValue(parsed.value)}`
      throw new ValidationError([{ row, line, field: 'row', message }])
    }
    builder.addRow(parsed.value, parsed.revive)
  }
  // Only the newly arrived text is searched for newlines, so a very long line costs linear time.
  let pending = ''
  for await (const text of textChunks(body, limit)) {
    // one big-integer pre-check per chunk (with the carried-over partial line), not per line
    const big = BIG_RUN.test(pending) || BIG_RUN.test(text) || BIG_RUN.test(pending.slice(-20) + text.slice(0, 20))
    let start = 0
    let nl = text.indexOf('\n')
    while (nl >= 0) {
      takeLine(pending + text.slice(start, nl), big)
      pending = ''
      start = nl + 1
      nl = text.indexOf('\n', start)
    }
    pending += text.slice(start)
  }
  if (pending !== '') takeLine(pending, true)
  return builder.finish()
}
