/**
 * SQL building blocks for the Postgres backend: quoted identifiers, column types, exact
 * microsecond conversions, parameter encoding of columns and the canonical row text that
 * partition checksums are computed over.
 */

import { checkDatasetName } from '../../core/keys.js'
import { formatUs } from '../../core/time.js'
import { BOOL_NULL, type Column, type ColumnType, type Schema } from '../../core/types.js'

/** Rows per statement when a batch travels as array parameters (`unnest($1::text[], ...)`). */
export const CHUNK_ROWS = 10_000

const IDENT_RE = /^[A-Za-z0-9_][A-Za-z0-9_~-]{0,62}$/

/** A double-quoted identifier. Only names that passed the repo's name rules get here; checked again. */
export function ident(name: string): string {
  if (!IDENT_RE.test(name)) throw new Error(`not a safe SQL identifier: ${JSON.stringify(name)}`)
  return `"${name}"`
}

/** `"schema"."name"` */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`
}

/** The first `hexChars` hex digits of SHA-256(text). */
async function sha256Hex(text: string, hexChars: number): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  let hex = ''
  for (const b of digest) hex += b.toString(16).padStart(2, '0')
  return hex.slice(0, hexChars)
}

/**
 * The data table of a new dataset: `ds_<dataset>` up to 60 characters; past that, and whenever
 * that name is taken (`hashed`), `ds_<first 48 chars>~<11 hex of SHA-256(dataset)>`. Dataset
 * names never contain `~`, so no dataset's plain name is another's hashed one. The catalog
 * records each dataset's table, so tables made under earlier rules (`ds_<first 50>_<fnv32>`)
 * stay where they are.
 */
export async function tableNameOf(dataset: string, hashed = false): Promise<string> {
  checkDatasetName(dataset)
  if (!hashed && dataset.length <= 60) return `ds_${dataset}`
  return `ds_${dataset.slice(0, 48)}~${await sha256Hex(dataset, 11)}`
}

/**
 * Names of the indexes of data table `table` (`ds_<rest>`): `p~<rest>` (primary key) and
 * `t~<rest>` (timestamp). No table (`ds_...`, `friday_...`) and no index of the earlier rules
 * (`ds_..._pkey`, `ds_..._ts`) can have these names, and distinct tables give distinct names.
 */
export function indexNamesOf(table: string): { pkey: string; ts: string } {
  const rest = table.startsWith('ds_') ? table.slice(3) : table
  return { pkey: `p~${rest}`, ts: `t~${rest}` }
}

export const SQL_TYPES: Record<ColumnType, string> = {
  float64: 'double precision',
  int64: 'bigint',
  string: 'text',
  boolean: 'boolean',
  timestamp: 'timestamptz',
}

const ARRAY_CASTS: Record<ColumnType, string> = {
  float64: 'float8[]',
  int64: 'int8[]',
  string: 'text[]',
  boolean: 'bool[]',
  timestamp: 'timestamptz[]',
}

export function arrayCast(type: ColumnType): string {
  return ARRAY_CASTS[type]
}

/**
 * Epoch microseconds of a timestamptz expression as bigint, exact on every PostgreSQL version
 * (`extract(epoch ...)` is float8 before 14): whole seconds times 10^6 plus the µs of the second.
 */
export function usOf(expr: string): string {
  return `((extract(epoch from date_trunc('second', ${expr})))::bigint * 1000000 + (extract(microseconds from ${expr}))::bigint % 1000000)`
}

/** A timestamptz parameter from epoch microseconds: an ISO string with µs parses exactly. */
export function tsParam(us: number): string {
  return formatUs(us)
}

/** A column's values as one array parameter (nulls as `null`, int64 as decimal strings, -0 as '-0'). */
export function columnParam(col: Column | undefined, type: ColumnType, start: number, end: number): unknown[] {
  const out = new Array(end - start)
  if (!col) return out.fill(null)
  switch (col.type) {
    case 'float64':
      for (let i = start; i < end; i++) {
        const v = col.values[i]
        out[i - start] = Number.isNaN(v) ? null : Object.is(v, -0) ? '-0' : v // the drivers print -0 as '0'
      }
      break
    case 'timestamp':
      for (let i = start; i < end; i++) out[i - start] = Number.isNaN(col.values[i]) ? null : formatUs(col.values[i])
      break
    case 'int64':
      for (let i = start; i < end; i++) out[i - start] = col.nulls?.[i] === 1 ? null : col.values[i].toString()
      break
    case 'boolean':
      for (let i = start; i < end; i++) out[i - start] = col.values[i] === BOOL_NULL ? null : col.values[i] === 1
      break
    case 'string':
      for (let i = start; i < end; i++) out[i - start] = col.values[i]
      break
  }
  if (col.type !== type) throw new Error(`column type ${col.type} where ${type} was expected`)
  return out
}

/** The select-list expression that reads a column back in the form `readColumn` decodes. */
export function selectExpr(alias: string, name: string, type: ColumnType): string {
  const col = `${alias}.${ident(name)}`
  return type === 'timestamp' ? usOf(col) : col
}

/**
 * The canonical text of one row, the unit partition checksums and sizes are computed over:
 * `symbol` (JSON), epoch µs, then `name:value` for each non-null column (float64 as the hex of
 * its 8 IEEE bytes, strings as JSON). Null columns are left out (concat_ws skips NULLs), so
 * adding a column to the dataset does not change the checksum of existing rows. Independent of
 * session settings (TimeZone, extra_float_digits).
 */
export function rowTextExpr(alias: string, schema: Schema): string {
  const parts = [`to_json(${alias}.symbol)::text`, `${usOf(`${alias}."timestamp"`)}::text`]
  for (const { name, type } of schema) {
    if (name === 'symbol' || name === 'timestamp') continue
    const col = `${alias}.${ident(name)}`
    const value =
      type === 'float64'
        ? `encode(float8send(${col}), 'hex')`
        : type === 'string'
          ? `to_json(${col})::text`
          : type === 'timestamp'
            ? `${usOf(col)}::text`
            : `${col}::text`
    parts.push(`'${name}:' || ${value}`)
  }
  return `concat_ws(',', ${parts.join(', ')})`
}
