/**
 * CSV rows → typed columns: the header (first non-blank row), then each row's cells typed one by
 * one (`csvCell`) straight into the column vectors. Rows come either as papaparse's cell arrays
 * or, for text without quotes, as a span of the text split at commas here (what papaparse itself
 * does with such text, without an array and a string per cell).
 */

import { ValidationError } from '../core/errors.js'
import type { InputColumns } from '../core/types.js'
import { checkRequestColumns, DEFAULT_LIMITS } from '../table/limits.js'
import type { ColumnPlan } from './column-options.js'
import { readCsvNumber } from './csv-number.js'
import { TypedColumns } from './typed-columns.js'

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const INTEGER_RE = /^[+-]?\d+$/

/**
 * How a column's cells are read: `symbol` as text; `time` (a time column) and `exact` (a declared
 * int64, float64 or boolean) hand numbers over as written, for an exact reading; `text` (declared
 * string) keeps every cell as written; `data` types each cell (`csvCell`).
 */
type Kind = 'symbol' | 'time' | 'data' | 'exact' | 'text'

/**
 * One cell's value: empty → null; the symbol column stays text; `true`/`false` → boolean; a
 * finite number → number (an integer beyond ±(2^53 − 1) → BigInt, except in the time column,
 * where numbers are epoch milliseconds); anything else → the string as written.
 */
export function csvCell(cell: string, kind: 'symbol' | 'time' | 'data'): unknown {
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

export class CsvRows {
  private header: string[] | undefined
  private kinds: Kind[] = []
  private readonly columns: TypedColumns
  private readonly maxColumns: number
  /** The last symbol read, reused while the text repeats it. */
  private symbol = ''
  /** The cell separator (`,`; a tab for TSV). */
  private readonly delimiter: string

  constructor(maxColumns: number = DEFAULT_LIMITS.maxColumnsPerRequest, plan?: ColumnPlan, delimiter = ',') {
    this.maxColumns = maxColumns
    this.columns = new TypedColumns(maxColumns, plan)
    this.delimiter = delimiter
  }

  /** A row as cells (from papaparse); a blank line is one empty cell. */
  cells(cells: string[], line: number): void {
    if (cells.length === 1 && cells[0] === '') return // blank line
    if (!this.header) {
      this.setHeader(cells, line)
      return
    }
    this.checkWidth(cells.length, line)
    this.columns.line = line
    for (let c = 0; c < cells.length; c++) this.cell(c, cells[c], 0, cells[c].length)
    this.columns.endRow()
  }

  /** A row as the span `text[a, b)` of text without quotes, split at the delimiter (as papaparse would). */
  span(text: string, a: number, b: number, line: number): void {
    if (a === b) return // blank line
    if (!this.header) {
      this.setHeader(text.slice(a, b).split(this.delimiter), line)
      return
    }
    const width = this.header.length
    const delimiter = this.delimiter
    this.columns.line = line
    let c = 0
    for (let s = a; ; c++) {
      let e = text.indexOf(delimiter, s)
      if (e < 0 || e > b) e = b
      if (c < width) this.cell(c, text, s, e)
      if (e === b) break
      s = e + 1
    }
    this.checkWidth(c + 1, line)
    this.columns.endRow()
  }

  /** Throws papaparse's complaint about the row (or the header) starting on `line`. */
  malformed(reason: string, line: number): never {
    const message = `malformed CSV: ${reason}`
    if (!this.header) throw new ValidationError([{ line, field: 'header', message }])
    throw new ValidationError([{ row: this.columns.length, line, field: 'row', message }])
  }

  finish(): InputColumns {
    return this.columns.finish()
  }

  private setHeader(cells: string[], line: number): void {
    checkRequestColumns(cells.length, { maxColumnsPerRequest: this.maxColumns }) // before any column is made
    const header = cells.map((c) => c.trim())
    const seen = new Set<string>()
    for (let i = 0; i < header.length; i++) {
      const name = header[i]
      const problem = name === '' ? `column ${i + 1} has an empty name` : seen.has(name) ? `duplicate column '${name}'` : ''
      if (problem) throw new ValidationError([{ line, field: 'header', message: `${problem} (line ${line})` }])
      seen.add(name)
    }
    this.header = header
    this.kinds = header.map((name) => {
      const c = this.columns.column(name)
      const special = this.columns.specialAt(c)
      if (this.columns.nameAt(c) === 'symbol') return 'symbol'
      return special === undefined ? 'data' : special === 'time' ? 'time' : special === 'string' ? 'text' : 'exact'
    })
  }

  private checkWidth(width: number, line: number): void {
    const expected = (this.header as string[]).length
    if (width === expected) return
    const message = `expected ${expected} cells like the header, got ${width}`
    throw new ValidationError([{ row: this.columns.length, line, field: 'row', message }])
  }

  /** `csvCell` of `text[a, b)` into column `c` of the current row. */
  private cell(c: number, text: string, a: number, b: number): void {
    const columns = this.columns
    const kind = this.kinds[c]
    if (a === b) columns.value(c, null)
    else if (kind === 'symbol') columns.value(c, this.symbolOf(text, a, b))
    else if (kind === 'text') columns.value(c, text.slice(a, b))
    else if (kind !== 'data') {
      const n = readCsvNumber(text, a, b)
      if (n !== undefined) columns.numberText(c, text, a, b, n)
      else {
        const cell = text.slice(a, b)
        columns.value(c, kind === 'exact' && (cell === 'true' || cell === 'false') ? cell === 'true' : cell)
      }
    } else {
      const n = readCsvNumber(text, a, b)
      if (n === undefined) {
        const cell = text.slice(a, b)
        columns.value(c, cell === 'true' || cell === 'false' ? cell === 'true' : cell)
      } else if (n === n) columns.number(c, n)
      else columns.value(c, csvCell(text.slice(a, b), 'data'))
    }
  }

  private symbolOf(text: string, a: number, b: number): string {
    const last = this.symbol
    if (last.length === b - a && text.startsWith(last, a)) return last
    this.symbol = text.slice(a, b)
    return this.symbol
  }
}
