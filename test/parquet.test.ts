import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { decompress as fzstdDecompress } from 'fzstd'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BOOL_NULL, type Table } from '../src/core/types.js'
import {
  decodeParquet,
  encodeParquet,
  fileSchema,
  loadZstdWasm,
  microsToInt64,
  type ParquetCodecs,
  readParquetMetadata,
} from '../src/parquet/index.js'

const us = (iso: string, micros = 0) => Date.parse(iso) * 1000 + micros

/** The Float64Array of a float64 or timestamp column. */
function floats(table: Table, name: string): Float64Array {
  const column = table.columns[name]
  if (column.type !== 'float64' && column.type !== 'timestamp') throw new Error(`${name} is ${column.type}`)
  return column.values
}

/** Every column type, with nulls in each nullable one. */
function sampleTable(): Table {
  const timestamps = [
    us('2024-01-02T09:30:00.123Z', 456), // 2024-01-02T09:30:00.123456Z
    us('1969-12-31T23:59:59.999Z', 999), // -1 µs
    us('1960-06-15T12:00:00.000Z', 1), // negative epoch, odd micros
    us('2024-01-02T09:30:00.000Z'),
    0,
    us('2262-01-01T00:00:00.000Z', 7), // beyond 2^32 seconds
  ]
  return {
    length: 6,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'price', type: 'float64' },
      { name: 'volume', type: 'int64' },
      { name: 'halted', type: 'boolean' },
      { name: 'note', type: 'string' },
      { name: 'settled', type: 'timestamp' },
    ],
    columns: {
      symbol: { type: 'string', values: ['AAPL', 'AAPL', 'BRK.B', 'Ünï', '株式', 'AAPL'] },
      timestamp: { type: 'timestamp', values: Float64Array.from(timestamps) },
      price: { type: 'float64', values: Float64Array.from([1.5, Number.NaN, -0.1, 1e300, 5e-324, 123.456]) },
      volume: {
        type: 'int64',
        values: BigInt64Array.from([2n ** 62n + 1n, -(2n ** 63n), 0n, 9007199254740993n, 2n ** 63n - 1n, -5n]),
        nulls: Uint8Array.from([0, 0, 1, 0, 0, 0]),
      },
      halted: { type: 'boolean', values: Uint8Array.from([1, 0, BOOL_NULL, 1, 0, 0]) },
      note: { type: 'string', values: ['héllo 😀', null, '', 'a\u0000b', '日本語', null] },
      settled: { type: 'timestamp', values: Float64Array.from([timestamps[0] + 1, Number.NaN, -1, 0, 1, 2]) },
    },
  }
}

function expectTablesEqual(actual: Table, expected: Table) {
  expect(actual.length).toBe(expected.length)
  expect(actual.schema).toEqual(expected.schema)
  for (const { name } of expected.schema) {
    const a = actual.columns[name]
    const e = expected.columns[name]
    expect(a.type, name).toBe(e.type)
    if (e.type === 'int64' && a.type === 'int64') {
      expect(
        Array.from(a.values).map((v, i) => (a.nulls?.[i] ? null : v)),
        name,
      ).toEqual(Array.from(e.values).map((v, i) => (e.nulls?.[i] ? null : v)))
    } else {
      // toEqual treats NaN as equal to NaN and distinguishes typed array kinds
      expect(a.values, name).toEqual(e.values)
    }
  }
}

