/**
 * Valibot schemas for every path and query parameter of the HTTP API, and the one function that
 * turns their issues into a `ValidationError` naming the parameter. Routes parse once, here, and
 * trust the typed result afterwards.
 */

import * as v from 'valibot'
import { editDistance } from '../core/edit-distance.js'
import { ValidationError } from '../core/errors.js'
import { columnNameProblem, isDatasetName, symbolProblem } from '../core/keys.js'
import { OP_KINDS } from '../core/oplog-types.js'
import { parseTimeUs, TIME_UNITS } from '../core/time.js'
import { DECLARED_TYPES, type DeclaredType } from '../formats/column-options.js'

/** The largest `limit` a read accepts. */
export const MAX_LIMIT = 10_000_000
/** At most this many entries in a `symbols` or `columns` list. */
export const MAX_LIST_ENTRIES = 10_000

const DIGITS = /^\d+$/

export const DatasetParam = v.pipe(
  v.string(),
  v.check(
    isDatasetName,
    (issue) =>
      `invalid dataset name ${JSON.stringify(issue.input)}: expected 1-64 letters, digits, '_' or '-', starting with a letter or digit`,
  ),
)

const SymbolEntry = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const problem = symbolProblem(dataset.value)
    if (problem) addIssue({ message: `invalid symbol ${JSON.stringify(dataset.value)}: ${problem}` })
  }),
)

export const SymbolParam = SymbolEntry

/** A partition period: a UTC day `YYYY-MM-DD` (partition_by date) or month `YYYY-MM` (partition_by month). */
export const PeriodParam = v.pipe(
  v.string(),
  v.regex(
    /^\d{4}-\d{2}(-\d{2})?$/,
    (issue) => `expected a day YYYY-MM-DD or a month YYYY-MM, got ${JSON.stringify(issue.input)}`,
  ),
)

/** `A,B,C` (or the parameter repeated, joined with commas before parsing): no empty entries. */
function commaList<T extends v.GenericSchema<string, string>>(entry: T, what: string) {
  return v.pipe(
    v.string(),
    v.transform((s) => s.split(',')),
    v.check((list) => list.length <= MAX_LIST_ENTRIES, `at most ${MAX_LIST_ENTRIES} ${what} per request`),
    v.check((list) => !list.includes(''), `empty entry in the comma-separated list of ${what}`),
    v.array(entry),
  )
}

const ColumnEntry = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const problem = columnNameProblem(dataset.value)
    if (problem) addIssue({ message: `${JSON.stringify(dataset.value)}: ${problem}` })
  }),
)

/** A time bound: epoch milliseconds (digits only) or an ISO-8601 date / date-time (no offset = UTC). */
export const TimeParam = v.pipe(
  v.string(),
  v.transform((s): number | string => (DIGITS.test(s) ? Number(s) : s)),
  v.check(
    (t) => parseTimeUs(t) !== null,
    (issue) => `cannot parse time ${JSON.stringify(String(issue.input))}: expected epoch milliseconds or ISO-8601`,
  ),
)

const LimitParam = v.pipe(
  v.string(),
  v.regex(DIGITS, (issue) => `expected a non-negative integer, got ${JSON.stringify(issue.input)}`),
  v.transform(Number),
  v.maxValue(MAX_LIMIT, `must be at most ${MAX_LIMIT}`),
)

const picklist = <const T extends string[]>(options: T) =>
  v.picklist(options, (issue) => `expected one of ${options.join(', ')}, got ${JSON.stringify(issue.input)}`)

const bounds = {
  start: v.optional(TimeParam),
  end: v.optional(TimeParam),
}

/** `end` must not be before `start` (an equal pair is an empty range); the issue names `end`. */
function orderedBounds<T extends { start?: number | string; end?: number | string }>() {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const { start, end } = dataset.value
    if (start === undefined || end === undefined || parseTimeUs(end)! >= parseTimeUs(start)!) return
    addIssue({
      message: `end ${JSON.stringify(String(end))} is before start ${JSON.stringify(String(start))}`,
      path: [{ type: 'object', origin: 'value', input: dataset.value as Record<string, unknown>, key: 'end', value: end }],
    })
  })
}

