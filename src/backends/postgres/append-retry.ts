/**
 * Safe retries of `append` after an in-doubt commit (the connection was lost during COMMIT, so
 * the caller cannot know whether the rows landed). Every committed append records a fingerprint
 * of its batch in `friday_appends` (same transaction as the rows). An append whose keys are
 * already stored is then accepted, writing nothing, only when (1) an append of exactly this
 * batch (same dataset, same rows and values) committed before, and (2) every stored key holds
 * exactly the batch's values. Any other stored key still fails the append with
 * `DuplicateKeyError`. Fingerprints older than `APPEND_JOURNAL_DAYS` are pruned.
 */

import type { Table } from '../../types.js'
import type { Catalog, DatasetRow } from './catalog.js'
import type { PgQueryable, Session } from './session.js'
import { arrayCast, CHUNK_ROWS, columnParam, ident } from './sql.js'
import { STAGE } from './staging.js'

/** How long a committed append can be recognized by its retry. */
export const APPEND_JOURNAL_DAYS = 7

/** Two FNV-1a lanes over bytes: 64 bits, a discriminator (the values are compared too, not trusted to it). */
class Fnv64 {
  private a = 0x811c9dc5
  private b = 0x01000193 ^ 0x5bd1e995
  byte(x: number) {
    this.a = Math.imul(this.a ^ x, 0x01000193)
    this.b = Math.imul(this.b ^ x, 0x01000193) ^ (this.b >>> 15)
  }
  bytes(u8: Uint8Array) {
    for (let i = 0; i < u8.length; i++) this.byte(u8[i])
  }
  text(s: string) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      this.byte(c & 0xff)
      this.byte(c >>> 8)
    }
    this.byte(0xff)
    this.byte(0xfe) // terminator: 'ab','c' differs from 'a','bc'
  }
  hex(): string {
    return (this.a >>> 0).toString(16).padStart(8, '0') + (this.b >>> 0).toString(16).padStart(8, '0')
  }
}

/** The fingerprint of a normalized, key-sorted batch: its schema, row count and every value. */
export function batchFingerprint(batch: Table): string {
  const h = new Fnv64()
  h.text(String(batch.length))
  for (const c of batch.schema) {
    h.text(`${c.name}:${c.type}`)
    const col = batch.columns[c.name]
    if (col.type === 'string') {
      for (let i = 0; i < batch.length; i++) {
        const v = col.values[i]
        if (v === null || v === undefined) h.byte(0)
        else h.text(v)
      }
    } else {
      const v = col.values as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }
      h.bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))
      if ('nulls' in col && col.nulls) h.bytes(col.nulls)
    }
  }
  return h.hex()
}

/** The journal table exists (created by the first append of an instance; cheap after that). */
export function ensureAppendJournal(catalog: Catalog): Promise<void> {
  return catalog.ensureTable(
    catalog.appends,
    `dataset text COLLATE "C" NOT NULL, fingerprint text NOT NULL, commit_id text NOT NULL,
     at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (dataset, fingerprint)`,
  )
}

/** Records a committed append's fingerprint (in its transaction) and prunes old ones of the dataset. */
export async function recordAppend(
  session: Session,
  catalog: Catalog,
  db: PgQueryable,
  dataset: string,
  fingerprint: string,
  commitId: string,
): Promise<void> {
  await session.run(
    db,
    'put',
    `WITH old AS (DELETE FROM ${catalog.appends} WHERE dataset = $1 AND at < now() - make_interval(days => $4))
     INSERT INTO ${catalog.appends} (dataset, fingerprint, commit_id) VALUES ($1, $2, $3)
     ON CONFLICT (dataset, fingerprint) DO UPDATE SET commit_id = EXCLUDED.commit_id, at = now()`,
    [dataset, fingerprint, commitId, APPEND_JOURNAL_DAYS],
  )
}

/** A value as compared: float64 by its bytes (-0 is not 0, NaN equals NaN), others by equality. */
function compared(expr: string, type: string): string {
  return type === 'float64' ? `float8send(${expr})` : expr
}

/**
 * True when the batch is the retry of an append that landed: its fingerprint was committed and no
 * stored key holds other values than the batch (`staged`: the batch is in the staging table).
 */
export async function isLandedRetry(
  session: Session,
  catalog: Catalog,
  db: PgQueryable,
  ds: DatasetRow,
  table: string,
  batch: Table,
  fingerprint: string,
  staged: boolean,
): Promise<boolean> {
  const seen = await session.run(db, 'head', `SELECT 1 FROM ${catalog.appends} WHERE dataset = $1 AND fingerprint = $2`, [
    ds.name,
    fingerprint,
  ])
  if (!seen.rows.length) return false
  const data = ds.schema.filter((c) => c.name !== 'symbol' && c.name !== 'timestamp')
  const inBatch = new Set(batch.schema.map((c) => c.name))
  const stored = data.map((c) => compared(`t.${ident(c.name)}`, c.type))
  const given = data.map((c) => (staged || inBatch.has(c.name) ? compared(`k.${ident(c.name)}`, c.type) : 'NULL'))
  const differs = data.length ? `(${stored.join(', ')}) IS DISTINCT FROM (${given.join(', ')})` : 'false'
  const on = 't.symbol = k.symbol AND t."timestamp" = k."timestamp"'
  if (staged) {
    const res = await session.run(db, 'get', `SELECT 1 FROM ${table} t JOIN ${STAGE} k ON ${on} WHERE ${differs} LIMIT 1`)
    return res.rows.length === 0
  }
  const cols = batch.schema
  const text = `SELECT 1 FROM ${table} t JOIN unnest(${cols.map((c, i) => `$${i + 1}::${arrayCast(c.type)}`).join(', ')})
    AS k(${cols.map((c) => ident(c.name)).join(', ')}) ON ${on} WHERE ${differs} LIMIT 1`
  for (let start = 0; start < batch.length; start += CHUNK_ROWS) {
    const end = Math.min(batch.length, start + CHUNK_ROWS)
    const res = await session.run(
      db,
      'get',
      text,
      cols.map((c) => columnParam(batch.columns[c.name], c.type, start, end)),
    )
    if (res.rows.length) return false
  }
  return true
}
