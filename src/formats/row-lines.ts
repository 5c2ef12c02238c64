/**
 * The body line each row of a CSV or NDJSON body starts on, kept to name it in errors found after
 * parsing (the storage's checks name only the row). Rows mostly follow each other one line apart,
 * so only the rows where `line - row` changes (the first row, a row after blank lines or after a
 * quoted cell spanning lines) are recorded: a body without blank lines costs one entry.
 */

import { type FieldIssue, SchemaConflictError, StorageError, ValidationError } from '../core/errors.js'

export class RowLines {
  /** Pairs (first row, `line - row` from it on), rows ascending. */
  private marks = new Uint32Array(8)
  private count = 0
  private shift = -1
  /** Rows noted (0 .. rows - 1). */
  rows = 0

  /** Row `row` starts on line `line` (rows noted in order, each line after the previous row's). */
  note(row: number, line: number): void {
    this.rows = row + 1
    if (line - row === this.shift) return
    this.shift = line - row
    if (this.count * 2 === this.marks.length) {
      const bigger = new Uint32Array(this.marks.length * 2)
      bigger.set(this.marks)
      this.marks = bigger
    }
    this.marks[this.count * 2] = row
    this.marks[this.count * 2 + 1] = this.shift
    this.count++
  }

  /** The 1-based line row `row` starts on, or undefined for a row not noted. */
  lineOf(row: number): number | undefined {
    if (!Number.isInteger(row) || row < 0 || row >= this.rows || this.count === 0) return undefined
    let lo = 0
    let hi = this.count - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.marks[mid * 2] <= row) lo = mid
      else hi = mid - 1
    }
    return row + this.marks[lo * 2 + 1]
  }
}

/** The lines of bodies parsed into columns, by the columns object `parseBody` returned. */
const linesOfInput = new WeakMap<object, RowLines>()

/** Records that `input` was parsed from a body whose rows start on `lines`. */
export function setBodyLines(input: object, lines: RowLines): void {
  linesOfInput.set(input, lines)
}

/**
 * `err`, thrown by `storage.write(input)` for a CSV or NDJSON body, with the body line of each row
 * it names: a `ValidationError`'s issues get `line` (and its message `row N (line L)`), a
 * `SchemaConflictError`'s details `line` (and its message `(row N, line L)`). Any other error
 * (a `DuplicateKeyError` names keys, not rows), or input not parsed from such a body, is
 * returned as it is.
 */
export function withBodyLines(err: unknown, input: object): unknown {
  const lines = linesOfInput.get(input)
  if (!lines || !(err instanceof StorageError)) return err
  if (err instanceof ValidationError) {
    let changed = false
    const issues = err.issues.map((issue): FieldIssue => {
      if (issue.row === undefined || issue.line !== undefined) return issue
      const line = lines.lineOf(issue.row)
      if (line === undefined) return issue
      changed = true
      return { ...issue, line }
    })
    if (!changed) return err
    const { issues: _, ...extra } = err.details ?? {}
    return new ValidationError(issues, Object.keys(extra).length ? extra : undefined)
  }
  const d = err.details
  if (err instanceof SchemaConflictError && d && typeof d.row === 'number') {
    const line = lines.lineOf(d.row)
    if (line === undefined) return err
    return new SchemaConflictError(String(d.column), String(d.expected), String(d.got), d.row, line)
  }
  return err
}
