/**
 * The conformance suite: the executable form of `src/core/types.ts`. Every `DataStorage` backend
 * runs it through `testStorage({ name, create })`; backend-specific checks live beside it.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DuplicateKeyError, SchemaConflictError, StorageError, ValidationError } from '../../src/core/errors.js'
import { BOOL_NULL, type DataStorage, type InputRow, type Table } from '../../src/core/types.js'

export interface StorageCase {
  name: string
  /** A fresh storage; datasets are named uniquely per test, so backends may share a container. */
  create: () => Promise<DataStorage>
  /** `true` or a reason: the backend's server is absent (the reason is printed). */
  skip?: boolean | string
}

// ---------------------------------------------------------------------------------------------
// Helpers (exported for the backend-specific tests)

export const MS_PER_DAY = 86_400_000
export const MS_PER_MIN = 60_000
/** 2024-01-02T14:30:00Z, a Tuesday; day 0 of the test data. */
export const T0 = Date.UTC(2024, 0, 2, 14, 30)

/** Epoch ms of minute `minute` of test day `day`. */
export function tms(day: number, minute = 0): number {
  return T0 + day * MS_PER_DAY + minute * MS_PER_MIN
}

/** Epoch microseconds of an epoch-ms time. */
export function us(ms: number): number {
  return ms * 1000
}

/** UTC midnight (epoch ms) of test day `day`. */
export function midnight(day: number): number {
  return Date.UTC(2024, 0, 2 + day)
}

let seq = 0
/** A dataset name unique to this process and run (letters, digits, `_`). */
export function uniqueDataset(tag: string): string {
  seq++
  return `${tag}_${seq.toString(36)}_${Math.random().toString(36).slice(2, 8)}`
}

export type PlainRow = Record<string, unknown>

/** Table → plain rows: float64 NaN and every other null encoding become `null`; int64 stays bigint. */
export function rowsOf(table: Table): PlainRow[] {
  const out: PlainRow[] = []
  for (let i = 0; i < table.length; i++) {
    const row: PlainRow = {}
    for (const { name } of table.schema) {
      const col = table.columns[name]
      if (!col) throw new Error(`schema lists column '${name}' that the table lacks`)
      switch (col.type) {
        case 'float64':
        case 'timestamp':
          row[name] = Number.isNaN(col.values[i]) ? null : col.values[i]
          break
        case 'int64':
          row[name] = col.nulls?.[i] === 1 ? null : col.values[i]
          break
        case 'boolean':
          row[name] = col.values[i] === BOOL_NULL ? null : col.values[i] === 1
          break
        case 'string':
          row[name] = col.values[i]
          break
      }
    }
    out.push(row)
  }
  return out
}

/** Every column has exactly `length` entries and the schema names exactly the columns. */
export function expectWellFormed(table: Table): void {
  expect(Object.keys(table.columns).sort()).toEqual(table.schema.map((c) => c.name).sort())
  expect(table.schema.slice(0, 2)).toEqual([
    { name: 'symbol', type: 'string' },
    { name: 'timestamp', type: 'timestamp' },
  ])
  for (const c of table.schema) {
    expect(table.columns[c.name].type, c.name).toBe(c.type)
    expect(table.columns[c.name].values.length, c.name).toBe(table.length)
  }
}

export function keyOf(row: PlainRow): string {
  return `${row.symbol}\u0001${row.timestamp}`
}

/** Rows sorted by symbol (code-unit order) then timestamp. */
export function sortRows<T extends PlainRow>(rows: T[]): T[] {
  return [...rows].sort((a, b) => {
    const sa = a.symbol as string
    const sb = b.symbol as string
    if (sa !== sb) return sa < sb ? -1 : 1
    return (a.timestamp as number) - (b.timestamp as number)
  })
}

/** Deterministic shuffle (mulberry32). */
export function shuffle<T>(items: T[], seed = 42): T[] {
  const out = [...items]
  let s = seed >>> 0
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/** Bars: `symbols × days × perDay` rows one minute apart, close = a function of the key. */
export function bars(symbols: string[], days: number[], perDay: number): InputRow[] {
  const rows: InputRow[] = []
  for (const symbol of symbols)
    for (const day of days)
      for (let m = 0; m < perDay; m++) rows.push({ symbol, timestamp: tms(day, m), close: closeOf(symbol, day, m) })
  return rows
}

export function closeOf(symbol: string, day: number, minute: number): number {
  return symbol.charCodeAt(0) + day * 10 + minute / 100
}

/** Expected plain rows (timestamp in µs) for rows written by `bars`. */
export function expectedBars(rows: InputRow[]): PlainRow[] {
  return sortRows(rows.map((r) => ({ symbol: r.symbol, timestamp: us(r.timestamp as number), close: r.close })))
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected the call to reject, it resolved')
}

export async function expectValidation(p: Promise<unknown>, row: number | undefined, field: string): Promise<ValidationError> {
  const err = await rejection(p)
  expect(err).toBeInstanceOf(ValidationError)
  expect(err.status).toBe(400)
  expect(err.code).toBe('validation_error')
  expect(err.issues.length).toBeGreaterThan(0)
  expect(err.issues[0].row).toBe(row)
  expect(err.issues[0].field).toBe(field)
  return err
}

/** Hive partition values of a row for a dataset partitioned by `partitionBy`. */
export function partitionValuesOf(symbol: string, tsMs: number, partitionBy: string[]): Record<string, string> {
  const day = new Date(tsMs).toISOString().slice(0, 10)
  const values: Record<string, string> = {}
  for (const key of partitionBy) {
    if (key === 'symbol') values.symbol = symbol
    else if (key === 'date') values.date = day
    else if (key === 'month') values.month = day.slice(0, 7)
    else throw new Error(`unknown partition key ${key}`)
  }
  return values
}

/** Decodes a hive path `k=v/k2=v2` into its values (percent-decoding each value). */
export function decodeHivePath(path: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const seg of path.split('/')) {
    const eq = seg.indexOf('=')
    expect(eq, `hive segment '${seg}'`).toBeGreaterThan(0)
    values[seg.slice(0, eq)] = decodeURIComponent(seg.slice(eq + 1))
  }
  return values
}

const SHA256 = /^sha256:[0-9a-f]{64}$/

// ---------------------------------------------------------------------------------------------