describe('parquet codec round-trip', () => {
  it('returns every column type exactly, nulls included', async () => {
    const table = sampleTable()
    const decoded = await decodeParquet(encodeParquet(table))
    expectTablesEqual(decoded, table)
    expect(decoded.columns.timestamp.values[0]).toBe(1704187800123456)
    expect(decoded.columns.timestamp.values[1]).toBe(-1)
  })

  it('round-trips with every column OPTIONAL and with columns that have no nulls (REQUIRED)', async () => {
    const table = sampleTable()
    expectTablesEqual(await decodeParquet(encodeParquet(table, { alwaysOptional: true })), table)
    const noNulls: Table = {
      length: 2,
      schema: [
        { name: 'symbol', type: 'string' },
        { name: 'timestamp', type: 'timestamp' },
        { name: 'x', type: 'float64' },
        { name: 'n', type: 'int64' },
        { name: 'b', type: 'boolean' },
      ],
      columns: {
        symbol: { type: 'string', values: ['A', 'B'] },
        timestamp: { type: 'timestamp', values: Float64Array.from([1, 2]) },
        x: { type: 'float64', values: Float64Array.from([0.5, -0.5]) },
        n: { type: 'int64', values: BigInt64Array.from([1n, -(2n ** 60n)]), nulls: new Uint8Array(2) },
        b: { type: 'boolean', values: Uint8Array.from([1, 0]) },
      },
    }
    const bytes = encodeParquet(noNulls, { alwaysOptional: false })
    const meta = await readParquetMetadata(bytes)
    expect(meta.schema.slice(1).map((e) => e.repetition_type)).toEqual([
      'REQUIRED',
      'REQUIRED',
      'REQUIRED',
      'REQUIRED',
      'REQUIRED',
    ])
    const decoded = await decodeParquet(bytes)
    expect(decoded.columns.n).toEqual({ type: 'int64', values: noNulls.columns.n.values })
    expect(decoded.columns.x.values).toEqual(noNulls.columns.x.values)
    expect(decoded.columns.b.values).toEqual(noNulls.columns.b.values)
  })

  it('writes symbol and timestamp REQUIRED, the rest OPTIONAL, with TIMESTAMP(MICROS, UTC) and kv metadata', async () => {
    const meta = await readParquetMetadata(encodeParquet(sampleTable(), { kvMetadata: { dataset: 'bars', v: '1' } }))
    const byName = Object.fromEntries(meta.schema.slice(1).map((e) => [e.name, e]))
    expect(byName.symbol.repetition_type).toBe('REQUIRED')
    expect(byName.symbol.logical_type).toEqual({ type: 'STRING' })
    expect(byName.timestamp.repetition_type).toBe('REQUIRED')
    expect(byName.timestamp.type).toBe('INT64')
    expect(byName.timestamp.logical_type).toEqual({ type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' })
    expect(byName.price.repetition_type).toBe('OPTIONAL')
    expect(byName.price.type).toBe('DOUBLE')
    expect(byName.volume.type).toBe('INT64')
    expect(byName.halted.type).toBe('BOOLEAN')
    // ours after the metadata for outside readers (test/interop-python.test.ts checks what they make of it)
    expect(meta.key_value_metadata?.map((kv) => kv.key)).toEqual(['ARROW:schema', 'pandas', 'dataset', 'v'])
    expect(meta.key_value_metadata?.slice(2)).toEqual([
      { key: 'dataset', value: 'bars' },
      { key: 'v', value: '1' },
    ])
    expect(fileSchema(meta)).toEqual(sampleTable().schema)
  })

  it('writes exact timestamp statistics (as epoch µs)', async () => {
    const meta = await readParquetMetadata(encodeParquet(sampleTable()))
    const stats = meta.row_groups[0].columns[1].meta_data?.statistics
    expect(stats?.min_value).toBe(us('1960-06-15T12:00:00.000Z', 1))
    expect(stats?.max_value).toBe(us('2262-01-01T00:00:00.000Z', 7))
  })

  it('converts epoch µs to INT64 without BigInt, negatives included', () => {
    const values = [0, 1, -1, 2 ** 32, -(2 ** 32), 2 ** 32 - 1, -(2 ** 32) - 1, 2 ** 53 - 1, -(2 ** 53) + 1, 1704187800123456]
    expect(Array.from(microsToInt64(Float64Array.from(values)))).toEqual(values.map(BigInt))
  })

  it('rejects a null in a REQUIRED key column, naming the column and row', () => {
    const table = sampleTable()
    table.columns.timestamp.values[3] = Number.NaN
    expect(() => encodeParquet(table)).toThrow(/'timestamp'.*row 3/)
    const t2 = sampleTable()
    ;(t2.columns.symbol.values as (string | null)[])[4] = null
    expect(() => encodeParquet(t2)).toThrow(/'symbol'.*row 4/)
  })

  it('encodes and decodes an empty table', async () => {
    const table = sampleTable()
    const empty: Table = {
      length: 0,
      schema: table.schema,
      columns: {
        symbol: { type: 'string', values: [] },
        timestamp: { type: 'timestamp', values: new Float64Array(0) },
        price: { type: 'float64', values: new Float64Array(0) },
        volume: { type: 'int64', values: new BigInt64Array(0) },
        halted: { type: 'boolean', values: new Uint8Array(0) },
        note: { type: 'string', values: [] },
        settled: { type: 'timestamp', values: new Float64Array(0) },
      },
    }
    const decoded = await decodeParquet(encodeParquet(empty))
    expect(decoded.length).toBe(0)
    expect(decoded.schema).toEqual(table.schema)
  })

  it('reads only the requested columns that exist', async () => {
    const bytes = encodeParquet(sampleTable())
    const decoded = await decodeParquet(bytes, { columns: ['timestamp', 'note', 'missing'] })
    expect(decoded.schema).toEqual([
      { name: 'timestamp', type: 'timestamp' },
      { name: 'note', type: 'string' },
    ])
    expect(Object.keys(decoded.columns)).toEqual(['timestamp', 'note'])
    expect(decoded.columns.note.values).toEqual(sampleTable().columns.note.values)
  })

  it('reads from a ranged reader, fetching only the footer for metadata', async () => {
    const bytes = encodeParquet(bars(5000, 0), { rowGroupSize: 1000 })
    const requests: [number, number | undefined][] = []
    const source = {
      byteLength: bytes.byteLength,
      slice: async (start: number, end?: number) => {
        requests.push([start, end])
        return bytes.slice(start, end).buffer as ArrayBuffer
      },
    }
    const metadata = await readParquetMetadata(source)
    expect(requests.length).toBe(1)
    expect(requests[0][0]).toBe(Math.max(0, bytes.byteLength - 64 * 1024))
    const decoded = await decodeParquet(source, { metadata })
    expect(decoded.length).toBe(5000)
    expect(decoded.columns.close.values).toEqual(bars(5000, 0).columns.close.values)
  })
})

const MINUTE = 60_000_000
const T0 = us('2024-01-02T14:30:00.000Z')

function bars(rows: number, offset: number): Table {
  return {
    length: rows,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'close', type: 'float64' },
      { name: 'volume', type: 'int64' },
    ],
    columns: {
      symbol: { type: 'string', values: new Array(rows).fill('AAPL') },
      timestamp: { type: 'timestamp', values: Float64Array.from({ length: rows }, (_, i) => T0 + (offset + i) * MINUTE) },
      close: { type: 'float64', values: Float64Array.from({ length: rows }, (_, i) => 100 + ((offset + i) % 97) / 4) },
      volume: { type: 'int64', values: BigInt64Array.from({ length: rows }, (_, i) => BigInt(offset + i) * 1000n) },
    },
  }
}

