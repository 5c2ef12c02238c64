/**
 * Outside readers in Python read the local lake exactly as `read()` does, with their common
 * one-liners: `pd.read_parquet(dir)`, `pq.read_table(dir)`, `pl.read_parquet(dir)` (and the glob
 * `pl.read_parquet(dir + '/**\/*.parquet', hive_partitioning=True)`) and
 * `fastparquet.ParquetFile(dir).to_pandas()` (which leaves `symbol` percent-encoded: decoded with
 * `urllib.parse.unquote`, as the docs say). The dataset directory holds only data (the lake's
 * metadata is under `_friday/<dataset>/`), so Polars, which takes every file under a directory,
 * reads it as it is. A dataset whose columns changed needs the documented option (the schema from
 * `_friday/<dataset>/_common_metadata`).
 *
 * "Exactly": the same rows, timestamps UTC-aware with microseconds, float64 and int64 (past
 * 2^53) identical, strings, booleans and nulls identical; hive readers add `date`, which must
 * be the row's UTC day. Rows are compared sorted by (symbol, timestamp).
 *
 * The readers live in a Python venv (`FRIDAY_READERS_PYTHON`, made by `.ci/run`); without it
 * the suite is skipped with a message, except under CI=true, where it fails.
 */

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DataStorage, Table } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { midnight, type PlainRow, rowsOf } from './conformance/storage.case.js'

const PYTHON = process.env.FRIDAY_READERS_PYTHON ?? '/tmp/friday-readers-venv/bin/python'
const SCRIPT = join(import.meta.dirname, 'fixtures', 'outside-readers.py')
const HAVE_PYTHON = existsSync(PYTHON)
const IN_CI = process.env.CI === 'true' || process.env.CI === '1'

if (!HAVE_PYTHON && !IN_CI) {
  console.info(
    `[interop-python] skipped: no Python with pandas/pyarrow/polars/fastparquet at ${PYTHON} (set FRIDAY_READERS_PYTHON; .ci/run makes one)`,
  )
}

/** Symbols that need percent-encoding in a path, non-ASCII ones and one that looks like a number. */
const SYMBOLS = ['AAPL', 'BRK.B', 'BTC/USD', '^GSPC', 'ES=F', 'SPX 500', '100%', '7203', '株式', 'Ünï€']
const DAYS = 4
const BARS = 12
const BIG = 9_007_199_254_740_993n // 2^53 + 1: not a float64

/** µs timestamp of bar `i` of day `d`, with odd microseconds. */
function barUs(d: number, i: number): number {
  return (Date.UTC(2024, 0, 2 + d, 14, 30) + i * 60_000) * 1000 + ((i * 37 + d) % 1000)
}

function isoUs(us: number): string {
  const ms = Math.floor(us / 1000)
  return `${new Date(ms).toISOString().slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`
}

interface ReaderOutput {
  types: Record<string, string>
  columns: Record<string, unknown[]>
}

function runReader(reader: string, dir: string): ReaderOutput {
  const r = spawnSync(PYTHON, [SCRIPT, reader, dir], { encoding: 'utf8', timeout: 180_000, maxBuffer: 256 * 1024 * 1024 })
  if (r.status !== 0) throw new Error(`${reader} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`)
  return JSON.parse(r.stdout) as ReaderOutput
}

/** read()'s rows sorted by (symbol, timestamp), as the script sorts (symbols here are BMP: UTF-16 order is code point order). */
function sortedRows(table: Table): PlainRow[] {
  return rowsOf(table).sort((a, b) =>
    a.symbol === b.symbol
      ? (a.timestamp as number) - (b.timestamp as number)
      : (a.symbol as string) < (b.symbol as string)
        ? -1
        : 1,
  )
}

/** What the reader printed for row `i` of column `name` of `type`, in read()'s terms. */
function expectedCell(type: string, v: unknown): unknown {
  if (v === null || v === undefined) return null
  if (type === 'int64') return String(v)
  return v
}

