/**
 * Our Parquet writer, checked by two independent readers: hyparquet (through `decodeParquet`)
 * and DuckDB (values, schema and the statistics it would prune with), over random tables with
 * nulls in every nullable type, several row groups, every codec, dictionaries that overflow to
 * PLAIN, and strings whose UTF-16 and UTF-8 orders differ.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api'
import type { FileMetaData } from 'hyparquet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mulberry32 as rng } from '../bench/data.js'
import { BOOL_NULL, type Column, type Table } from '../src/core/types.js'
import { compareCodePoints } from '../src/parquet/column-chunk.js'
import {
  decodeParquet,
  encodeParquet,
  loadZstdWasm,
  type ParquetCodecs,
  type ParquetCompression,
  readFooter,
  readParquetMetadata,
} from '../src/parquet/index.js'

const WORDS = ['', 'a', 'AAPL', 'héllo', '😀', '\uffff', '\ue000x', '日本語', 'tab\there', 'quote"', 'x'.repeat(80)]

/**
 * A random table: nulls come in runs and singletons (definition levels exercise both RLE and
 * bit-packed runs); `distinct` sets how many different strings `tag` holds.
 */
function randomTable(n: number, seed: number, distinct: number): Table {
  const r = rng(seed)
  const nullRun = () => {
    const mask = new Uint8Array(n)
    for (let i = 0; i < n; ) {
      const len = 1 + Math.floor(r() * (r() < 0.2 ? 40 : 4))
      const isNull = r() < 0.3
      for (let k = 0; k < len && i < n; k++, i++) mask[i] = isNull ? 1 : 0
    }
    return mask
  }
  const priceNulls = nullRun()
  const volNulls = nullRun()
  const flagNulls = nullRun()
  const noteNulls = nullRun()
  const price = new Float64Array(n)
  const volume = new BigInt64Array(n)
  const flag = new Uint8Array(n)
  const note: (string | null)[] = new Array(n)
  const tag: string[] = new Array(n)
  const ts = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    ts[i] = 1704187800000000 + i * 60_000_000 + Math.floor(r() * 1000) - (i === 3 ? 2 ** 52 : 0)
    price[i] = priceNulls[i] ? Number.NaN : i % 97 === 5 ? -0 : (r() - 0.5) * 10 ** Math.floor(r() * 20 - 10)
    volume[i] = BigInt(Math.floor((r() - 0.5) * 2 ** 53)) * (i % 11 === 0 ? 1024n : 1n)
    flag[i] = flagNulls[i] ? BOOL_NULL : r() < 0.5 ? 1 : 0
    note[i] = noteNulls[i] ? null : WORDS[Math.floor(r() * WORDS.length)]
    tag[i] = `t${Math.floor(r() * distinct)}`
  }
  return {
    length: n,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'price', type: 'float64' },
      { name: 'volume', type: 'int64' },
      { name: 'flag', type: 'boolean' },
      { name: 'note', type: 'string' },
      { name: 'tag', type: 'string' },
    ],
    columns: {
      symbol: { type: 'string', values: Array.from({ length: n }, (_, i) => (i < n / 2 ? 'AAPL' : 'EUR/USD')) },
      timestamp: { type: 'timestamp', values: ts },
      price: { type: 'float64', values: price },
      volume: { type: 'int64', values: volume, nulls: volNulls },
      flag: { type: 'boolean', values: flag },
      note: { type: 'string', values: note },
      tag: { type: 'string', values: tag },
    },
  }
}

/** Column values as plain JS (null for nulls; bigint for int64; µs numbers for timestamps). */
function plain(col: Column, n: number): unknown[] {
  const out: unknown[] = []
  for (let i = 0; i < n; i++) {
    switch (col.type) {
      case 'float64':
      case 'timestamp':
        out.push(Number.isNaN(col.values[i]) ? null : col.values[i])
        break
      case 'int64':
        out.push(col.nulls?.[i] ? null : col.values[i])
        break
      case 'boolean':
        out.push(col.values[i] === BOOL_NULL ? null : col.values[i] === 1)
        break
      case 'string':
        out.push(col.values[i])
        break
    }
  }
  return out
}

let dir: string
let con: DuckDBConnection
/** zstd-wasm both ways (set in beforeAll). */
let codecs: ParquetCodecs

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'friday-pqw-'))
  con = await (await DuckDBInstance.create()).connect()
  codecs = { zstd: await loadZstdWasm() }
})
afterAll(async () => {
  con?.closeSync()
  await rm(dir, { recursive: true, force: true })
})