export function testStorage(opts: StorageCase): void {
  if (opts.skip) console.warn(`[skipped] storage conformance '${opts.name}': ${opts.skip === true ? 'skipped' : opts.skip}`)

  describe.skipIf(Boolean(opts.skip))(`DataStorage conformance: ${opts.name}`, () => {
    let storage: DataStorage

    beforeEach(async () => {
      storage = await opts.create()
    })
    afterEach(async () => {
      await storage?.close()
    })

    /** Partition keys of a dataset as the storage reports them. */
    async function partitionByOf(dataset: string): Promise<string[]> {
      const d = await storage.describe(dataset)
      if (!d) throw new Error(`dataset ${dataset} should exist`)
      return d.partitionBy
    }

    // -------------------------------------------------------------------------------------------
    describe('write and read back', () => {
      it('round-trips float64, int64 beyond 2^53, strings, booleans and nulls exactly', async () => {
        const ds = uniqueDataset('types')
        const big = 2n ** 60n + 7n
        const rows = [
          { symbol: 'AAPL', timestamp: tms(0, 0), close: 1.5, volume: big, note: 'x', flag: true },
          { symbol: 'AAPL', timestamp: tms(0, 1), close: null, volume: null, note: null, flag: null },
          { symbol: 'AAPL', timestamp: tms(0, 2), close: -0.1, volume: -(2n ** 62n), note: '', flag: false },
          { symbol: 'AAPL', timestamp: tms(0, 3), close: 1e-300, volume: 9007199254740993n, note: 'ünï 株', flag: true },
        ]
        const res = await storage.write(ds, rows)
        expect(res.rowsWritten).toBe(4)
        expect(res.partitions.length).toBeGreaterThan(0)

        const t = await storage.read(ds)
        expectWellFormed(t)
        expect(t.length).toBe(4)
        expect(Object.fromEntries(t.schema.map((c) => [c.name, c.type]))).toEqual({
          symbol: 'string',
          timestamp: 'timestamp',
          close: 'float64',
          volume: 'int64',
          note: 'string',
          flag: 'boolean',
        })
        expect(t.columns.timestamp.values).toBeInstanceOf(Float64Array)
        expect(t.columns.close.values).toBeInstanceOf(Float64Array)
        expect(t.columns.volume.values).toBeInstanceOf(BigInt64Array)
        expect(t.columns.flag.values).toBeInstanceOf(Uint8Array)
        // null encodings as documented
        expect(Number.isNaN(t.columns.close.values[1] as number)).toBe(true)
        const vol = t.columns.volume as { values: BigInt64Array; nulls?: Uint8Array }
        expect(vol.nulls?.[1]).toBe(1)
        expect(vol.nulls?.[0] ?? 0).toBe(0)
        expect(t.columns.flag.values[1]).toBe(BOOL_NULL)

        expect(rowsOf(t)).toEqual(rows.map((r) => ({ ...r, timestamp: us(r.timestamp) })))
        expect(vol.values[0]).toBe(big)
        expect(vol.values[3]).toBe(9007199254740993n)
      })

      it('normalizes every time form to exact UTC epoch microseconds', async () => {
        const ds = uniqueDataset('times')
        await storage.write(ds, [
          { symbol: 'A', timestamp: 1704187800000, close: 1 }, // epoch ms
          { symbol: 'B', timestamp: '2024-01-02T10:30:00+01:00', close: 2 }, // offset → 09:30Z
          { symbol: 'C', timestamp: new Date('2024-01-02T09:30:00Z'), close: 3 }, // Date
          { symbol: 'D', timestamp: '2024-01-02T09:30:00.123456Z', close: 4 }, // microseconds
          { symbol: 'E', timestamp: '2024-01-02T04:30:00.000001-05:00', close: 5 }, // µs + negative offset
          { symbol: 'F', timestamp: '2024-01-02', close: 6 }, // date only = UTC midnight
        ])
        const t = await storage.read(ds)
        const ts = Array.from(t.columns.timestamp.values as Float64Array)
        expect(t.columns.symbol.values).toEqual(['A', 'B', 'C', 'D', 'E', 'F'])
        expect(ts[0]).toBe(1704187800000000)
        expect(ts[1]).toBe(1704187800000000)
        expect(ts[2]).toBe(1704187800000000)
        expect(ts[3]).toBe(1704187800123456)
        expect(ts[4]).toBe(1704187800000001)
        expect(ts[5]).toBe(Date.UTC(2024, 0, 2) * 1000)
      })

      it('reads an ISO string without offset as UTC, whatever the process time zone', async () => {
        const ds = uniqueDataset('notz')
        const saved = process.env.TZ
        process.env.TZ = 'America/New_York' // a local-time parse would land at 14:30Z
        try {
          await storage.write(ds, [{ symbol: 'A', timestamp: '2024-01-02T09:30:00', close: 1 }])
        } finally {
          if (saved === undefined) delete process.env.TZ
          else process.env.TZ = saved
        }
        const t = await storage.read(ds)
        expect(t.columns.timestamp.values[0]).toBe(1704187800000000)
      })

      it('accepts the time column as timestamp, datetime or date', async () => {
        for (const field of ['timestamp', 'datetime', 'date']) {
          const ds = uniqueDataset(`tcol_${field}`)
          const res = await storage.write(ds, [
            { symbol: 'A', [field]: '2024-01-02T09:30:00Z', close: 1 },
            { symbol: 'A', [field]: tms(0, 1), close: 2 },
          ])
          expect(res.rowsWritten).toBe(2)
          const t = await storage.read(ds)
          expect(t.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp', 'close'])
          expect(rowsOf(t)).toEqual([
            { symbol: 'A', timestamp: 1704187800000000, close: 1 },
            { symbol: 'A', timestamp: us(tms(0, 1)), close: 2 },
          ])
        }
      })

      it('accepts columnar input', async () => {
        const ds = uniqueDataset('columnar')
        const res = await storage.write(ds, {
          symbol: ['MSFT', 'AAPL', 'AAPL'],
          timestamp: [tms(0, 5), '2024-01-02T14:31:00Z', new Date(tms(0, 0))],
          close: new Float64Array([3, 2, 1]),
          volume: [30n, 20n, 10n],
          venue: ['x', null, 'z'],
        })
        expect(res.rowsWritten).toBe(3)
        const t = await storage.read(ds)
        expectWellFormed(t)
        expect(rowsOf(t)).toEqual([
          { symbol: 'AAPL', timestamp: us(tms(0, 0)), close: 1, volume: 10n, venue: 'z' },
          { symbol: 'AAPL', timestamp: us(tms(0, 1)), close: 2, volume: 20n, venue: null },
          { symbol: 'MSFT', timestamp: us(tms(0, 5)), close: 3, volume: 30n, venue: 'x' },
        ])
      })

      it('writing a Table returned by read round-trips exactly (µs timestamps, all types, nulls)', async () => {
        const src = uniqueDataset('tsrc')
        const dst = uniqueDataset('tdst')
        await storage.write(src, [
          { symbol: 'AAPL', timestamp: '2024-01-02T09:30:00.123456Z', close: 1.25, volume: 2n ** 61n, note: 'a', flag: true },
          { symbol: 'AAPL', timestamp: '2024-01-03T09:30:00.000001Z', close: null, volume: null, note: null, flag: null },
          { symbol: 'EUR/USD', timestamp: '2024-01-02T23:59:59.999999Z', close: 1.1, volume: 1n, note: 'b', flag: false },
        ])
        const original = await storage.read(src)
        const res = await storage.write(dst, original)
        expect(res.rowsWritten).toBe(3)
        const copy = await storage.read(dst)
        expect(copy.schema).toEqual(original.schema)
        expect(rowsOf(copy)).toEqual(rowsOf(original))
        expect(Array.from(copy.columns.timestamp.values as Float64Array)).toEqual([
          1704187800123456, 1704274200000001, 1704239999999999,
        ])
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('read order and filters', () => {
      it('sorts by symbol then timestamp even when the input is shuffled', async () => {
        const ds = uniqueDataset('sort')
        const rows = bars(['MSFT', 'AAPL', 'GOOG', 'A'], [0, 1, 2], 6)
        await storage.write(ds, shuffle(rows, 7))
        const t = await storage.read(ds)
        expect(rowsOf(t)).toEqual(expectedBars(rows))
      })

      it('start is inclusive and end exclusive, given as Date, epoch ms or ISO string', async () => {
        const ds = uniqueDataset('range')
        const rows = bars(['AAPL', 'MSFT'], [0, 1, 2], 5)
        await storage.write(ds, rows)
        const start = tms(0, 3)
        const end = tms(1, 2)
        const expected = expectedBars(rows.filter((r) => (r.timestamp as number) >= start && (r.timestamp as number) < end))
        expect(expected.length).toBe(2 * (2 + 2)) // per symbol: minutes 3,4 of day 0 and 0,1 of day 1
        for (const [s, e] of [
          [new Date(start), new Date(end)],
          [start, end],
          [new Date(start).toISOString(), new Date(end).toISOString()],
        ] as const) {
          const t = await storage.read(ds, { start: s, end: e })
          expect(rowsOf(t)).toEqual(expected)
        }
        // only start / only end
        expect((await storage.read(ds, { start: tms(2, 4) })).length).toBe(2)
        expect((await storage.read(ds, { end: tms(0, 1) })).length).toBe(2)
        // an empty range
        expect((await storage.read(ds, { start, end: start })).length).toBe(0)
      })

      it('filters by symbols', async () => {
        const ds = uniqueDataset('syms')
        const rows = bars(['AAPL', 'MSFT', 'GOOG'], [0, 1], 3)
        await storage.write(ds, rows)
        const t = await storage.read(ds, { symbols: ['MSFT', 'AAPL'] })
        expect(rowsOf(t)).toEqual(expectedBars(rows.filter((r) => r.symbol !== 'GOOG')))
        const one = await storage.read(ds, { symbols: ['GOOG'], start: tms(1, 0) })
        expect(rowsOf(one)).toEqual(expectedBars(rows.filter((r) => r.symbol === 'GOOG' && (r.timestamp as number) >= tms(1, 0))))
      })

      it('projects columns and always includes the key columns', async () => {
        const ds = uniqueDataset('proj')
        await storage.write(ds, [
          { symbol: 'A', timestamp: tms(0, 0), open: 1, close: 2, volume: 3n, venue: 'x' },
          { symbol: 'A', timestamp: tms(0, 1), open: 4, close: 5, volume: 6n, venue: 'y' },
        ])
        const t = await storage.read(ds, { columns: ['volume', 'close'] })
        expectWellFormed(t)
        expect(Object.keys(t.columns).sort()).toEqual(['close', 'symbol', 'timestamp', 'volume'])
        expect(rowsOf(t)).toEqual([
          { symbol: 'A', timestamp: us(tms(0, 0)), close: 2, volume: 3n },
          { symbol: 'A', timestamp: us(tms(0, 1)), close: 5, volume: 6n },
        ])
      })

      it('limit returns the first rows in (symbol, timestamp) order', async () => {
        const ds = uniqueDataset('limit')
        const rows = bars(['MSFT', 'AAPL'], [1, 0], 3)
        await storage.write(ds, shuffle(rows, 3))
        const t = await storage.read(ds, { limit: 4 })
        expect(rowsOf(t)).toEqual(expectedBars(rows).slice(0, 4))
        const u = await storage.read(ds, { limit: 2, symbols: ['MSFT'], start: tms(1, 0) })
        expect(rowsOf(u)).toEqual(
          expectedBars(rows.filter((r) => r.symbol === 'MSFT' && (r.timestamp as number) >= tms(1, 0))).slice(0, 2),
        )
      })

      it('an unknown dataset, unknown symbol or empty range reads as an empty table', async () => {
        const ds = uniqueDataset('empty')
        const none = await storage.read(uniqueDataset('nosuch'))
        expect(none.length).toBe(0)
        await storage.write(ds, bars(['AAPL'], [0], 2))
        const sym = await storage.read(ds, { symbols: ['ZZZZ'] })
        expect(sym.length).toBe(0)
        for (const c of Object.values(sym.columns)) expect(c.values.length).toBe(0)
        const range = await storage.read(ds, { start: tms(5, 0), end: tms(6, 0) })
        expect(range.length).toBe(0)
        expect(await storage.listPartitions(uniqueDataset('nosuch'))).toEqual([])
        expect(await storage.describe(uniqueDataset('nosuch'))).toBeNull()
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('write modes', () => {
      it('upsert: re-sending a batch changes nothing', async () => {
        const ds = uniqueDataset('idem')
        const rows = bars(['AAPL', 'MSFT'], [0, 1], 4)
        await storage.write(ds, rows)
        const first = await storage.read(ds)
        const res = await storage.write(ds, shuffle(rows, 9))
        expect(res.rowsWritten).toBe(rows.length)
        const second = await storage.read(ds)
        expect(second.length).toBe(rows.length)
        expect(rowsOf(second)).toEqual(rowsOf(first))
        expect((await storage.describe(ds))?.rows).toBe(rows.length)
      })

      it('upsert: a later write wins for existing keys and adds new keys', async () => {
        const ds = uniqueDataset('later')
        await storage.write(ds, [
          { symbol: 'AAPL', timestamp: tms(0, 0), close: 1 },
          { symbol: 'AAPL', timestamp: tms(0, 1), close: 2 },
          { symbol: 'AAPL', timestamp: tms(1, 0), close: 3 },
        ])
        await storage.write(ds, [
          { symbol: 'AAPL', timestamp: new Date(tms(0, 1)).toISOString(), close: 20 }, // same key, other time form
          { symbol: 'AAPL', timestamp: tms(1, 0), close: 30 },
          { symbol: 'AAPL', timestamp: tms(1, 1), close: 40 },
        ])
        expect(rowsOf(await storage.read(ds))).toEqual([
          { symbol: 'AAPL', timestamp: us(tms(0, 0)), close: 1 },
          { symbol: 'AAPL', timestamp: us(tms(0, 1)), close: 20 },
          { symbol: 'AAPL', timestamp: us(tms(1, 0)), close: 30 },
          { symbol: 'AAPL', timestamp: us(tms(1, 1)), close: 40 },
        ])
      })

      it('upsert: duplicate keys inside one batch, the last one wins', async () => {
        const ds = uniqueDataset('dupe')
        const res = await storage.write(ds, [
          { symbol: 'AAPL', timestamp: tms(0, 0), close: 1 },
          { symbol: 'AAPL', timestamp: tms(0, 1), close: 2 },
          { symbol: 'AAPL', timestamp: new Date(tms(0, 0)).toISOString(), close: 3 },
          { symbol: 'AAPL', timestamp: new Date(tms(0, 0)), close: 4 },
        ])
        expect(res.rowsWritten).toBe(2)
        expect(rowsOf(await storage.read(ds))).toEqual([
          { symbol: 'AAPL', timestamp: us(tms(0, 0)), close: 4 },
          { symbol: 'AAPL', timestamp: us(tms(0, 1)), close: 2 },
        ])
      })

      it('append: writes a batch of new keys', async () => {
        const ds = uniqueDataset('app')
        await storage.write(ds, bars(['AAPL'], [0], 2), { mode: 'append' })
        const res = await storage.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, 2), close: 9 }], { mode: 'append' })
        expect(res.rowsWritten).toBe(1)
        expect((await storage.read(ds)).length).toBe(3)
      })

      it('append: a batch with an existing key is rejected with 409 and writes nothing', async () => {
        const ds = uniqueDataset('appdup')
        await storage.write(ds, [
          { symbol: 'AAPL', timestamp: tms(0, 0), close: 1 },
          { symbol: 'MSFT', timestamp: tms(0, 0), close: 2 },
        ])
        const before = rowsOf(await storage.read(ds))
        const err = await rejection(
          storage.write(
            ds,
            [
              { symbol: 'AAPL', timestamp: tms(0, 1), close: 10 }, // new, same partition
              { symbol: 'GOOG', timestamp: tms(3, 0), close: 11 }, // new, new partition
              { symbol: 'MSFT', timestamp: tms(0, 0), close: 12 }, // conflict
            ],
            { mode: 'append' },
          ),
        )
        expect(err).toBeInstanceOf(DuplicateKeyError)
        expect(err.status).toBe(409)
        expect(err.details.total).toBe(1)
        expect(err.details.keys).toHaveLength(1)
        expect(err.details.keys[0].symbol).toBe('MSFT')
        expect(Date.parse(err.details.keys[0].timestamp)).toBe(tms(0, 0))
        expect(rowsOf(await storage.read(ds))).toEqual(before)
        expect((await storage.describe(ds))?.symbols).toEqual(['AAPL', 'MSFT'])
      })

      it('append: keys already holding exactly the batch rows are no conflict (a retried append); other values are', async () => {
        const ds = uniqueDataset('appretry')
        const batch = [
          { symbol: 'AAPL', timestamp: tms(0, 0), close: 1, volume: 10n },
          { symbol: 'AAPL', timestamp: tms(0, 1), close: null, volume: 11n },
          { symbol: 'MSFT', timestamp: tms(1, 0), close: 3, volume: 12n },
        ]
        await storage.write(ds, batch, { mode: 'append' })
        // the same batch again (its first outcome unknown), plus one new key
        const again = await storage.write(ds, [...batch, { symbol: 'MSFT', timestamp: tms(1, 1), close: 4, volume: 13n }], {
          mode: 'append',
        })
        expect(again.rowsWritten).toBe(4)
        expect(rowsOf(await storage.read(ds)).map((r) => [r.symbol, r.close, r.volume])).toEqual([
          ['AAPL', 1, 10n],
          ['AAPL', null, 11n],
          ['MSFT', 3, 12n],
          ['MSFT', 4, 13n],
        ])
        // one value differs (null vs a number): a conflict, and nothing of the batch is stored
        const err = await rejection(
          storage.write(
            ds,
            [
              { symbol: 'AAPL', timestamp: tms(0, 1), close: 2, volume: 11n },
              { symbol: 'GOOG', timestamp: tms(0, 0), close: 5, volume: 1n },
            ],
            { mode: 'append' },
          ),
        )
        expect(err).toBeInstanceOf(DuplicateKeyError)
        expect(err.details.total).toBe(1)
        expect((await storage.read(ds)).length).toBe(4)
      })

      it('replace: replaces the batch symbols over [batch min, batch max], including a day without new rows', async () => {
        const ds = uniqueDataset('repl')
        const rows = bars(['AAPL', 'MSFT'], [0, 1, 2, 3], 4) // minutes 0..3 on days 0..3
        await storage.write(ds, rows)
        const batch = [
          { symbol: 'AAPL', timestamp: tms(0, 2), close: 100 }, // replaces day 0 minute 2 (min of the range)
          { symbol: 'AAPL', timestamp: tms(0, 2) + 30_000, close: 101 }, // new key inside the range
          { symbol: 'AAPL', timestamp: tms(2, 1), close: 102 }, // max of the range
        ]
        const res = await storage.write(ds, batch, { mode: 'replace' })
        expect(res.rowsWritten).toBe(3)
        const min = tms(0, 2)
        const max = tms(2, 1)
        const kept = rows.filter((r) => r.symbol !== 'AAPL' || (r.timestamp as number) < min || (r.timestamp as number) > max)
        const expected = sortRows([
          ...expectedBars(kept),
          ...batch.map((r) => ({ symbol: r.symbol, timestamp: us(r.timestamp), close: r.close })),
        ])
        const t = await storage.read(ds)
        expect(rowsOf(t)).toEqual(expected)
        // day 1 (inside the range, no new rows) has no AAPL rows left
        expect((await storage.read(ds, { symbols: ['AAPL'], start: midnight(1), end: midnight(2) })).length).toBe(0)
        // MSFT untouched on every day
        expect((await storage.read(ds, { symbols: ['MSFT'] })).length).toBe(16)
        // AAPL rows outside the range untouched: day 0 minutes 0,1; day 2 minutes 2,3; day 3 all
        expect((await storage.read(ds, { symbols: ['AAPL'] })).length).toBe(2 + 3 + 2 + 4)
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('schema', () => {
      it('a conflicting column type is a SchemaConflictError naming the column; nothing is written', async () => {
        const ds = uniqueDataset('conflict')
        await storage.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, 0), close: 1, venue: 'x' }])
        const err = await rejection(
          storage.write(ds, [
            { symbol: 'AAPL', timestamp: tms(0, 1), close: 2, venue: 'y' }, // fine, existing partition
            { symbol: 'MSFT', timestamp: tms(4, 0), close: 'high', venue: 'z' }, // string into float64, new partition
          ]),
        )
        expect(err).toBeInstanceOf(SchemaConflictError)
        expect(err.status).toBe(409)
        expect(err.details.column).toBe('close')
        expect(err.message).toContain("'close'")
        expect(rowsOf(await storage.read(ds))).toEqual([{ symbol: 'AAPL', timestamp: us(tms(0, 0)), close: 1, venue: 'x' }])
        const d = await storage.describe(ds)
        expect(d?.symbols).toEqual(['AAPL'])
        expect(d?.partitions).toBe(1)
        expect(d?.schema.find((c) => c.name === 'close')?.type).toBe('float64')
      })

      it('a column added later reads as null in the older rows', async () => {
        const ds = uniqueDataset('evolve')
        await storage.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, 0), close: 1 }])
        await storage.write(ds, [
          { symbol: 'AAPL', timestamp: tms(0, 1), close: 2, vwap: 2.5, venue: 'x', trades: 7n, halted: false },
        ])
        const t = await storage.read(ds)
        expectWellFormed(t)
        expect(Object.fromEntries(t.schema.map((c) => [c.name, c.type]))).toEqual({
          symbol: 'string',
          timestamp: 'timestamp',
          close: 'float64',
          vwap: 'float64',
          venue: 'string',
          trades: 'int64',
          halted: 'boolean',
        })
        expect(Number.isNaN(t.columns.vwap.values[0] as number)).toBe(true)
        expect(rowsOf(t)).toEqual([
          { symbol: 'AAPL', timestamp: us(tms(0, 0)), close: 1, vwap: null, venue: null, trades: null, halted: null },
          { symbol: 'AAPL', timestamp: us(tms(0, 1)), close: 2, vwap: 2.5, venue: 'x', trades: 7n, halted: false },
        ])
        const d = await storage.describe(ds)
        expect(d?.schema.map((c) => c.name).sort()).toEqual(t.schema.map((c) => c.name).sort())
      })

      it('a column added later reads as null in older partitions, whole and projected', async () => {
        const ds = uniqueDataset('evolve2')
        await storage.write(ds, bars(['AAPL', 'MSFT'], [0], 3))
        await storage.write(ds, [
          { symbol: 'AAPL', timestamp: tms(1, 0), close: 2, venue: 'x', trades: 7n, halted: true },
          { symbol: 'MSFT', timestamp: tms(1, 0), close: 3, venue: null, trades: 8n, halted: false },
        ])
        const all = rowsOf(await storage.read(ds))
        expect(all.length).toBe(8)
        for (const r of all) {
          if ((r.timestamp as number) < us(tms(1, 0))) expect([r.venue, r.trades, r.halted]).toEqual([null, null, null])
        }
        expect(all.filter((r) => r.timestamp === us(tms(1, 0)))).toEqual([
          { symbol: 'AAPL', timestamp: us(tms(1, 0)), close: 2, venue: 'x', trades: 7n, halted: true },
          { symbol: 'MSFT', timestamp: us(tms(1, 0)), close: 3, venue: null, trades: 8n, halted: false },
        ])
        const projected = rowsOf(await storage.read(ds, { columns: ['trades', 'venue'], symbols: ['MSFT'] }))
        expect(projected.map((r) => [r.trades, r.venue])).toEqual([
          [null, null],
          [null, null],
          [null, null],
          [8n, null],
        ])
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('symbols and input validation', () => {
      const ODD = ['BRK.B', 'EUR/USD', '^GSPC', 'ES=F', 'a b', '株', '.X', '_Y', '%41', 'A%2FB']

      it('symbols with dots, slashes, carets, equals, spaces, percent signs and unicode round-trip', async () => {
        const ds = uniqueDataset('odd')
        const rows = ODD.map((symbol, i) => ({ symbol, timestamp: tms(0, i), close: i }))
        await storage.write(ds, rows)
        expect(rowsOf(await storage.read(ds))).toEqual(
          sortRows(rows.map((r) => ({ symbol: r.symbol, timestamp: us(r.timestamp), close: r.close }))),
        )
        for (const [i, symbol] of ODD.entries()) {
          const t = await storage.read(ds, { symbols: [symbol] })
          expect(rowsOf(t), symbol).toEqual([{ symbol, timestamp: us(tms(0, i)), close: i }])
        }
        const d = await storage.describe(ds)
        expect(d?.symbols).toEqual([...ODD].sort())
        const partitionBy = d?.partitionBy ?? []
        const parts = await storage.listPartitions(ds)
        for (const p of parts) expect(decodeHivePath(p.path)).toEqual(p.values)
        if (partitionBy.includes('symbol')) {
          expect(parts.map((p) => p.values.symbol).sort()).toEqual([...ODD].sort())
          const eur = parts.find((p) => p.values.symbol === 'EUR/USD')
          expect(eur?.path).toContain('symbol=EUR%2FUSD')
          for (const p of parts) expect(p.path.split('/')).toHaveLength(partitionBy.length) // no raw '/'
        }
      })

      it.each([
        ['..', 'dot-dot'],
        ['../x', 'path traversal'],
        ['a/../b', 'embedded traversal'],
        ['a\u0000b', 'NUL'],
        ['a\nb', 'newline'],
        ['\u001f', 'unit separator'],
        ['a\u007fb', 'DEL'],
        ['', 'empty'],
      ])('symbol %j (%s) is a ValidationError naming row and field; nothing is written', async (bad) => {
        const ds = uniqueDataset('badsym')
        const datasets = await storage.listDatasets()
        await expectValidation(
          storage.write(ds, [
            { symbol: 'AAPL', timestamp: tms(0, 0), close: 1 },
            { symbol: 'MSFT', timestamp: tms(0, 0), close: 1 },
            { symbol: bad, timestamp: tms(0, 1), close: 1 },
          ]),
          2,
          'symbol',
        )
        expect(await storage.listDatasets()).toEqual(datasets)
        expect(await storage.describe(ds)).toBeNull()
        expect((await storage.read(ds)).length).toBe(0)
      })

      it('a missing symbol is a ValidationError at its row; an existing dataset is unchanged', async () => {
        const ds = uniqueDataset('nosym')
        await storage.write(ds, bars(['AAPL'], [0], 2))
        const before = rowsOf(await storage.read(ds))
        await expectValidation(
          storage.write(ds, [
            { symbol: 'AAPL', timestamp: tms(0, 5), close: 1 },
            { timestamp: tms(0, 6), close: 1 },
          ]),
          1,
          'symbol',
        )
        await expectValidation(storage.write(ds, [{ symbol: 42, timestamp: tms(0, 6), close: 1 }]), 0, 'symbol')
        expect(rowsOf(await storage.read(ds))).toEqual(before)
      })

      it('a missing time is a ValidationError at its row', async () => {
        const ds = uniqueDataset('notime')
        await expectValidation(
          storage.write(ds, [
            { symbol: 'AAPL', timestamp: tms(0, 0), close: 1 },
            { symbol: 'AAPL', timestamp: tms(0, 1), close: 1 },
            { symbol: 'AAPL', close: 1 },
          ]),
          2,
          'timestamp',
        )
        await expectValidation(storage.write(ds, [{ symbol: 'AAPL', timestamp: null, close: 1 }]), 0, 'timestamp')
        expect(await storage.describe(ds)).toBeNull()
      })

      it.each([['not-a-date'], ['2024-13-45T00:00:00Z'], ['2024-02-30'], ['2024-01-02T25:00:00Z'], ['']])(
        'unparseable time %j is a ValidationError at its row',
        async (bad) => {
          const ds = uniqueDataset('badtime')
          await expectValidation(
            storage.write(ds, [
              { symbol: 'AAPL', timestamp: tms(0, 0), close: 1 },
              { symbol: 'AAPL', timestamp: bad, close: 1 },
            ]),
            1,
            'timestamp',
          )
          expect(await storage.describe(ds)).toBeNull()
        },
      )

      it('an invalid Date or a non-finite epoch as time is a ValidationError', async () => {
        const ds = uniqueDataset('badtime2')
        await expectValidation(storage.write(ds, [{ symbol: 'A', timestamp: new Date('nope'), close: 1 }]), 0, 'timestamp')
        await expectValidation(storage.write(ds, [{ symbol: 'A', timestamp: Number.NaN, close: 1 }]), 0, 'timestamp')
        await expectValidation(
          storage.write(ds, [{ symbol: 'A', timestamp: Number.POSITIVE_INFINITY, close: 1 }]),
          0,
          'timestamp',
        )
        expect(await storage.describe(ds)).toBeNull()
      })

      it.each([
        ['NaN', Number.NaN],
        ['Infinity', Number.POSITIVE_INFINITY],
        ['-Infinity', Number.NEGATIVE_INFINITY],
        ['an object', { a: 1 }],
        ['an array', [1, 2]],
      ])('a value that is %s is a ValidationError naming row and column; nothing is written', async (_label, bad) => {
        const ds = uniqueDataset('badval')
        await storage.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, 0), close: 1, open: 1 }])
        const before = rowsOf(await storage.read(ds))
        await expectValidation(
          storage.write(ds, [
            { symbol: 'AAPL', timestamp: tms(0, 1), close: 2, open: 2 },
            { symbol: 'MSFT', timestamp: tms(3, 0), close: 3, open: 3 },
            { symbol: 'AAPL', timestamp: tms(0, 2), close: 4, open: bad },
          ]),
          2,
          'open',
        )
        expect(rowsOf(await storage.read(ds))).toEqual(before)
        expect((await storage.describe(ds))?.partitions).toBe(1)
      })

      it('columnar input with ragged columns is a ValidationError; nothing is written', async () => {
        const ds = uniqueDataset('ragged')
        const err = await rejection(storage.write(ds, { symbol: ['A', 'A'], timestamp: [tms(0, 0), tms(0, 1)], close: [1] }))
        expect(err).toBeInstanceOf(ValidationError)
        expect(err.status).toBe(400)
        expect(err.issues[0].field).toBe('close')
        expect(await storage.describe(ds)).toBeNull()
      })

      it('an invalid dataset name is a ValidationError', async () => {
        for (const bad of ['', '..', 'a/b', '../etc', 'a\u0000b']) {
          const err = await rejection(storage.write(bad, [{ symbol: 'A', timestamp: tms(0, 0), close: 1 }]))
          expect(err, JSON.stringify(bad)).toBeInstanceOf(ValidationError)
          expect(err.status).toBe(400)
        }
      })

      it('an empty batch is a no-op returning rowsWritten 0', async () => {
        const ds = uniqueDataset('noop')
        const datasets = await storage.listDatasets()
        expect(await storage.write(ds, [])).toEqual({ rowsWritten: 0, partitions: [] })
        expect(await storage.write(ds, { symbol: [], timestamp: [] })).toEqual({ rowsWritten: 0, partitions: [] })
        expect(await storage.write(ds, [], { mode: 'append' })).toEqual({ rowsWritten: 0, partitions: [] })
        expect(await storage.listDatasets()).toEqual(datasets)
        expect(await storage.describe(ds)).toBeNull()
        // and on an existing dataset: no new version of anything
        const ds2 = uniqueDataset('noop2')
        await storage.write(ds2, bars(['AAPL'], [0], 2))
        const parts = await storage.listPartitions(ds2)
        expect(await storage.write(ds2, [], { mode: 'replace' })).toEqual({ rowsWritten: 0, partitions: [] })
        expect(await storage.listPartitions(ds2)).toEqual(parts)
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('scan', () => {
      it('yields the same rows as read, in batches of at most batchSize', async () => {
        const ds = uniqueDataset('scan')
        const rows = bars(['MSFT', 'AAPL', 'GOOG'], [0, 1, 2, 3], 9) // 108 rows, several partitions
        await storage.write(ds, shuffle(rows, 5))
        const all = await storage.read(ds)
        expect(all.length).toBe(108)
        const batches: Table[] = []
        for await (const b of storage.scan(ds, { batchSize: 7 })) batches.push(b)
        expect(batches.length).toBeGreaterThanOrEqual(Math.ceil(108 / 7))
        for (const b of batches) {
          expect(b.length).toBeGreaterThan(0)
          expect(b.length).toBeLessThanOrEqual(7)
          expectWellFormed(b)
        }
        expect(batches.flatMap(rowsOf)).toEqual(rowsOf(all))

        const filter = { symbols: ['MSFT', 'GOOG'], start: tms(1, 2), end: tms(3, 1), columns: ['close'] }
        const filtered: Table[] = []
        for await (const b of storage.scan(ds, { ...filter, batchSize: 7 })) filtered.push(b)
        const expected = rowsOf(await storage.read(ds, filter))
        expect(expected.length).toBeGreaterThan(7)
        expect(filtered.flatMap(rowsOf)).toEqual(expected)

        const limited: Table[] = []
        for await (const b of storage.scan(ds, { limit: 10, batchSize: 7 })) limited.push(b)
        expect(limited.flatMap(rowsOf)).toEqual(rowsOf(all).slice(0, 10))
      })

      it('an unknown dataset yields no batches', async () => {
        let n = 0
        for await (const _ of storage.scan(uniqueDataset('nosuch'), { batchSize: 7 })) n++
        expect(n).toBe(0)
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('delete', () => {
      it('deletes by symbol', async () => {
        const ds = uniqueDataset('delsym')
        const rows = bars(['AAPL', 'MSFT', 'GOOG'], [0, 1], 3)
        await storage.write(ds, rows)
        const res = await storage.delete(ds, { symbols: ['MSFT'] })
        expect(res.rowsDeleted).toBe(6)
        expect(res.partitions.length).toBeGreaterThan(0)
        expect(rowsOf(await storage.read(ds))).toEqual(expectedBars(rows.filter((r) => r.symbol !== 'MSFT')))
        expect((await storage.describe(ds))?.symbols).toEqual(['AAPL', 'GOOG'])
        // a deleted key can be written again
        await storage.write(ds, [{ symbol: 'MSFT', timestamp: tms(0, 0), close: 77 }])
        expect(rowsOf(await storage.read(ds, { symbols: ['MSFT'] }))).toEqual([
          { symbol: 'MSFT', timestamp: us(tms(0, 0)), close: 77 },
        ])
      })

      it('deletes a time range, start inclusive and end exclusive', async () => {
        const ds = uniqueDataset('delrange')
        const rows = bars(['AAPL', 'MSFT'], [0, 1, 2], 4)
        await storage.write(ds, rows)
        const start = tms(0, 2)
        const end = tms(2, 1)
        const res = await storage.delete(ds, { start: new Date(start).toISOString(), end })
        const gone = (r: InputRow) => (r.timestamp as number) >= start && (r.timestamp as number) < end
        expect(res.rowsDeleted).toBe(rows.filter(gone).length)
        expect(rowsOf(await storage.read(ds))).toEqual(expectedBars(rows.filter((r) => !gone(r))))
        // symbol and range together
        const res2 = await storage.delete(ds, { symbols: ['AAPL'], start: tms(2, 0) })
        expect(res2.rowsDeleted).toBe(3)
        expect((await storage.read(ds, { symbols: ['AAPL'], start: tms(2, 0) })).length).toBe(0)
        expect((await storage.read(ds, { symbols: ['MSFT'], start: tms(2, 0) })).length).toBe(3)
      })

      it('deletes everything without a filter; an unknown dataset deletes 0 rows', async () => {
        const ds = uniqueDataset('delall')
        await storage.write(ds, bars(['AAPL', 'MSFT'], [0, 1], 3))
        expect((await storage.delete(ds)).rowsDeleted).toBe(12)
        expect((await storage.read(ds)).length).toBe(0)
        expect(await storage.listPartitions(ds)).toEqual([])
        expect((await storage.delete(ds)).rowsDeleted).toBe(0)
        expect((await storage.delete(uniqueDataset('nosuch'))).rowsDeleted).toBe(0)
        expect((await storage.delete(uniqueDataset('nosuch'), { symbols: ['A'] })).partitions).toEqual([])
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('catalog', () => {
      it('listDatasets is sorted and lists what was written', async () => {
        const tag = uniqueDataset('cat')
        const names = [`${tag}_zeta`, `${tag}_alpha`, `${tag}_mid`, `${tag}_b-1`]
        for (const n of names) await storage.write(n, bars(['A'], [0], 1))
        const list = await storage.listDatasets()
        expect(list).toEqual([...list].sort())
        expect(list.filter((n) => n.startsWith(tag))).toEqual([...names].sort())
      })

      it('describe summarizes a dataset and is null for an unknown one', async () => {
        const ds = uniqueDataset('desc')
        const rows = bars(['MSFT', 'AAPL'], [0, 1, 2], 3)
        await storage.write(ds, rows)
        await storage.write(ds, [{ symbol: 'GOOG', timestamp: tms(1, 0), close: 1, volume: 5n }])
        const d = await storage.describe(ds)
        expect(d).not.toBeNull()
        if (!d) return
        expect(d.name).toBe(ds)
        expect(d.schema).toEqual([
          { name: 'symbol', type: 'string' },
          { name: 'timestamp', type: 'timestamp' },
          { name: 'close', type: 'float64' },
          { name: 'volume', type: 'int64' },
        ])
        expect(d.symbols).toEqual(['AAPL', 'GOOG', 'MSFT'])
        expect(d.firstTimestamp).toMatch(/Z$/)
        expect(d.lastTimestamp).toMatch(/Z$/)
        expect(Date.parse(d.firstTimestamp as string)).toBe(tms(0, 0))
        expect(Date.parse(d.lastTimestamp as string)).toBe(tms(2, 2))
        expect(d.rows).toBe(19)
        const expectedParts = new Set(
          [...rows, { symbol: 'GOOG', timestamp: tms(1, 0) }].map((r) =>
            JSON.stringify(partitionValuesOf(r.symbol as string, r.timestamp as number, d.partitionBy)),
          ),
        )
        expect(d.partitions).toBe(expectedParts.size)
        expect(d.files).toBeGreaterThanOrEqual(d.partitions)
        expect(d.bytes).toBeGreaterThan(0)
        const parts = await storage.listPartitions(ds)
        expect(d.bytes).toBe(parts.reduce((s, p) => s + p.bytes, 0))
        expect(d.files).toBe(parts.reduce((s, p) => s + p.files, 0))
        expect(await storage.describe(uniqueDataset('nosuch'))).toBeNull()
      })

      it('listPartitions lists non-empty partitions sorted by path, and filters', async () => {
        const ds = uniqueDataset('parts')
        const rows = bars(['MSFT', 'AAPL', 'EUR/USD'], [0, 1, 2], 2)
        await storage.write(ds, rows)
        const partitionBy = await partitionByOf(ds)
        const parts = await storage.listPartitions(ds)
        const expected = new Map<string, number>()
        for (const r of rows) {
          const k = JSON.stringify(partitionValuesOf(r.symbol as string, r.timestamp as number, partitionBy))
          expected.set(k, (expected.get(k) ?? 0) + 1)
        }
        expect(parts.map((p) => p.path)).toEqual(parts.map((p) => p.path).sort())
        expect(new Set(parts.map((p) => JSON.stringify(p.values)))).toEqual(new Set(expected.keys()))
        for (const p of parts) {
          expect(decodeHivePath(p.path)).toEqual(p.values)
          expect(Object.keys(p.values)).toEqual(partitionBy)
          expect(p.rows).toBe(expected.get(JSON.stringify(p.values)))
          expect(p.version).toBeGreaterThanOrEqual(1)
          expect(p.files).toBeGreaterThanOrEqual(1)
          expect(p.bytes).toBeGreaterThan(0)
          expect(p.firstTimestamp).toMatch(/Z$/)
          expect(p.lastTimestamp).toMatch(/Z$/)
        }
        expect(parts.reduce((s, p) => s + p.rows, 0)).toBe(rows.length)

        // time filter at day boundaries: only partitions whose period overlaps day 1
        const day1 = await storage.listPartitions(ds, { start: midnight(1), end: midnight(2) })
        const day1Expected = new Set(
          rows
            .filter((r) => (r.timestamp as number) >= midnight(1) && (r.timestamp as number) < midnight(2))
            .map((r) => JSON.stringify(partitionValuesOf(r.symbol as string, r.timestamp as number, partitionBy))),
        )
        expect(new Set(day1.map((p) => JSON.stringify(p.values)))).toEqual(day1Expected)
        expect(await storage.listPartitions(ds, { start: tms(9, 0) })).toEqual([])

        if (partitionBy.includes('symbol')) {
          const eur = await storage.listPartitions(ds, { symbols: ['EUR/USD'] })
          expect(eur.length).toBeGreaterThan(0)
          for (const p of eur) {
            expect(p.values.symbol).toBe('EUR/USD')
            expect(p.path).toContain('symbol=EUR%2FUSD')
          }
          expect(await storage.listPartitions(ds, { symbols: ['NOPE'] })).toEqual([])
        }
      })

      it('getManifest by values and by path; version +1 per commit; files carry rows, bytes and sha256', async () => {
        const ds = uniqueDataset('mani')
        await storage.write(ds, [
          { symbol: 'EUR/USD', timestamp: tms(0, 0), close: 1 },
          { symbol: 'EUR/USD', timestamp: tms(0, 1), close: 2 },
        ])
        const [part] = await storage.listPartitions(ds, { symbols: ['EUR/USD'], start: midnight(0), end: midnight(1) })
        expect(part).toBeDefined()
        const byValues = await storage.getManifest(ds, part.values)
        const byPath = await storage.getManifest(ds, part.path)
        expect(byValues).not.toBeNull()
        expect(byPath).toEqual(byValues)
        const m1 = byValues!
        expect(m1.format).toBe('friday.partition-manifest')
        expect(m1.formatVersion).toBe(1)
        expect(m1.dataset).toBe(ds)
        expect(m1.partition).toEqual({ values: part.values, path: part.path })
        expect(m1.version).toBe(1)
        expect(m1.version).toBe(part.version)
        expect(typeof m1.commitId).toBe('string')
        expect(Number.isNaN(Date.parse(m1.committedAt))).toBe(false)
        expect(m1.schema.slice(0, 2)).toEqual([
          { name: 'symbol', type: 'string' },
          { name: 'timestamp', type: 'timestamp' },
        ])
        expect(m1.rows).toBe(2)
        expect(m1.minTs).toBe(us(tms(0, 0)))
        expect(m1.maxTs).toBe(us(tms(0, 1)))
        expect(m1.files.length).toBeGreaterThanOrEqual(1)
        for (const f of m1.files) {
          expect(f.name).toMatch(/^part-[^/]+\.parquet$/)
          expect(f.rows).toBeGreaterThan(0)
          expect(f.bytes).toBeGreaterThan(0)
          expect(f.checksum).toMatch(SHA256)
          expect(f.symbols).toEqual(['EUR/USD'])
          expect(f.minTs).toBeGreaterThanOrEqual(m1.minTs!)
          expect(f.maxTs).toBeLessThanOrEqual(m1.maxTs!)
        }
        expect(m1.files.reduce((s, f) => s + f.rows, 0)).toBe(m1.rows)
        expect(m1.files.reduce((s, f) => s + f.bytes, 0)).toBe(m1.bytes)

        await storage.write(ds, [{ symbol: 'EUR/USD', timestamp: tms(0, 2), close: 3 }])
        const m2 = (await storage.getManifest(ds, part.path))!
        expect(m2.version).toBe(2)
        expect(m2.commitId).not.toBe(m1.commitId)
        expect(m2.rows).toBe(3)
        await storage.write(ds, [{ symbol: 'EUR/USD', timestamp: tms(0, 0), close: 10 }])
        const m3 = (await storage.getManifest(ds, part.values))!
        expect(m3.version).toBe(3)
        expect(m3.rows).toBe(3)
        await storage.delete(ds, { symbols: ['EUR/USD'], start: tms(0, 2) })
        const m4 = (await storage.getManifest(ds, part.values))!
        expect(m4.version).toBe(4)
        expect(m4.rows).toBe(2)
        expect(m4.maxTs).toBe(us(tms(0, 1)))
        expect(new Set([m1, m2, m3, m4].map((m) => m.commitId)).size).toBe(4)

        const partitionBy = await partitionByOf(ds)
        expect(await storage.getManifest(ds, partitionValuesOf('NOPE', tms(400, 0), partitionBy))).toBeNull()
        expect(await storage.getManifest(uniqueDataset('nosuch'), part.values)).toBeNull()
        expect(await storage.getManifest(uniqueDataset('nosuch'), part.path)).toBeNull()
      })

      it('verify() is ok on a healthy store and counts what it checked', async () => {
        const ds = uniqueDataset('verify')
        await storage.write(ds, bars(['AAPL', 'MSFT'], [0, 1], 3))
        await storage.write(ds, bars(['AAPL'], [1, 2], 2))
        const report = await storage.verify(ds)
        expect(report.problems).toEqual([])
        expect(report.ok).toBe(true)
        expect(report.datasets).toBe(1)
        const parts = await storage.listPartitions(ds)
        expect(report.partitions).toBe(parts.length)
        expect(report.files).toBe(parts.reduce((s, p) => s + p.files, 0))
        expect(report.bytes).toBe(parts.reduce((s, p) => s + p.bytes, 0))
        const all = await storage.verify()
        expect(all.ok).toBe(true)
        expect(all.datasets).toBeGreaterThanOrEqual(1)
      })

      it('gc keeps every live file: reads and verify are unchanged after gc with no grace', async () => {
        const ds = uniqueDataset('gclive')
        await storage.write(ds, bars(['AAPL', 'MSFT'], [0, 1], 3))
        await storage.write(
          ds,
          bars(['AAPL'], [0], 2).map((r) => ({ ...r, close: 99 })),
        )
        await storage.write(ds, [{ symbol: 'MSFT', timestamp: tms(1, 0), close: 5 }], { mode: 'replace' })
        await storage.delete(ds, { symbols: ['MSFT'], start: tms(1, 2) })
        const before = rowsOf(await storage.read(ds))
        const dry = await storage.gc({ graceMs: 0, dataset: ds, dryRun: true })
        expect(rowsOf(await storage.read(ds))).toEqual(before)
        const report = await storage.gc({ graceMs: 0, dataset: ds })
        expect(report.filesDeleted).toBe(report.keys.length)
        expect([...report.keys].sort()).toEqual([...dry.keys].sort())
        for (const key of report.keys) expect(key).not.toMatch(/_manifest\.json$/)
        expect(rowsOf(await storage.read(ds))).toEqual(before)
        expect((await storage.verify(ds)).ok).toBe(true)
        expect((await storage.gc({ graceMs: 0, dataset: ds })).filesDeleted).toBe(0)
      })

      it('requestStats counts store requests', async () => {
        const s0 = storage.requestStats()
        for (const k of ['get', 'put', 'head', 'list', 'delete', 'bytesRead', 'bytesWritten'] as const)
          expect(typeof s0[k]).toBe('number')
        const ds = uniqueDataset('stats')
        await storage.write(ds, bars(['AAPL'], [0], 3))
        const s1 = storage.requestStats()
        expect(s1.put).toBeGreaterThan(s0.put)
        expect(s1.bytesWritten).toBeGreaterThan(s0.bytesWritten)
      })
    })

    // -------------------------------------------------------------------------------------------
    describe('concurrency and lifecycle', () => {
      it('8 concurrent upserts into the same partitions keep every key exactly once', async () => {
        const ds = uniqueDataset('conc')
        const writers = 8
        const keyOwners = new Map<string, Set<number>>()
        const batches = Array.from({ length: writers }, (_, w) => {
          const rows: InputRow[] = []
          for (const symbol of ['AAPL', 'MSFT'])
            for (const day of [0, 1])
              for (let m = w; m < w + 10; m++) {
                rows.push({ symbol, timestamp: tms(day, m), close: w })
                const k = `${symbol}\u0001${us(tms(day, m))}`
                if (!keyOwners.has(k)) keyOwners.set(k, new Set())
                keyOwners.get(k)!.add(w)
              }
          return shuffle(rows, w + 1)
        })
        const results = await Promise.all(batches.map((b) => storage.write(ds, b)))
        for (const r of results) expect(r.rowsWritten).toBe(40)
        const t = await storage.read(ds)
        const rows = rowsOf(t)
        expect(t.length).toBe(keyOwners.size)
        expect(new Set(rows.map(keyOf)).size).toBe(rows.length)
        for (const r of rows) {
          const owners = keyOwners.get(keyOf(r))
          expect(owners, keyOf(r)).toBeDefined()
          expect(owners!.has(r.close as number), `${keyOf(r)} = ${r.close}`).toBe(true)
        }
        expect((await storage.describe(ds))?.rows).toBe(keyOwners.size)
        expect((await storage.verify(ds)).ok).toBe(true)
      })

      it('close() makes further calls fail', async () => {
        const other = await opts.create()
        await other.close()
        const err = await rejection(other.read(uniqueDataset('closed')))
        expect(err).toBeInstanceOf(StorageError)
        expect(err.code).toBe('closed')
      })
    })
  })
}