/** Differences between the reader's output and read(), at most 5, as text. */
function differences(out: ReaderOutput, expected: Table, extra: string[]): string[] {
  const rows = sortedRows(expected)
  const diffs: string[] = []
  const names = expected.schema.map((c) => c.name)
  const got = Object.keys(out.columns)
  const missing = names.filter((n) => !got.includes(n))
  const unexpected = got.filter((n) => !names.includes(n) && !extra.includes(n))
  if (missing.length || unexpected.length) diffs.push(`columns: missing ${missing}, unexpected ${unexpected}`)
  const n = out.columns.symbol?.length ?? 0
  if (n !== rows.length) diffs.push(`row count ${n}, read() has ${rows.length}`)
  for (let i = 0; i < Math.min(n, rows.length) && diffs.length < 5; i++) {
    for (const { name, type } of expected.schema) {
      const want = expectedCell(type, rows[i][name])
      const have = out.columns[name]?.[i]
      if (have !== want)
        diffs.push(
          `row ${i} (${rows[i].symbol} ${rows[i].timestamp}) ${name}: reader ${JSON.stringify(have)}, read() ${JSON.stringify(want)}`,
        )
    }
    if (out.columns.date) {
      const day = new Date((rows[i].timestamp as number) / 1000).toISOString().slice(0, 10)
      const have = out.columns.date[i]
      if (have !== day) diffs.push(`row ${i} date: reader ${JSON.stringify(have)}, the row's UTC day ${day}`)
    }
  }
  return diffs
}

const dataset = 'bars'
let dir: string
let stable: DataStorage
let evolved: DataStorage
let stableRows: Table
let evolvedRows: Table

function lake(base: string): DataStorage {
  return createStorage(
    { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: base, partition_by: ['symbol', 'date'] } } },
    {},
  )
}

/** One row of symbol `s`, day `d`, bar `i`: nulls only on some days, so some files have none. */
function row(s: number, d: number, i: number): Record<string, unknown> {
  return {
    symbol: SYMBOLS[s],
    timestamp: isoUs(barUs(d, i)),
    open: 100 * (s + 1) + d + i / 1000 + 0.1,
    close: d === 1 && i % 3 === 0 ? null : 100 * (s + 1) + d + i / 997,
    volume: d === 2 && i % 4 === 1 ? null : BIG + BigInt(s * 1_000_000 + d * 1000 + i),
    note: d === 0 ? `n${i}` : i % 2 ? null : `ü${s}-${i}`,
    halted: d === 3 ? i % 5 === 0 : i % 5 === 0 ? null : false,
  }
}

const suite = HAVE_PYTHON || IN_CI ? describe : describe.skip