describe('row-group skipping by time range', () => {
  const bytes = encodeParquet(bars(1000, 0), { rowGroupSize: 100 })

  it('decodes only the groups whose timestamp statistics overlap [minTs, maxTs]', async () => {
    // rows 250..449 inclusive → groups 2, 3, 4 (rows 200..499)
    const decoded = await decodeParquet(bytes, { minTs: T0 + 250 * MINUTE, maxTs: T0 + 449 * MINUTE })
    expect(decoded.length).toBe(300)
    expect(decoded.columns.timestamp.values[0]).toBe(T0 + 200 * MINUTE)
    expect(decoded.columns.timestamp.values[299]).toBe(T0 + 499 * MINUTE)
    expect(decoded.columns.volume.values[0]).toBe(200_000n)
  })

  it('treats bounds as inclusive and returns an empty table outside the file', async () => {
    const exact = await decodeParquet(bytes, { minTs: T0 + 99 * MINUTE, maxTs: T0 + 100 * MINUTE })
    expect(exact.length).toBe(200)
    const onlyMin = await decodeParquet(bytes, { minTs: T0 + 950 * MINUTE })
    expect(onlyMin.length).toBe(100)
    const none = await decodeParquet(bytes, { minTs: T0 + 1000 * MINUTE })
    expect(none.length).toBe(0)
    expect(none.columns.close.values).toEqual(new Float64Array(0))
  })
})

