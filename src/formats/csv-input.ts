/**
 * CSV bodies → typed columns, parsed as the text arrives. Text without quotes is split at line
 * breaks and commas here (papaparse's own "fast mode", without an object per row); anything else
 * goes through papaparse's core parser (RFC 4180 quoting, fields spanning lines, error messages).
 * Either way the rows go to `CsvRows`, which types the cells into column vectors.
 */

import Papa from 'papaparse'
import type { InputColumns } from '../core/types.js'
import type { ColumnPlan } from './column-options.js'
import { CsvRows } from './csv-rows.js'
import { type BodyLimit, textChunks } from './read-body.js'

/**
 * The first line is the header; each further non-blank line is a row with as many cells, split at
 * `delimiter` (one character: `,`, or a tab for TSV).
 */
export async function parseCsvBody(
  body: ReadableStream<Uint8Array> | null,
  limit: BodyLimit,
  maxColumns?: number,
  plan?: ColumnPlan,
  delimiter = ',',
): Promise<InputColumns> {
  const rows = new CsvRows(maxColumns, plan, delimiter)
  let pending = '' // text not yet turned into rows
  let baseIndex = 0 // absolute offset of pending[0]
  let line = 1 // line number of pending[0]
  let retryAt = 0 // with no complete row in `pending`, parse again only once it has doubled
  let newline: '\n' | '\r\n' | '\r' | undefined
  let parser: Papa.Parser | undefined
  let input = ''
  let rowStart = 0 // start of the current row in `input`

  const countLines = (from: number, to: number): number => {
    const nl = newline === '\r' ? '\r' : '\n'
    let count = 0
    for (let i = input.indexOf(nl, from); i >= 0 && i < to; i = input.indexOf(nl, i + 1)) count++
    return count
  }

  /**
   * Rows of `input` (which has no quotes) from `rowStart`, split at `\n` or `\r\n` as papaparse
   * splits such text; unless `final`, the last, unterminated row is left. False when it stopped
   * at a lone `\n` in `\r\n` text (a line break inside a row, which papaparse counts as a line).
   */
  const splitRows = (final: boolean): boolean => {
    const crlf = newline === '\r\n'
    for (;;) {
      const nl = input.indexOf('\n', rowStart)
      if (nl < 0) break
      let end = nl
      if (crlf) {
        if (nl === rowStart || input.charCodeAt(nl - 1) !== 13) return false
        end = nl - 1
      }
      rows.span(input, rowStart, end, line)
      line++
      rowStart = nl + 1
    }
    if (final && rowStart < input.length) {
      rows.span(input, rowStart, input.length, line)
      rowStart = input.length
    }
    return true
  }

  /** Rows of `input` from `rowStart` through papaparse. */
  const parseRows = (final: boolean): void => {
    if (rowStart > 0) {
      input = input.slice(rowStart)
      baseIndex += rowStart
      rowStart = 0
    }
    parser ??= new Papa.Parser({
      delimiter,
      newline,
      quoteChar: '"',
      // the core parser hands `step` a one-row batch: data = [cells]
      step: (result: Papa.ParseStepResult<string[][]>) => {
        const end = result.meta.cursor - baseIndex
        if (result.errors.length) rows.malformed(result.errors[0].message, line)
        rows.cells(result.data[0], line)
        line += countLines(rowStart, end)
        rowStart = end
      },
    })
    parser.parse(input, baseIndex, !final)
  }

  const parse = (final: boolean): void => {
    input = pending
    rowStart = 0
    if (newline === '\r' || input.includes('"') || !splitRows(final)) parseRows(final)
    pending = input.slice(rowStart)
    baseIndex += rowStart
    retryAt = rowStart === 0 ? input.length * 2 : 0
  }

  for await (const text of textChunks(body, limit)) {
    pending += text
    if (!newline) {
      const nl = text.indexOf('\n') // only the new text: a long header line costs linear time
      if (nl < 0) continue // the header line is not complete yet
      const at = pending.length - text.length + nl
      newline = at > 0 && pending[at - 1] === '\r' ? '\r\n' : '\n'
    }
    if (pending.length >= retryAt) parse(false)
  }
  newline ??= pending.includes('\r') ? '\r' : '\n'
  if (pending !== '') parse(true)
  return rows.finish()
}