/** `volume:int64,open:float64`: declared column types of a write (`DECLARED_TYPES`). */
const TypesParam = v.pipe(
  v.string(),
  v.transform((s) => s.split(',')),
  v.check((list) => list.length <= MAX_LIST_ENTRIES, `at most ${MAX_LIST_ENTRIES} entries`),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const out: Record<string, DeclaredType> = Object.create(null)
    for (const entry of dataset.value) {
      const at = entry.indexOf(':')
      const name = entry.slice(0, at)
      const type = entry.slice(at + 1)
      const problem =
        at <= 0
          ? `expected column:type (e.g. volume:int64), got ${JSON.stringify(entry)}`
          : !(DECLARED_TYPES as readonly string[]).includes(type)
            ? `'${name}': unknown type ${JSON.stringify(type)}, expected ${DECLARED_TYPES.join(', ')}`
            : Object.hasOwn(out, name)
              ? `'${name}' is declared twice`
              : null
      if (problem) {
        addIssue({ message: problem })
        return NEVER
      }
      out[name] = type as DeclaredType
    }
    return out
  }),
)

export const WriteQuery = v.strictObject({
  mode: v.optional(picklist(['upsert', 'append', 'replace']), 'upsert'),
  /**
   * Unit of epoch numbers in the body's time column. Absent: milliseconds, and a number
   * implausible in milliseconds (|v| < 1e11: before 1973-03-03) is refused as probably seconds.
   */
  time_unit: v.optional(picklist([...TIME_UNITS])),
  /** Declared column types, `volume:int64,...`: values converted exactly or refused. */
  types: v.optional(TypesParam),
})

export const ReadQuery = v.pipe(
  v.strictObject({
    symbols: v.optional(commaList(SymbolEntry, 'symbols')),
    ...bounds,
    columns: v.optional(commaList(ColumnEntry, 'columns')),
    limit: v.optional(LimitParam),
    /** Checked by `outputFormat` (formats/), the one list of format names (json, ndjson/jsonl, csv, parquet). */
    format: v.optional(v.string()),
    /** `true`: CSV string values starting with `=`, `+`, `-`, `@`, tab or CR get a leading `'` (see app.ts). */
    csv_escape_formulas: v.optional(picklist(['true', 'false'])),
  }),
  orderedBounds(),
)

export const DeleteQuery = v.pipe(
  v.strictObject({
    symbols: v.optional(commaList(SymbolEntry, 'symbols')),
    ...bounds,
    all: v.optional(picklist(['true', 'false'])),
  }),
  orderedBounds(),
)

export const PartitionsQuery = v.pipe(
  v.strictObject({
    symbol: v.optional(SymbolEntry),
    symbols: v.optional(commaList(SymbolEntry, 'symbols')),
    ...bounds,
  }),
  orderedBounds(),
)

/**
 * `GET .../partitions/manifest`: one partition of any partitioning, by its hive `path` (as
 * `GET .../partitions` lists it, e.g. `date=2024-01-02` or `symbol=EUR%2FUSD/date=2024-01-02`)
 * or by its values (`symbol`, `date` YYYY-MM-DD, `month` YYYY-MM); not both.
 */
export const ManifestQuery = v.pipe(
  v.strictObject({
    path: v.optional(
      v.pipe(v.string(), v.minLength(1, 'expected a partition path'), v.maxLength(1024, 'at most 1024 characters')),
    ),
    symbol: v.optional(SymbolEntry),
    date: v.optional(
      v.pipe(
        v.string(),
        v.regex(/^\d{4}-\d{2}-\d{2}$/, (i) => `expected a day YYYY-MM-DD, got ${JSON.stringify(i.input)}`),
      ),
    ),
    month: v.optional(
      v.pipe(
        v.string(),
        v.regex(/^\d{4}-\d{2}$/, (i) => `expected a month YYYY-MM, got ${JSON.stringify(i.input)}`),
      ),
    ),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const { path, ...values } = dataset.value
    const n = Object.values(values).filter((x) => x !== undefined).length
    if ((path === undefined) === (n === 0)) {
      addIssue({
        message:
          path === undefined
            ? 'name the partition: path=<partition path> (as GET .../partitions lists it) or its values (symbol, date, month)'
            : 'give either path or the partition values (symbol, date, month), not both',
        path: [{ type: 'object', origin: 'value', input: dataset.value as Record<string, unknown>, key: 'path', value: path }],
      })
    }
  }),
)

/** The most records one `GET /v1/oplog` returns. */
export const MAX_OPLOG_LIMIT = 10_000