describe('zstd', () => {
  let codecs: ParquetCodecs
  beforeAll(async () => {
    codecs = { zstd: await loadZstdWasm() }
  })

  it('round-trips a zstd file exactly and marks its chunks ZSTD', async () => {
    const table = sampleTable()
    const bytes = encodeParquet(table, { compression: 'zstd', codecs })
    const meta = await readParquetMetadata(bytes)
    expect(meta.row_groups[0].columns.every((c) => c.meta_data?.codec === 'ZSTD')).toBe(true)
    expectTablesEqual(await decodeParquet(bytes, { codecs }), table)
    const big = bars(20_000, 0)
    expectTablesEqual(
      await decodeParquet(encodeParquet(big, { compression: 'zstd', codecs, rowGroupSize: 7000 }), { codecs }),
      big,
    )
  })

  it('refuses to write zstd without a zstd codec, naming what to pass', () => {
    expect(() => encodeParquet(sampleTable(), { compression: 'zstd' })).toThrow(/needs a zstd codec: pass codecs: \{ zstd/)
  })

  it('decodes with the zstd codec passed, and without one by the pure-JS fallback (fzstd)', async () => {
    const table = sampleTable()
    const bytes = encodeParquet(table, { compression: 'zstd', codecs })
    let calls = 0
    const counting: ParquetCodecs = {
      zstd: {
        compress: codecs.zstd!.compress,
        decompress: (input, n) => {
          calls++
          return fzstdDecompress(input, new Uint8Array(n))
        },
      },
    }
    for (const engine of ['fast', 'general'] as const) {
      calls = 0
      expectTablesEqual(await decodeParquet(bytes, { codecs: counting, engine }), table)
      expect(calls, engine).toBeGreaterThan(0)
      expectTablesEqual(await decodeParquet(bytes, { engine }), table)
      expectTablesEqual(await decodeParquet(bytes, { codecs, engine }), table)
    }
  })
})

describe('DuckDB reads what we write', () => {
  let dir: string
  let instance: DuckDBInstance
  let codecs: ParquetCodecs
  const query = async (sql: string) => (await (await instance.connect()).runAndReadAll(sql)).getRowObjectsJS()

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parquet-test-'))
    instance = await DuckDBInstance.create()
    codecs = { zstd: await loadZstdWasm() }
  })
  afterAll(async () => {
    instance?.closeSync()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('sees TIMESTAMP WITH TIME ZONE and the exact values of every column', async () => {
    const table = sampleTable()
    const path = join(dir, 'sample.parquet')
    await writeFile(path, encodeParquet(table))
    const types = await query(`DESCRIBE SELECT * FROM read_parquet('${path}')`)
    expect(Object.fromEntries(types.map((r) => [r.column_name, r.column_type]))).toEqual({
      symbol: 'VARCHAR',
      timestamp: 'TIMESTAMP WITH TIME ZONE',
      price: 'DOUBLE',
      volume: 'BIGINT',
      halted: 'BOOLEAN',
      note: 'VARCHAR',
      settled: 'TIMESTAMP WITH TIME ZONE',
    })
    const rows = await query(
      `SELECT symbol, epoch_us(timestamp) AS ts, price, volume, halted, note, epoch_us(settled) AS settled
       FROM read_parquet('${path}')`,
    )
    expect(rows.map((r) => r.symbol)).toEqual(table.columns.symbol.values)
    expect(rows.map((r) => Number(r.ts))).toEqual(Array.from(floats(table, 'timestamp')))
    expect(rows.map((r) => r.price)).toEqual(Array.from(floats(table, 'price'), (v) => (Number.isNaN(v) ? null : v)))
    expect(rows.map((r) => r.volume)).toEqual([2n ** 62n + 1n, -(2n ** 63n), null, 9007199254740993n, 2n ** 63n - 1n, -5n])
    expect(rows.map((r) => r.halted)).toEqual([true, false, null, true, false, false])
    expect(rows.map((r) => r.note)).toEqual(table.columns.note.values)
    expect(rows.map((r) => (r.settled === null ? null : Number(r.settled)))).toEqual(
      Array.from(floats(table, 'settled'), (v) => (Number.isNaN(v) ? null : v)),
    )
    const [iso] = await query(
      `SELECT strftime(timestamp AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%f') AS t FROM read_parquet('${path}') LIMIT 1`,
    )
    expect(iso.t).toBe('2024-01-02T09:30:00.123456')
  })

  it('decodes a ZSTD file that DuckDB wrote', async () => {
    const path = join(dir, 'from-duckdb.parquet')
    await query(
      `COPY (SELECT 'MSFT' AS symbol, make_timestamptz(${T0}::BIGINT + i * ${MINUTE}::BIGINT) AS timestamp,
              CASE WHEN i % 10 = 3 THEN NULL ELSE i / 4 END::DOUBLE AS close, i * 3 AS volume
            FROM range(5000) t(i))
       TO '${path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)`,
    )
    const bytes = new Uint8Array(await readFile(path))
    const decoded = await decodeParquet(bytes)
    expect(decoded.schema).toEqual([
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'close', type: 'float64' },
      { name: 'volume', type: 'int64' },
    ])
    expect(decoded.length).toBe(5000)
    const ts = floats(decoded, 'timestamp')
    const close = floats(decoded, 'close')
    for (const i of [0, 3, 2047, 2048, 4999]) {
      expect(ts[i]).toBe(T0 + i * MINUTE)
      expect(close[i]).toBe(i % 10 === 3 ? Number.NaN : i / 4)
    }
    expect(decoded.columns.volume.values[4999]).toBe(14997n)
    const part = await decodeParquet(bytes, { minTs: T0 + 2100 * MINUTE, maxTs: T0 + 2200 * MINUTE })
    expect(part.length).toBe(2048)
  })

  it('agrees on counts, sums and time-range filtering across row groups, snappy and zstd', async () => {
    const table = bars(10_000, 0)
    let expectedSum = 0
    for (const v of floats(table, 'close')) expectedSum += v
    for (const compression of ['snappy', 'zstd'] as const) {
      const path = join(dir, `bars-${compression}.parquet`)
      await writeFile(path, encodeParquet(table, { compression, codecs, rowGroupSize: 1000 }))
      const [agg] = await query(
        `SELECT count(*) AS n, sum(close) AS s, min(epoch_us(timestamp)) AS lo, max(epoch_us(timestamp)) AS hi, sum(volume) AS v
         FROM read_parquet('${path}')`,
      )
      expect(agg.n).toBe(10_000n)
      expect(agg.s).toBeCloseTo(expectedSum, 6)
      expect(Number(agg.lo)).toBe(T0)
      expect(Number(agg.hi)).toBe(T0 + 9999 * MINUTE)
      expect(BigInt(agg.v as bigint)).toBe(49_995_000_000n)
      const [filtered] = await query(
        `SELECT count(*) AS n FROM read_parquet('${path}') WHERE timestamp >= make_timestamptz(${T0 + 500 * MINUTE}::BIGINT)`,
      )
      expect(filtered.n).toBe(9_500n)
    }
  })
})