suite('outside readers (Python) read the local lake exactly', () => {
  beforeAll(async () => {
    expect(HAVE_PYTHON, `no Python with the readers at ${PYTHON}: .ci/run must make it (FRIDAY_READERS_PYTHON)`).toBe(true)
    dir = await mkdtemp(join(tmpdir(), 'friday-python-readers-'))
    stable = lake(join(dir, 'stable'))
    const rows: Record<string, unknown>[] = []
    for (let s = 0; s < SYMBOLS.length; s++) for (let d = 0; d < DAYS; d++) for (let i = 0; i < BARS; i++) rows.push(row(s, d, i))
    await stable.write(dataset, rows)
    // an upsert (new values, one null volume) and a delete, then gc: a glob sees only live files
    await stable.write(
      dataset,
      rows
        .filter((r) => r.symbol === 'BTC/USD' && (r.timestamp as string).startsWith('2024-01-03'))
        .map((r, i) => ({ ...r, close: (r.open as number) + 0.25, volume: i === 2 ? null : (r.volume as bigint) + 7n })),
    )
    await stable.delete(dataset, { start: midnight(3), end: midnight(4), symbols: ['AAPL'] })
    await stable.gc({ graceMs: 0, dataset })
    stableRows = await stable.read(dataset)

    // a dataset whose columns came later: volume and note on day 1, halted on day 2
    evolved = lake(join(dir, 'evolved'))
    const pick = (r: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, r[k]]))
    const base = ['symbol', 'timestamp', 'open', 'close']
    for (let d = 0; d < 3; d++) {
      const keys = d === 0 ? base : d === 1 ? [...base, 'volume', 'note'] : [...base, 'volume', 'note', 'halted']
      const day: Record<string, unknown>[] = []
      for (let s = 0; s < SYMBOLS.length; s++) for (let i = 0; i < BARS; i++) day.push(pick(row(s, d, i), keys))
      await evolved.write(dataset, day)
    }
    evolvedRows = await evolved.read(dataset)
  }, 120_000)

  afterAll(async () => {
    await stable?.close()
    await evolved?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('the fixtures are what we think they are', () => {
    expect(stableRows.length).toBe(SYMBOLS.length * DAYS * BARS - BARS)
    expect(stableRows.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp', 'open', 'close', 'volume', 'note', 'halted'])
    expect(evolvedRows.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp', 'open', 'close', 'volume', 'note', 'halted'])
    expect(evolvedRows.length).toBe(SYMBOLS.length * 3 * BARS)
  })

  it('pd.read_parquet(dir): same rows and values; symbol and date categorical, timestamp datetime64[us, UTC], int64 Int64', () => {
    const out = runReader('pandas', join(dir, 'stable', dataset))
    expect(differences(out, stableRows, ['date'])).toEqual([])
    expect(out.types).toMatchObject({
      symbol: 'category',
      timestamp: 'datetime64[us, UTC]',
      open: 'float64',
      close: 'float64',
      volume: 'Int64',
      halted: 'boolean',
      date: 'category',
    })
  })

  it('pyarrow.parquet.read_table(dir): same rows and values, timestamp[us, tz=UTC]', () => {
    const out = runReader('pyarrow', join(dir, 'stable', dataset))
    expect(differences(out, stableRows, ['date'])).toEqual([])
    expect(out.types).toMatchObject({
      symbol: 'dictionary<values=string, indices=int32, ordered=0>',
      timestamp: 'timestamp[us, tz=UTC]',
      close: 'double',
      volume: 'int64',
      note: 'string',
      halted: 'bool',
    })
  })

  it('pl.read_parquet(dir), the bare directory (hive partitioning on by default): same rows and values', () => {
    const out = runReader('polars', join(dir, 'stable', dataset))
    expect(differences(out, stableRows, ['date'])).toEqual([])
    expect(out.types).toMatchObject({
      symbol: 'Categorical',
      timestamp: "Datetime(time_unit='us', time_zone='UTC')",
      close: 'Float64',
      volume: 'Int64',
      note: 'String',
      halted: 'Boolean',
      date: 'Date',
    })
  })

  it("pl.read_parquet(dir + '/**/*.parquet', hive_partitioning=True): same rows and values", () => {
    const out = runReader('polars-glob', join(dir, 'stable', dataset))
    expect(differences(out, stableRows, ['date'])).toEqual([])
    expect(out.types.timestamp).toBe("Datetime(time_unit='us', time_zone='UTC')")
    expect(out.types.volume).toBe('Int64')
    expect(out.types.date).toBe('Date')
  })

  it('fastparquet.ParquetFile(dir).to_pandas(): same rows and values once symbol is percent-decoded; timestamp UTC-aware', () => {
    const out = runReader('fastparquet', join(dir, 'stable', dataset))
    expect(differences(out, stableRows, ['date'])).toEqual([])
    expect(out.types).toMatchObject({ timestamp: 'datetime64[us, UTC]', volume: 'Int64', close: 'float64' })
  })

  it('columns added later: pandas and pyarrow with the schema of _friday/<dataset>/_common_metadata, polars with it and missing_columns=insert, fastparquet file by file', () => {
    const d = join(dir, 'evolved', dataset)
    for (const reader of ['pandas-schema', 'pyarrow-schema', 'polars-schema', 'polars-glob-schema', 'fastparquet-files']) {
      const out = runReader(reader, d)
      expect(differences(out, evolvedRows, ['date']), reader).toEqual([])
    }
  })

  it('columns added later, without the options: pyarrow silently takes the first file schema, fastparquet fails (the documented traps)', () => {
    const out = runReader('pyarrow', join(dir, 'evolved', dataset))
    expect(Object.keys(out.columns)).not.toContain('halted')
    expect(out.columns.symbol.length).toBe(evolvedRows.length)
    expect(() => runReader('fastparquet', join(dir, 'evolved', dataset))).toThrow(/fastparquet failed/)
  })
})