/** `GET /v1/oplog`: `since` inclusive, `until` exclusive (as `start`/`end`), `op` one of the op kinds. */
export const OplogQuery = v.pipe(
  v.strictObject({
    since: v.optional(TimeParam),
    until: v.optional(TimeParam),
    dataset: v.optional(DatasetParam),
    op: v.optional(picklist([...OP_KINDS])),
    limit: v.optional(
      v.pipe(
        v.string(),
        v.regex(/^[1-9]\d*$/, (issue) => `expected a positive integer, got ${JSON.stringify(issue.input)}`),
        v.transform(Number),
        v.maxValue(MAX_OPLOG_LIMIT, `must be at most ${MAX_OPLOG_LIMIT}`),
      ),
      '100',
    ),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return
    const { since, until } = dataset.value
    if (since === undefined || until === undefined || parseTimeUs(until)! >= parseTimeUs(since)!) return
    addIssue({
      message: `until ${JSON.stringify(String(until))} is before since ${JSON.stringify(String(since))}`,
      path: [{ type: 'object', origin: 'value', input: dataset.value as Record<string, unknown>, key: 'until', value: until }],
    })
  }),
)

export const NoQuery = v.strictObject({})

/** Query parameters whose repetitions are joined with commas (`?symbols=A&symbols=B` = `A,B`). */
const LIST_PARAMS = new Set(['symbols', 'columns', 'types'])

/**
 * Query parameters as a flat object for the schemas. A list parameter may repeat; any other
 * given twice is an error rather than a silent first-wins.
 */
export function queryObject(queries: Record<string, string[]>): Record<string, string> {
  // no prototype: `__proto__` becomes an own key, an unknown parameter like any other (400)
  const out: Record<string, string> = Object.create(null)
  for (const [key, values] of Object.entries(queries)) {
    if (values.length > 1 && !LIST_PARAMS.has(key)) {
      throw new ValidationError([{ field: key, message: `query parameter '${key}' given ${values.length} times, expected once` }])
    }
    out[key] = values.join(',')
  }
  return out
}

function fieldOf(issue: v.BaseIssue<unknown>, fallback: string): string {
  const keys = issue.path?.filter((p) => p.type === 'object').map((p) => String(p.key))
  return keys?.length ? keys.join('.') : fallback
}

/** The parameter names a query schema (a strict object, maybe in a pipe) accepts. */
function knownKeys(schema: v.GenericSchema): string[] {
  const s = schema as v.GenericSchema & { entries?: Record<string, unknown>; pipe?: v.GenericSchema[] }
  if (s.entries) return Object.keys(s.entries)
  const inner = s.pipe?.[0]
  return inner && inner !== schema ? knownKeys(inner) : []
}

/**
 * `unknown query parameter 'symbol': did you mean 'symbols'? (accepted: symbols, start, ...)`:
 * the closest accepted name (case, `-` for `_`, or at most 2 edits away) is suggested.
 */
export function unknownParamMessage(key: string, known: readonly string[]): string {
  const base = `unknown query parameter '${key}'`
  if (known.length === 0) return `${base}: this route takes no query parameters`
  const norm = key.toLowerCase().replaceAll('-', '_')
  let best: string | undefined
  let bestD = key.length > 3 ? 3 : 2
  for (const k of known) {
    const d = k === norm ? 0 : editDistance(norm, k)
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  const hint = best !== undefined ? `: did you mean '${best}'?` : ''
  return `${base}${hint} (accepted: ${known.join(', ')})`
}

function messageOf(issue: v.BaseIssue<unknown>, known: readonly string[]): string {
  if (issue.type === 'strict_object' && issue.path?.length) {
    return unknownParamMessage(String(issue.path[issue.path.length - 1].key), known)
  }
  return issue.message
}

/**
 * Parses `input` with `schema` or throws a `ValidationError` whose issues name each offending
 * parameter (`field`; `fallback` when the issue has no key, e.g. a path parameter). An unknown
 * parameter's message suggests the accepted name it is closest to (`symbol` → `symbols`).
 */
export function parseParam<S extends v.GenericSchema>(schema: S, input: unknown, fallback: string): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortPipeEarly: true })
  if (result.success) return result.output
  const known = knownKeys(schema)
  throw new ValidationError(result.issues.map((issue) => ({ field: fieldOf(issue, fallback), message: messageOf(issue, known) })))
}
