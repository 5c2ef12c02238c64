/**
 * CSV bodies → columnar input, parsed as the text arrives with papaparse's core parser (RFC 4180
 * quoting, fields spanning lines). Cells are typed one by one (see `csvCell`) straight into one
 * array per header column.
 */

import Papa from 'papaparse'
import { ValidationError } from '../../errors.js'
import type { InputColumns } from '../../types.js'
import { type BodyLimit, textChunks } from './read-body.js'

const TIME_COLUMNS = new Set(['timestamp', 'datetime', 'date'])
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const INTEGER_RE = /^[+-]?\d+$/

type Kind = 'symbol' | 'time' | 'data'

/**
 * One cell's value: empty → null; the symbol column stays text; `true`/`false` → boolean; a
 * finite number → number (an integer beyond ±(2^53 − 1) → BigInt, except in the time column,
 * where numbers are epoch milliseconds); anything else → the string as written.
 */
export function csvCell(cell: string, kind: Kind): unknown {
  if (cell === '') return null
  if (kind === 'symbol') return cell
  if (kind === 'data') {
    if (cell === 'true') return true
    if (cell === 'false') return false
  }
  if (!NUMBER_RE.test(cell)) return cell
  const n = Number(cell)
  if (!Number.isFinite(n)) return cell
  if (kind === 'data' && !Number.isSafeInteger(n) && INTEGER_RE.test(cell)) return BigInt(cell)
  return n
}

/** The first line is the header; each further non-blank line is a row with as many cells. */
export async function parseCsvBody(body: ReadableStream<Uint8Array> | null, limit: BodyLimit): Promise<InputColumns> {
  let header: string[] | undefined
  let kinds: Kind[] = []
  let columns: unknown[][] = []
  let rows = 0

  let pending = '' // text not yet turned into rows
  let baseIndex = 0 // absolute offset of pending[0]
  let line = 1 // line number of pending[0]
  let retryAt = 0 // with no complete row in `pending`, parse again only once it has doubled
  let newline: '\n' | '\r\n' | '\r' | undefined
  let parser: Papa.Parser | undefined
  let input = ''
  let rowStart = 0 // start of the current row in `input`

  const takeRow = (cells: string[], errors: Papa.ParseError[], rowLine: number): void => {
    if (errors.length) {
      const message = `malformed CSV: ${errors[0].message}`
      if (!header) throw new ValidationError([{ line: rowLine, field: 'header', message }])
      throw new ValidationError([{ row: rows, line: rowLine, field: 'row', message }])
    }
    if (cells.length === 1 && cells[0] === '') return // blank line
    if (!header) {
      header = cells.map((c) => c.trim())
      const seen = new Set<string>()
      for (let i = 0; i < header.length; i++) {
        const name = header[i]
        const problem = name === '' ? `column ${i + 1} has an empty name` : seen.has(name) ? `duplicate column '${name}'` : ''
        if (problem) throw new ValidationError([{ line: rowLine, field: 'header', message: `${problem} (line ${rowLine})` }])
        seen.add(name)
      }
      kinds = header.map((h) => (h === 'symbol' ? 'symbol' : TIME_COLUMNS.has(h) ? 'time' : 'data'))
      columns = header.map(() => [])
      return
    }
    if (cells.length !== header.length) {
      const message = `expected ${header.length} cells like the header, got ${cells.length}`
      throw new ValidationError([{ row: rows, line: rowLine, field: 'row', message }])
    }
    for (let c = 0; c < cells.length; c++) columns[c].push(csvCell(cells[c], kinds[c]))
    rows++
  }

  const countLines = (from: number, to: number): number => {
    const nl = newline === '\r' ? '\r' : '\n'
    let count = 0
    for (let i = input.indexOf(nl, from); i >= 0 && i < to; i = input.indexOf(nl, i + 1)) count++
    return count
  }

  const parse = (final: boolean): void => {
    parser ??= new Papa.Parser({
      delimiter: ',',
      newline,
      quoteChar: '"',
      // the core parser hands `step` a one-row batch: data = [cells]
      step: (result: Papa.ParseStepResult<string[][]>) => {
        const end = result.meta.cursor - baseIndex
        takeRow(result.data[0], result.errors, line)
        line += countLines(rowStart, end)
        rowStart = end
      },
    })
    input = pending
    rowStart = 0
    parser.parse(input, baseIndex, !final)
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

  if (!header) return {}
  return Object.fromEntries(header.map((name, c) => [name, columns[c]]))
}
