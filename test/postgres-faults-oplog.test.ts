/**
 * The PostgreSQL op log store against records `jsonb` cannot hold as they are: NUL and lone
 * surrogates in strings (issue 14), and a record the database refuses whatever we do. One bad
 * record must not block the others, nor the flushes after it.
 */

import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { createPostgresStorage, type PgPoolLike } from '../src/backends/postgres/index.js'
import type { OpRecord } from '../src/core/oplog-types.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'

const server = await requirePostgresOrSkip()
const pool = server ? new pg.Pool({ connectionString: server.url, max: 2 }) : null
const schema = `friday_fo_${Math.random().toString(36).slice(2, 8)}`

afterAll(async () => {
  if (pool) {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  }
  await server?.stop()
})

let n = 0
function record(over: Partial<OpRecord> = {}): OpRecord {
  n++
  return {
    id: `01J0000000000000000000${String(n).padStart(4, '0')}`,
    op: 'write',
    at: new Date(Date.UTC(2024, 0, 2, 0, 0, n)).toISOString(),
    dataset: 'bars',
    partitions: [],
    partitionCount: 0,
    rows: n,
    bytes: 0,
    durationMs: 1,
    requests: { get: 0, put: 1, head: 0, list: 0, delete: 0 },
    retries: 0,
    outcome: 'ok',
    error: null,
    ...over,
  } as OpRecord
}

describe.skipIf(!server)('postgres op log: records jsonb cannot hold as they are', () => {
  const storage = server ? createPostgresStorage({ pool: pool as unknown as PgPoolLike, schema }) : null
  const store = storage?.opLogStore?.()

  it('stores a record with NUL and lone surrogates (U+FFFD in their place) with the rest of its batch, and later batches', async () => {
    const good1 = record()
    const bad = record({
      outcome: 'error',
      error: { code: 'store_error', message: 'bad byte \u0000 here, half a pair \ud83d and \udc00 alone', status: 502 },
      details: { 'key\u0000': 'v\u0000', nested: ['\u0000', { deep: '\ud800x' }], pair: '\ud83d\ude00' },
    })
    const good2 = record()
    await store!.append([good1, bad, good2])
    const later = [record(), record()]
    await store!.append(later) // the next flush is not blocked either
    const stored = await store!.query({ limit: 100 })
    expect(stored.map((r) => r.id).sort()).toEqual([good1.id, bad.id, good2.id, ...later.map((r) => r.id)].sort())
    const back = stored.find((r) => r.id === bad.id)!
    expect(back.error?.message).toBe('bad byte \uFFFD here, half a pair \uFFFD and \uFFFD alone')
    expect(back.details).toEqual({ 'key\uFFFD': 'v\uFFFD', nested: ['\uFFFD', { deep: '\uFFFDx' }], pair: '\ud83d\ude00' })
    expect(stored.find((r) => r.id === good1.id)).toEqual(good1)
  })

  it('a record the database refuses anyway is stored as a stub that says why; the others in full', async () => {
    const before = record()
    const refused = record({ at: 'not a time', rows: 7 })
    const after = record()
    await store!.append([before, refused, after])
    const stored = await store!.query({ limit: 1000 })
    expect(stored.find((r) => r.id === before.id)).toEqual(before)
    expect(stored.find((r) => r.id === after.id)).toEqual(after)
    const stub = stored.find((r) => r.id === refused.id)!
    expect(stub.rows).toBe(7)
    expect(String(stub.details?.storeError)).toMatch(/could not be stored in full/)
  })
})
