/** A request body in any accepted format → columnar input for `storage.write`. */

import { UnsupportedMediaTypeError } from '../core/errors.js'
import type { InputColumns, Table } from '../core/types.js'
import { decodeParquetBody, type ParquetIngestLimits } from '../parquet/index.js'
import { DEFAULT_LIMITS } from '../table/limits.js'
import { type ColumnOptions, ColumnPlan, checkColumnOptions } from './column-options.js'
import { parseCsvBody } from './csv-input.js'
import { parseJsonBody, parseNdjsonBody } from './json-input.js'
import type { BodyFormat } from './media-types.js'
import { type BodyLimit, readAllBytes } from './read-body.js'
import { applyPlanToTable } from './table-columns.js'

/**
 * Reads a whole body as a stream (never more than `maxBytes` bytes: `PayloadTooLargeError` as
 * soon as the count passes it, or upfront when `declaredLength` says so) and turns it into
 * columnar input for `storage.write`: typed column vectors built as rows arrive for JSON, NDJSON
 * and CSV (see `TypedColumns`), a `Table` for Parquet. Bad syntax → `ValidationError` naming the
 * 0-based data `row` and, for NDJSON and CSV, the 1-based `line` where that row starts. Epoch
 * numbers in the time column are read here in `columns.timeUnit` (exactly, or refused naming row
 * and field), and declared types applied; other values are checked by the storage (which names
 * row and field).
 */
export async function parseBody(
  body: ReadableStream<Uint8Array> | null,
  format: BodyFormat,
  options: {
    maxBytes: number
    declaredLength?: number
    /** Seconds the body may take to arrive (408 past it); none: no deadline. */
    maxReadSeconds?: number
    /** Columns a JSON, NDJSON or CSV body may have (413 past it, before they are allocated). */
    maxColumns?: number
    /** Limits of a Parquet body (claimed rows, page sizes...). */
    parquet?: Partial<ParquetIngestLimits>
    /** Time unit, renames, declared types, one symbol (checked with `checkColumnOptions`). */
    columns?: ColumnOptions
    /** CSV only: the cell separator, one character (default `,`; a tab for TSV). */
    delimiter?: string
  },
): Promise<InputColumns | Table> {
  const limit: BodyLimit = {
    maxBytes: options.maxBytes,
    declaredLength: options.declaredLength,
    maxReadSeconds: options.maxReadSeconds,
  }
  const maxColumns = options.maxColumns ?? DEFAULT_LIMITS.maxColumnsPerRequest
  if (options.columns) checkColumnOptions(options.columns)
  const plan = new ColumnPlan(options.columns)
  switch (format) {
    case 'json':
      return parseJsonBody(body, limit, maxColumns, plan)
    case 'ndjson':
      return parseNdjsonBody(body, limit, maxColumns, plan)
    case 'csv':
      return parseCsvBody(body, limit, maxColumns, plan, options.delimiter)
    case 'tsv':
      return parseCsvBody(body, limit, maxColumns, plan, '\t')
    case 'parquet':
      return applyPlanToTable(await parseParquetBody(body, limit, options.parquet), plan)
    default:
      await body?.cancel().catch(() => {})
      throw new UnsupportedMediaTypeError(String(format), ['json', 'ndjson', 'csv', 'tsv', 'parquet'])
  }
}

/**
 * A whole Parquet file (it is read from its footer, so it is buffered), decoded strictly to our
 * Table: a damaged file, a type we cannot store exactly or a value that would change is a 400
 * naming the column (and row), a claim past `limits` a 413, an unsupported codec a 415.
 */
async function parseParquetBody(
  body: ReadableStream<Uint8Array> | null,
  limit: BodyLimit,
  limits: Partial<ParquetIngestLimits> | undefined,
): Promise<Table> {
  const bytes = await readAllBytes(body, limit)
  return decodeParquetBody(bytes, limits)
}
