/**
 * The Postgres backend's bulk write path (a staging table loaded by binary COPY, or by unnest
 * statements, then merged set-based), through `pg` and through the Neon driver (WebSocket relay):
 * that COPY is really used (and not where the client cannot do it), that it stores exactly what
 * the parameter path stores, how upserts of unchanged and changed rows touch the partition
 * metadata, and that a failed COPY leaves the connection usable. The conformance suite also runs
 * on this path (test/postgres.test.ts, `bulkRows: 0`).
 */

import { afterAll, describe, expect, it } from 'vitest'
import ws from 'ws'
import type { DatasetRow } from '../src/backends/postgres/catalog.js'
import { copyBinaryChunks } from '../src/backends/postgres/copy-binary.js'
import { canCopy, copyIn } from '../src/backends/postgres/copy-in.js'
import {
  createNeonPool,
  createPostgresStorage,
  type PgClientLike,
  type PgPoolLike,
  type PgQueryConfig,
  type PgQueryResult,
} from '../src/backends/postgres/index.js'
import { mergeStaged } from '../src/backends/postgres/merge.js'
import { createPgPool } from '../src/backends/postgres/node.js'
import type { PgQueryable } from '../src/backends/postgres/pool-types.js'
import { Session } from '../src/backends/postgres/session.js'
import { KEY_SCHEMA } from '../src/core/table.js'
import type { DataStorage, InputRow } from '../src/core/types.js'
import { normalizeInput } from '../src/table/normalize.js'
import { rowsOf, shuffle, tms, uniqueDataset } from './conformance/storage.case.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { startWsRelay, type WsRelay } from './helpers/ws-relay.js'

const server = await requirePostgresOrSkip()
const relay: WsRelay | null = server ? await startWsRelay() : null
const SCHEMA = `friday_t_${Math.random().toString(36).slice(2, 8)}_bulk`
const skip = server ? false : 'no PostgreSQL (set DATABASE_URL or install PostgreSQL)'
if (skip) console.warn(`[skipped] postgres bulk path: ${skip}`)

const pgPool = server ? createPgPool(server.url, { max: 4 }) : null
const neonPool = server
  ? createNeonPool(server.url, {
      max: 4,
      webSocketConstructor: ws,
      wsProxy: (host, p) => `127.0.0.1:${relay?.port}/v1?address=${host}:${p}`,
      useSecureWebSocket: false,
      pipelineConnect: false,
    })
  : null
const DRIVERS = [
  ['pg', () => pgPool as PgPoolLike],
  ['neon', () => neonPool as PgPoolLike],
] as const

