/**
 * How a body's columns are read, beyond their values: the unit of epoch numbers in the time
 * column (`time_unit`), renames, declared types (`types=volume:int64`) and a symbol for files
 * that have no symbol column (the CLI's `--symbol`). Shared by the CSV, JSON, NDJSON and Parquet
 * readers, the HTTP rows route and `friday ingest`.
 */

import { ValidationError } from '../core/errors.js'
import { columnNameProblem, symbolProblem } from '../core/keys.js'
import { PLAUSIBLE_MS, TIME_UNITS, type TimeUnit } from '../core/time.js'

/** The columns the storage reads as the time of a row. */
export const TIME_COLUMNS: ReadonlySet<string> = new Set(['timestamp', 'datetime', 'date'])

/** The types a column may be declared as (`--type volume=int64`, `types=volume:int64`). */
export const DECLARED_TYPES = ['int64', 'float64', 'string', 'boolean'] as const
export type DeclaredType = (typeof DECLARED_TYPES)[number]

export interface ColumnOptions {
  /**
   * Unit of epoch numbers in the time column. Given (`time_unit`, `--time-unit`, config
   * `storage.ingest.time_unit`): every in-range value is accepted. Absent: milliseconds, and a
   * value implausible in milliseconds (|v| < 1e11, before 1973-03-03) is refused as probably
   * seconds (`epochToUs`).
   */
  timeUnit?: TimeUnit
  /** Column renames, file name → stored name (`--rename "Adj Close=adj_close"`, `--time-column Date`). */
  rename?: Readonly<Record<string, string>>
  /** Declared types by stored name: values are converted exactly or refused naming row and field. */
  types?: Readonly<Record<string, DeclaredType>>
  /** The symbol of every row, for a body without a symbol column. */
  symbol?: string
}

/** What a column's values go through: `time` (epoch numbers in the unit) or a declared type. */
export type Special = 'time' | DeclaredType

/** `ColumnOptions` resolved once per body. */
export class ColumnPlan {
  readonly timeUnit: TimeUnit
  readonly unitGiven: boolean
  /** µs per unit for the inline fast path of integers (NaN for ns: that path is not taken). */
  readonly usPerUnit: number
  /** |µs| below this is refused as implausible (the default unit); 0 when a unit is given. */
  readonly plausibleUs: number
  readonly symbol: string | undefined
  private readonly rename: ReadonlyMap<string, string>
  private readonly types: ReadonlyMap<string, DeclaredType>
  /** Matches a JSON member `"<key>": <number with a fraction or exponent>` for a key read exactly. */
  readonly exactNumberRe: RegExp | null
  /** Raw (file) keys whose numbers are read exactly: time columns and declared int64 columns. */
  readonly exactKeys: string[]

  constructor(options: ColumnOptions = {}) {
    this.timeUnit = options.timeUnit ?? 'ms'
    this.unitGiven = options.timeUnit !== undefined
    this.usPerUnit = { s: 1_000_000, ms: 1000, us: 1, ns: Number.NaN }[this.timeUnit]
    this.plausibleUs = this.unitGiven ? 0 : PLAUSIBLE_MS * 1000
    this.symbol = options.symbol
    this.rename = new Map(Object.entries(options.rename ?? {}))
    this.types = new Map(Object.entries(options.types ?? {}))
    const renamedAway = new Set(this.rename.keys())
    const rawOf = (stored: string): string[] => [
      ...(renamedAway.has(stored) ? [] : [stored]),
      ...[...this.rename].filter(([, to]) => to === stored).map(([from]) => from),
    ]
    const int64 = [...this.types].filter(([, t]) => t === 'int64').flatMap(([name]) => rawOf(name))
    this.exactKeys = [...[...TIME_COLUMNS].flatMap(rawOf), ...int64]
    this.exactNumberRe = this.exactKeys.length
      ? new RegExp(
          `"(?:${this.exactKeys.map((k) => escapeRegExp(JSON.stringify(k).slice(1, -1))).join('|')})"\\s*:\\s*-?\\d+[.eE]`,
        )
      : null
  }

  /** The stored name of a file column. */
  nameOf(raw: string): string {
    return this.rename.get(raw) ?? raw
  }

  /** How the values of the stored column `name` are read. */
  specialOf(name: string): Special | undefined {
    return TIME_COLUMNS.has(name) ? 'time' : this.types.get(name)
  }

  /** Whether `name` holds a symbol (it is never typed). */
  isSymbol(name: string): boolean {
    return name === 'symbol'
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * Checks the options once, before a body is read: renames and declared types name valid
 * columns, no type is declared for `symbol` or a time column, the symbol is valid. Throws a
 * `ValidationError` naming `field` (`rename`, `types`, `symbol`, `time_unit`).
 */
export function checkColumnOptions(options: ColumnOptions): void {
  const issues: { field: string; message: string }[] = []
  if (options.timeUnit !== undefined && !(TIME_UNITS as readonly string[]).includes(options.timeUnit))
    issues.push({
      field: 'time_unit',
      message: `expected one of ${TIME_UNITS.join(', ')}, got ${JSON.stringify(options.timeUnit)}`,
    })
  const targets = new Map<string, string>()
  for (const [from, to] of Object.entries(options.rename ?? {})) {
    const problem = from === '' ? 'empty column name to rename' : to === '' ? `empty new name for '${from}'` : null
    if (problem) issues.push({ field: 'rename', message: problem })
    else if (to !== 'symbol' && !TIME_COLUMNS.has(to) && columnNameProblem(to))
      issues.push({ field: 'rename', message: `'${from}=${to}': ${columnNameProblem(to)}` })
    else if (targets.has(to))
      issues.push({ field: 'rename', message: `'${targets.get(to)}' and '${from}' are both renamed to '${to}'` })
    targets.set(to, from)
  }
  for (const [name, type] of Object.entries(options.types ?? {})) {
    if (!(DECLARED_TYPES as readonly string[]).includes(type))
      issues.push({
        field: 'types',
        message: `'${name}': unknown type ${JSON.stringify(type)}, expected ${DECLARED_TYPES.join(', ')}`,
      })
    else if (name === 'symbol' || TIME_COLUMNS.has(name))
      issues.push({ field: 'types', message: `'${name}' is a key column: its type is fixed (use time_unit for epoch numbers)` })
  }
  if (options.symbol !== undefined) {
    const problem = symbolProblem(options.symbol)
    if (problem) issues.push({ field: 'symbol', message: `invalid symbol ${JSON.stringify(options.symbol)}: ${problem}` })
  }
  if (issues.length) throw new ValidationError(issues)
}

/**
 * `volume:int64,open:float64` (the HTTP `types` parameter; `=` also accepted) → declared types.
 * Throws a `ValidationError` on field `types` for an entry without a type.
 */
export function parseTypeList(text: string, separator = /[:=]/): Record<string, DeclaredType> {
  const out: Record<string, DeclaredType> = {}
  for (const entry of text.split(',')) {
    const m = separator.exec(entry)
    if (!m || m.index === 0) {
      throw new ValidationError([{ field: 'types', message: `expected column:type, got ${JSON.stringify(entry)}` }])
    }
    out[entry.slice(0, m.index).trim()] = entry.slice(m.index + 1).trim() as DeclaredType
  }
  return out
}