async function query(sql: string): Promise<Record<string, unknown>[]> {
  return (await con.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[]
}

const CASES: { name: string; n: number; distinct: number; rowGroupSize: number; compression: ParquetCompression }[] = [
  { name: 'one group, snappy', n: 390, distinct: 5, rowGroupSize: 100_000, compression: 'snappy' },
  { name: 'several groups, zstd', n: 5000, distinct: 300, rowGroupSize: 1234, compression: 'zstd' },
  { name: 'uncompressed, dictionary overflow to PLAIN', n: 70_000, distinct: 1e9, rowGroupSize: 70_000, compression: 'none' },
  { name: 'tiny groups', n: 17, distinct: 2, rowGroupSize: 3, compression: 'snappy' },
]

describe.each(CASES)('writer: $name', ({ n, distinct, rowGroupSize, compression }) => {
  const table = randomTable(n, n + rowGroupSize, distinct)
  let bytes: Uint8Array
  let file: string

  beforeAll(async () => {
    bytes = encodeParquet(table, { rowGroupSize, compression, codecs })
    file = join(dir, `${n}-${rowGroupSize}-${compression}.parquet`)
    await writeFile(file, bytes)
  })

  it('hyparquet decodes exactly what was written', async () => {
    const decoded = await decodeParquet(bytes)
    expect(decoded.length).toBe(n)
    expect(decoded.schema).toEqual(table.schema)
    for (const { name } of table.schema) expect(plain(decoded.columns[name], n), name).toEqual(plain(table.columns[name], n))
  })

  it('DuckDB reads every value, in order, with the logical types', async () => {
    const rows = await query(
      `SELECT symbol, epoch_us("timestamp") AS us, price, volume, flag, note, tag, typeof("timestamp") AS tt
       FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`,
    )
    expect(rows.length).toBe(n)
    expect(rows[0].tt).toBe('TIMESTAMP WITH TIME ZONE')
    for (const { name } of table.schema) {
      const key = name === 'timestamp' ? 'us' : name
      const got = rows.map((r) => {
        const v = r[key]
        return name === 'timestamp' ? Number(v) : v
      })
      expect(got, name).toEqual(plain(table.columns[name], n))
    }
  })

  it('DuckDB sees per-row-group statistics equal to the data', async () => {
    const meta = await query(
      `SELECT row_group_id AS g, path_in_schema AS col, stats_min_value AS lo, stats_max_value AS hi, stats_null_count AS nulls,
              row_group_num_rows AS rows
       FROM parquet_metadata('${file}') ORDER BY row_group_id, column_id`,
    )
    const groups = Math.ceil(n / rowGroupSize)
    expect(meta.length).toBe(groups * table.schema.length)
    for (const m of meta) {
      const g = Number(m.g)
      const from = g * rowGroupSize
      const to = Math.min(n, from + rowGroupSize)
      expect(Number(m.rows)).toBe(to - from)
      const values = plain(table.columns[m.col as string], n).slice(from, to)
      const present = values.filter((v) => v !== null)
      expect(Number(m.nulls), `${m.col} group ${g}`).toBe(values.length - present.length)
      if (m.col === 'timestamp' || m.col === 'flag') continue // printed in DuckDB's own formats
      if (!present.length) {
        expect(m.lo).toBeNull()
        continue
      }
      if (m.col === 'price') {
        const nums = present as number[]
        expect(Number(m.lo)).toBe(Math.min(...nums))
        expect(Number(m.hi)).toBe(Math.max(...nums))
      } else if (m.col === 'volume') {
        const big = [...(present as bigint[])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        expect(BigInt(m.lo as string)).toBe(big[0])
        expect(BigInt(m.hi as string)).toBe(big[big.length - 1])
      } else {
        const strs = [...(present as string[])].sort(compareCodePoints)
        if (Buffer.byteLength(strs[strs.length - 1]) > 64 || Buffer.byteLength(strs[0]) > 64) expect(m.lo).toBeNull()
        else {
          expect(m.lo, `${m.col} min`).toBe(strs[0])
          expect(m.hi, `${m.col} max`).toBe(strs[strs.length - 1])
        }
      }
    }
  })
})

describe('string order of statistics', () => {
  it('compareCodePoints orders like the UTF-8 bytes', () => {
    const r = rng(7)
    const alphabet = ['a', 'Z', 'é', '\ud7ff', '\ue000', '\uffff', '😀', '𝄞', '\u0000', '']
    for (let k = 0; k < 2000; k++) {
      const mk = () => Array.from({ length: Math.floor(r() * 4) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('')
      const a = mk()
      const b = mk()
      expect(Math.sign(compareCodePoints(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(
        Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
      )
    }
  })
})

describe('in-memory fast decoder', () => {
  it('decodes our files exactly as the general reader does', async () => {
    for (const compression of ['none', 'snappy', 'zstd'] as const) {
      const table = randomTable(3000, 11, 50)
      const bytes = encodeParquet(table, { rowGroupSize: 700, compression, codecs })
      const fast = await decodeParquet(bytes, { engine: 'fast' })
      const general = await decodeParquet(bytes, { engine: 'general' })
      for (const { name } of table.schema) {
        expect(plain(fast.columns[name], 3000), name).toEqual(plain(table.columns[name], 3000))
        expect(plain(general.columns[name], 3000), name).toEqual(plain(table.columns[name], 3000))
      }
      const part = await decodeParquet(bytes, {
        engine: 'fast',
        columns: ['note', 'volume'],
        minTs: 1704187800000000 + 1500 * 60e6,
      })
      expect(part.length).toBe(3000 - 1400)
      expect(plain(part.columns.volume, part.length)).toEqual(plain(table.columns.volume, 3000).slice(1400))
    }
  })

  it('decodes files DuckDB writes (v1 pages, dictionaries, nulls, every codec) like the general reader', async () => {
    for (const codec of ['uncompressed', 'snappy', 'zstd']) {
      const file = join(dir, `duck-${codec}.parquet`)
      await query(
        `COPY (SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE 'S' || (i % 13) END AS s,
                      make_timestamp(1704187800000000 + i * 1000) AS ts_naive,
                      (TIMESTAMPTZ '2024-01-02 14:30:00+00' + INTERVAL (i) SECOND) AS "timestamp",
                      CASE WHEN i % 5 = 0 THEN NULL ELSE i / 3.0 END::DOUBLE AS x,
                      CASE WHEN i % 3 = 0 THEN NULL ELSE i * 1000000000 END::BIGINT AS n,
                      CASE WHEN i % 4 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
                      i::INTEGER AS i32, (i / 7.0)::FLOAT AS f32
               FROM range(5000) t(i))
         TO '${file}' (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE 2048)`,
      )
      const bytes = new Uint8Array(await (await import('node:fs/promises')).readFile(file))
      const fast = await decodeParquet(bytes, { engine: 'fast' })
      const general = await decodeParquet(bytes, { engine: 'general' })
      expect(fast.schema).toEqual(general.schema)
      expect(fast.length).toBe(5000)
      for (const { name } of general.schema)
        expect(plain(fast.columns[name], 5000), `${codec} ${name}`).toEqual(plain(general.columns[name], 5000))
      expect(plain(fast.columns.n, 5).slice(1, 3)).toEqual([1000000000n, 2000000000n])
    }
  })
})

describe('lean footer reader', () => {
  /** The fields the fast decoder uses, as hyparquet's full reader and ours give them. */
  function essentials(m: FileMetaData) {
    return {
      schema: m.schema.map((e) => ({
        name: e.name,
        type: e.type,
        repetition_type: e.repetition_type,
        num_children: e.num_children,
        converted_type: e.converted_type,
        logical_type: e.logical_type
          ? Object.fromEntries(
              Object.entries(e.logical_type).filter(([k]) =>
                ['type', 'unit', 'isAdjustedToUTC', 'bitWidth', 'isSigned'].includes(k),
              ),
            )
          : undefined,
      })),
      num_rows: Number(m.num_rows),
      row_groups: m.row_groups.map((g) => ({
        num_rows: Number(g.num_rows),
        columns: g.columns.map((c) => ({
          file_path: c.file_path,
          path: c.meta_data?.path_in_schema,
          type: c.meta_data?.type,
          codec: c.meta_data?.codec,
          num_values: Number(c.meta_data?.num_values),
          size: Number(c.meta_data?.total_compressed_size),
          data: Number(c.meta_data?.data_page_offset),
          dict: c.meta_data?.dictionary_page_offset === undefined ? undefined : Number(c.meta_data.dictionary_page_offset),
        })),
      })),
    }
  }

  it('reads what hyparquet reads from our files and DuckDB files', async () => {
    const files: Uint8Array[] = [encodeParquet(randomTable(2500, 3, 40), { rowGroupSize: 1000, kvMetadata: { a: 'b' } })]
    const file = join(dir, 'duck-footer.parquet')
    await query(
      `COPY (SELECT i::INTEGER AS i32, i::BIGINT AS n, (i % 200)::UTINYINT AS u8, (i / 3)::DECIMAL(10, 2) AS d, 'x' || i AS s,
                    make_timestamp(i) AS ts, make_timestamp(i)::TIMESTAMPTZ AS tz, i::DOUBLE AS x
             FROM range(3000) t(i)) TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 1024)`,
    )
    files.push(new Uint8Array(await (await import('node:fs/promises')).readFile(file)))
    for (const bytes of files) {
      const lean = readFooter(bytes, { lean: true })
      expect(essentials(lean)).toEqual(essentials(await readParquetMetadata(bytes)))
    }
    for (const lean of [true, false]) {
      expect(() => readFooter(new Uint8Array(20), { lean })).toThrow('footer != PAR1')
      expect(() => readFooter(new Uint8Array(6), { lean })).toThrow('too short')
      const bad = files[0].slice()
      bad.set([0xff, 0xff, 0xff, 0x7f], bad.length - 8) // a footer length past the start of the file
      expect(() => readFooter(bad, { lean })).toThrow(/metadata length \d+ does not fit/)
    }
  })
})