afterAll(async () => {
  await pgPool?.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`)
  await pgPool?.end()
  await neonPool?.end()
  await relay?.close()
  await server?.stop()
})

/** `pool` with every statement text recorded; `bare` clients hide the driver's connection (no COPY). */
function recording(pool: PgPoolLike, bare = false): { pool: PgPoolLike; texts: string[] } {
  const texts: string[] = []
  const recorded =
    (db: PgQueryable) =>
    (q: PgQueryConfig): Promise<PgQueryResult> => {
      texts.push(q.text)
      return db.query(q)
    }
  return {
    texts,
    pool: {
      query: recorded(pool),
      connect: async () => {
        const client = await pool.connect()
        if (bare) return { query: recorded(client), release: (e) => client.release(e) } as PgClientLike
        return new Proxy(client, {
          get(target, key) {
            if (key === 'query') return recorded(target)
            const v = Reflect.get(target, key)
            return typeof v === 'function' ? v.bind(target) : v
          },
        })
      },
    },
  }
}

/** Rows covering every type's edges: float64 bits, int64 extremes, UTF-8, both edges of the accepted time range, nulls. */
function edgeRows(): InputRow[] {
  const floats = [-0, 0, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 0.1 + 0.2, 1e21, -1.5e-300, Math.PI, null]
  const ints = [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n, -1n, 0n, null]
  const notes = [
    '',
    'a\tb\nc\\d\re',
    'ünï 株',
    '😀 emoji',
    'pair \uD83D\uDE00 surrogates',
    '"quoted", {braces}',
    'NULL',
    '\\N',
    null,
  ]
  const times = [
    '1900-01-01T00:00:00.000001Z',
    '1969-12-31T23:59:59.999999Z',
    '2199-12-31T23:59:59.999999Z', // the last accepted µs (issue 12: one range, exact to the µs)
    '1700-01-01T00:00:00.000001Z',
  ]
  const rows: InputRow[] = []
  for (let i = 0; i < 40; i++) {
    rows.push({
      symbol: i % 3 === 0 ? 'ÄPFEL' : i % 3 === 1 ? 'A' : 'B\\"',
      timestamp: i < times.length ? times[i] : tms(i % 4, i),
      close: floats[i % floats.length],
      volume: ints[i % ints.length],
      note: notes[i % notes.length],
      flag: i % 3 === 0 ? null : i % 3 === 1,
      at: i % 5 === 0 ? null : new Date(Date.UTC(1950 + i, 0, 1, 0, 0, 0, i)),
    })
  }
  return rows
}

describe('binary COPY encoding', () => {
  it('sizes UTF-8 exactly as TextEncoder encodes it (pairs, lone surrogates, 2- and 3-byte code points)', () => {
    const values = ['', 'abc', 'ünï', '株式', '😀', 'a\uD800b', '\uDC00', 'x\uD83D', '€😀€']
    // normalizeInput refuses lone surrogates (issue 12): the encoder is given them directly
    const { table } = normalizeInput(
      values.map((_, i) => ({ symbol: 'A', timestamp: 1_700_000_000_000 + i, note: 'x' })),
      null,
    )
    table.columns.note = { type: 'string', values }
    const cols = table.schema.filter((c) => c.name === 'note')
    const bytes = new Uint8Array(Array.from(copyBinaryChunks(table, cols)).flatMap((c) => Array.from(c)))
    const expected = 19 + values.reduce((n, v) => n + 2 + 4 + new TextEncoder().encode(v).length, 0) + 2
    expect(bytes.length).toBe(expected)
    // the last field of the last row decodes to the original text
    const last = new TextEncoder().encode(values[values.length - 1])
    expect(Array.from(bytes.subarray(bytes.length - 2 - last.length, bytes.length - 2))).toEqual(Array.from(last))
  })

  it('splits rows into chunks with the header first and the trailer last', () => {
    const { table } = normalizeInput(
      Array.from({ length: 10 }, (_, i) => ({ symbol: 'A', timestamp: 1_700_000_000_000 + i, close: i })),
      null,
    )
    const chunks = Array.from(copyBinaryChunks(table, table.schema, 0, 10, 4))
    expect(chunks.length).toBe(3)
    expect(new TextDecoder().decode(chunks[0].subarray(0, 6))).toBe('PGCOPY')
    expect(Array.from(chunks[2].subarray(chunks[2].length - 2))).toEqual([0xff, 0xff])
  })

  it('cuts chunks by size too: rows of wide strings do not make one huge chunk', () => {
    const wide = 'x'.repeat(5 << 20)
    const { table } = normalizeInput(
      Array.from({ length: 3 }, (_, i) => ({ symbol: 'A', timestamp: 1_700_000_000_000 + i, note: wide })),
      null,
    )
    const chunks = Array.from(copyBinaryChunks(table, table.schema))
    expect(chunks.length).toBe(3)
    const rowBytes = 2 + 4 + 1 + 4 + 8 + 4 + wide.length
    expect(chunks.map((c) => c.length)).toEqual([19 + rowBytes, rowBytes, rowBytes + 2])
  })
})

describe.skipIf(Boolean(skip))('postgres bulk write path', () => {
  const open = (pool: PgPoolLike, bulkRows?: number, copy?: boolean): DataStorage =>
    createPostgresStorage({ pool, schema: SCHEMA, bulkRows, copy })

  for (const [driver, pool] of DRIVERS) {
    it(`${driver}: loads with binary COPY (a new table directly, then through the staging table); without the driver's connection, or with copy: false, with unnest`, async () => {
      const cases = [
        { rec: recording(pool()), copy: true, expectCopy: true },
        { rec: recording(pool(), true), copy: true, expectCopy: false },
        { rec: recording(pool()), copy: false, expectCopy: false },
      ]
      for (const { rec, copy, expectCopy } of cases) {
        const s = open(rec.pool, 0, copy)
        const ds = uniqueDataset('how')
        await s.write(ds, [{ symbol: 'A', timestamp: tms(0, 0), close: 1 }]) // creates the table
        await s.write(ds, [{ symbol: 'A', timestamp: tms(0, 1), close: 2 }])
        const target = (t: string) => /^(?:COPY|INSERT INTO) (\S+)/.exec(t)?.[1]
        const copies = rec.texts.filter((t) => /^COPY \S+ \(.*\) FROM STDIN \(FORMAT binary\)$/.test(t)).map(target)
        const unnests = rec.texts.filter((t) => /^INSERT INTO \S+ \(.*\) SELECT \* FROM unnest\(/.test(t)).map(target)
        const loads = [`"${SCHEMA}"."ds_${ds}"`, 'pg_temp.friday_stage']
        expect([copies, unnests]).toEqual(expectCopy ? [loads, []] : [[], loads])
        expect(rowsOf(await s.read(ds))).toEqual([
          { symbol: 'A', timestamp: tms(0, 0) * 1000, close: 1 },
          { symbol: 'A', timestamp: tms(0, 1) * 1000, close: 2 },
        ])
        await s.close()
      }
    })

    it(`${driver}: COPY stores exactly what parameters store (same rows, same partition checksums)`, async () => {
      const rows = edgeRows()
      const viaCopy = open(pool(), 0)
      const viaParams = open(pool())
      const [direct, staged, params] = [uniqueDataset('copy'), uniqueDataset('staged'), uniqueDataset('params')]
      await viaCopy.write(direct, shuffle(rows, 7)) // into the new table
      // creates the table (every column, in the same order: the checksums cover the schema's order); the next write is staged
      const seed = { ...rows[9], close: 12345, volume: 1n, note: 'seed', flag: true, at: new Date(0) }
      await viaCopy.write(staged, [seed])
      await viaCopy.write(staged, shuffle(rows, 8))
      await viaParams.write(params, rows)
      const expected = await viaParams.read(params)
      expect(expected.length).toBe(rows.length)
      for (const ds of [direct, staged]) {
        const t = await viaCopy.read(ds)
        expect(rowsOf(t)).toEqual(rowsOf(expected))
        const close = t.columns.close.values as Float64Array
        expect(close.some((v) => Object.is(v, -0))).toBe(true)
        const parts = await viaCopy.listPartitions(ds)
        expect(parts.length).toBeGreaterThan(4)
        for (const p of parts) {
          const [mine, theirs] = [await viaCopy.getManifest(ds, p.path), await viaParams.getManifest(params, p.path)]
          expect(mine?.files[0].checksum).toBe(theirs?.files[0].checksum)
          expect(mine?.files[0].bytes).toBe(theirs?.files[0].bytes)
        }
        expect((await viaCopy.verify(ds)).ok).toBe(true)
      }
      await viaCopy.close()
      await viaParams.close()
    })
  }

  it('upsert: rows sent again unchanged keep the stats and bump the versions; a changed bit (0 -> -0) is written', async () => {
    const s = open(neonPool as PgPoolLike, 0)
    const ds = uniqueDataset('again')
    const rows = Array.from({ length: 30 }, (_, i) => ({
      symbol: i < 15 ? 'A' : 'B',
      timestamp: tms(0, i),
      close: 0,
      note: `n${i}`,
    }))
    await s.write(ds, rows)
    const before = await s.getManifest(ds, 'symbol=A/date=2024-01-02')
    await s.write(ds, rows)
    const same = await s.getManifest(ds, 'symbol=A/date=2024-01-02')
    expect(same?.version).toBe((before?.version ?? 0) + 1)
    expect(same?.commitId).not.toBe(before?.commitId)
    expect(same?.files[0].checksum).toBe(before?.files[0].checksum)
    await s.write(ds, [{ symbol: 'A', timestamp: rows[3].timestamp, close: -0 }, ...rows.slice(15)])
    const changed = await s.getManifest(ds, 'symbol=A/date=2024-01-02')
    expect(changed?.version).toBe((same?.version ?? 0) + 1)
    expect(changed?.files[0].checksum).not.toBe(same?.files[0].checksum)
    const t = await s.read(ds, { symbols: ['A'] })
    expect(Object.is((t.columns.close.values as Float64Array)[3], -0)).toBe(true)
    expect(rowsOf(t)[3].note).toBe(null) // the later write replaces the whole row
    expect((await s.verify(ds)).ok).toBe(true)
    await s.close()
  })

  it('a multi-chunk write through the Neon driver round-trips and verifies', async () => {
    const s = open(neonPool as PgPoolLike)
    const ds = uniqueDataset('chunks')
    const n = 40_000 // three COPY chunks
    const cols = {
      symbol: Array.from({ length: n }, (_, i) => `S${i % 7}`),
      timestamp: Float64Array.from({ length: n }, (_, i) => tms(0, 0) + i * 1000),
      close: Float64Array.from({ length: n }, (_, i) => i / 7),
      note: Array.from({ length: n }, (_, i) => (i % 11 ? `note ${i} ünï` : null)),
    }
    expect((await s.write(ds, cols)).rowsWritten).toBe(n)
    const t = await s.read(ds)
    expect(t.length).toBe(n)
    expect((t.columns.close.values as Float64Array).reduce((a, b) => a + b, 0)).toBeCloseTo(((n - 1) * n) / 2 / 7, 3)
    expect((await s.verify(ds)).ok).toBe(true)
    await s.close()
  })

  for (const [driver, pool] of DRIVERS) {
    it(`${driver}: a COPY the server rejects, or whose data fails to encode, rejects and leaves the connection usable`, async () => {
      const client = await pool().connect()
      try {
        expect(canCopy(client)).toBe(true)
        const { table } = normalizeInput(
          Array.from({ length: 50_000 }, (_, i) => ({ symbol: 'A', timestamp: 1_700_000_000_000 + i, close: i % 2 ? null : i })),
          null,
        )
        await client.query({ text: 'BEGIN' })
        await client.query({
          text: 'CREATE TEMP TABLE strict_stage (symbol text, "timestamp" timestamptz, close float8 NOT NULL)',
        })
        const copy = 'COPY strict_stage (symbol, "timestamp", close) FROM STDIN (FORMAT binary)'
        const serverErr = await copyIn(client, copy, copyBinaryChunks(table, table.schema, 0, table.length, 1000)).catch((e) => e)
        expect(serverErr).toMatchObject({ code: '23502' }) // not_null_violation
        await client.query({ text: 'ROLLBACK' })
        await client.query({ text: 'BEGIN' })
        await client.query({ text: 'CREATE TEMP TABLE loose_stage (symbol text, "timestamp" timestamptz, close float8)' })
        function* failing() {
          yield* copyBinaryChunks(table, table.schema, 0, 1000)
          throw new Error('encoder broke')
        }
        const localErr = await copyIn(client, copy.replace('strict', 'loose'), failing()).catch((e) => e)
        expect(localErr.message).toBe('encoder broke')
        await client.query({ text: 'ROLLBACK' })
        expect((await client.query({ text: 'SELECT 41 + 1 AS n' })).rows[0].n).toBe(42)
      } finally {
        client.release()
      }
    })
  }

  it('MERGE (PostgreSQL 15+) and UPDATE + INSERT (before 15) merge a staged batch alike', async () => {
    const session = new Session(pgPool as PgPoolLike)
    const ds: DatasetRow = {
      name: 'm',
      table: 'm',
      partitionBy: ['symbol', 'date'],
      schema: [...KEY_SCHEMA, { name: 'close', type: 'float64' }, { name: 'note', type: 'string' }],
    }
    const results: unknown[] = []
    for (const useMerge of [true, false]) {
      const client = await (pgPool as PgPoolLike).connect()
      try {
        await client.query({ text: 'BEGIN' })
        await client.query({
          text: `CREATE TEMP TABLE m (symbol text COLLATE "C" NOT NULL, "timestamp" timestamptz NOT NULL, close float8, note text,
                 PRIMARY KEY (symbol, "timestamp")) ON COMMIT DROP`,
        })
        const row = (minute: number, close: string, note: string | null) =>
          `('A', '2024-01-02T14:${30 + minute}:00Z', ${close}, ${note === null ? 'NULL' : `'${note}'`})`
        await client.query({ text: `INSERT INTO m VALUES ${[row(0, '1', 'a'), row(1, '0', 'b'), row(2, '5', 'c')].join(', ')}` })
        await client.query({ text: 'CREATE TEMP TABLE friday_stage (LIKE m) ON COMMIT DROP' })
        // unchanged, 0 -> -0, note -> null, new key
        const staged = [row(0, '1', 'a'), row(1, "'-0'", 'b'), row(2, '5', null), row(3, '7', 'd')]
        await client.query({ text: `INSERT INTO friday_stage VALUES ${staged.join(', ')}` })
        const changed = await mergeStaged(session, client, 'm', ds, 'upsert', useMerge)
        const res = await client.query({
          text: `SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'HH24:MI') AS t, close::text AS close, note FROM m ORDER BY 1`,
        })
        results.push({ changed, rows: res.rows })
        await client.query({ text: 'ROLLBACK' })
      } finally {
        client.release()
      }
    }
    expect(results[0]).toEqual({
      changed: 3,
      rows: [
        { t: '14:30', close: '1', note: 'a' },
        { t: '14:31', close: '-0', note: 'b' },
        { t: '14:32', close: '5', note: null },
        { t: '14:33', close: '7', note: 'd' },
      ],
    })
    expect(results[1]).toEqual(results[0])
  })

  it('append on the bulk path names the stored keys and writes nothing', async () => {
    const s = open(pgPool as PgPoolLike, 0)
    const ds = uniqueDataset('append')
    await s.write(ds, [{ symbol: 'A', timestamp: tms(0, 1), close: 1 }])
    const err = await s
      .write(
        ds,
        [
          { symbol: 'A', timestamp: tms(0, 1), close: 2 },
          { symbol: 'A', timestamp: tms(0, 2), close: 3 },
        ],
        { mode: 'append' },
      )
      .catch((e) => e)
    expect(err.code).toBe('duplicate_key')
    expect(err.details.keys).toEqual([{ symbol: 'A', timestamp: new Date(tms(0, 1)).toISOString() }])
    expect(rowsOf(await s.read(ds))).toEqual([{ symbol: 'A', timestamp: tms(0, 1) * 1000, close: 1 }])
    await s.close()
  })
})
