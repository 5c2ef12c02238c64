/**
 * Leakage-safe training building blocks (issue 6, library part): time splits and walk-forward
 * folds, scalers fitted on training rows only, and missing-value fills that stay within a symbol.
 */

import { describe, expect, it } from 'vitest'
import { ValidationError } from '../src/core/errors.js'
import { BOOL_NULL, type Table } from '../src/core/types.js'
import { chronologicalSplit, fillMissing, Scaler, segmentIds, walkForwardFolds } from '../src/training/index.js'

const H = 3_600_000_000 // one hour in µs

/** A sorted table from (symbol, hour index, x) triples; `null` x is NaN. */
function table(rows: [string, number, number | null][]): Table {
  const n = rows.length
  const ts = new Float64Array(n)
  const x = new Float64Array(n)
  rows.forEach(([, h, v], i) => {
    ts[i] = Number.isNaN(h) ? h : 1_700_000_000_000_000 + h * H
    x[i] = v === null ? Number.NaN : v
  })
  return {
    length: n,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'x', type: 'float64' },
    ],
    columns: {
      symbol: { type: 'string', values: rows.map((r) => r[0]) },
      timestamp: { type: 'timestamp', values: ts },
      x: { type: 'float64', values: x },
    },
  }
}

/** Three symbols over 20 hours with ragged, overlapping coverage. */
function market(): Table {
  const rows: [string, number, number][] = []
  for (let h = 0; h < 20; h++) rows.push(['AAA', h, h])
  for (let h = 3; h < 20; h += 2) rows.push(['BBB', h, 100 + h])
  for (let h = 0; h < 17; h++) if (h % 3 !== 1) rows.push(['CCC', h, 200 + h])
  return table(rows)
}

const tsOf = (t: Table) => t.columns.timestamp.values as Float64Array
const at = (t: Table, rows: Uint32Array) => Array.from(rows, (r) => tsOf(t)[r])
const distinctBetween = (t: Table, lo: number, hi: number) => new Set(Array.from(tsOf(t)).filter((v) => v > lo && v < hi)).size

describe('chronologicalSplit', () => {
  it('orders segments in time across all symbols, keeps the gap, and places every row once', () => {
    const t = market()
    const s = chronologicalSplit(t, { testSize: 0.2, validationSize: 0.15, gap: 2 })
    expect(s.distinctTimestamps).toBe(20)
    expect([s.train.timestamps, s.validation.timestamps, s.test.timestamps]).toEqual([9, 3, 4])
    const train = at(t, s.train.rows)
    const val = at(t, s.validation.rows)
    const test = at(t, s.test.rows)
    expect(Math.max(...train)).toBeLessThan(Math.min(...val))
    expect(Math.max(...val)).toBeLessThan(Math.min(...test))
    expect([Math.max(...train), Math.min(...val), Math.max(...val), Math.min(...test)]).toEqual([
      s.train.end,
      s.validation.start,
      s.validation.end,
      s.test.start,
    ])
    // Exactly `gap` distinct timestamps sit between segments, and their rows are in none.
    expect(distinctBetween(t, s.train.end!, s.validation.start!)).toBe(2)
    expect(distinctBetween(t, s.validation.end!, s.test.start!)).toBe(2)
    const seen = new Uint8Array(t.length)
    for (const seg of [s.train, s.validation, s.test]) {
      for (let i = 0; i < seg.rows.length; i++) {
        seen[seg.rows[i]]++
        if (i > 0) expect(seg.rows[i]).toBeGreaterThan(seg.rows[i - 1])
      }
    }
    let dropped = 0
    for (let i = 0; i < t.length; i++) {
      expect(seen[i]).toBeLessThanOrEqual(1)
      if (!seen[i]) {
        dropped++
        const v = tsOf(t)[i]
        const inGap = (v > s.train.end! && v < s.validation.start!) || (v > s.validation.end! && v < s.test.start!)
        expect(inGap).toBe(true)
      }
    }
    expect(s.rowsDropped).toBe(dropped)
    expect(dropped).toBeGreaterThan(0)
  })

  it('without validation has an empty validation segment and one gap before test', () => {
    const t = market()
    const s = chronologicalSplit(t, { testSize: 0.25, gap: 1 })
    expect(s.validation).toEqual({ rows: new Uint32Array(0), start: null, end: null, timestamps: 0 })
    expect([s.train.timestamps, s.test.timestamps]).toEqual([14, 5])
    expect(distinctBetween(t, s.train.end!, s.test.start!)).toBe(1)
  })

  it('works for one symbol and ignores rows with a null timestamp', () => {
    const t = table([
      ['AAA', 0, 1],
      ['AAA', 1, 2],
      ['AAA', 2, 3],
      ['AAA', 3, 4],
      ['AAA', Number.NaN, 5],
    ])
    const s = chronologicalSplit(t, { testSize: 0.25, validationSize: 0.25 })
    expect([Array.from(s.train.rows), Array.from(s.validation.rows), Array.from(s.test.rows)]).toEqual([[0, 1], [2], [3]])
    expect(s.rowsDropped).toBe(1)
  })

  it('names the empty segment instead of returning one', () => {
    const t = table([
      ['AAA', 0, 1],
      ['AAA', 1, 2],
      ['BBB', 1, 2],
    ])
    expect(() => chronologicalSplit(t, { testSize: 0.5, gap: 1 })).toThrow(/train segment would be empty/)
    expect(() => chronologicalSplit(table([]), { testSize: 0.2 })).toThrow(/train segment would be empty: 0 distinct/)
    expect(() => chronologicalSplit(t, { testSize: 1 })).toThrow(ValidationError)
    expect(() => chronologicalSplit(t, { testSize: 0.5, validationSize: 0.5 })).toThrow(/must be < 1/)
    expect(() => chronologicalSplit(t, { testSize: 0.1, gap: 1.5 })).toThrow(/gap/)
  })
})

describe('walkForwardFolds', () => {
  it('expanding folds: consecutive test blocks, training always before its block by the gap', () => {
    const t = market()
    const folds = walkForwardFolds(t, { folds: 3, gap: 1 })
    expect(folds.map((f) => [f.train.timestamps, f.test.timestamps])).toEqual([
      [4, 5],
      [9, 5],
      [14, 5],
    ])
    const first = tsOf(t).reduce((a, b) => Math.min(a, b))
    for (const [k, f] of folds.entries()) {
      expect(f.train.start).toBe(first)
      expect(Math.max(...at(t, f.train.rows))).toBeLessThan(Math.min(...at(t, f.test.rows)))
      expect(distinctBetween(t, f.train.end!, f.test.start!)).toBe(1)
      if (k > 0) expect(distinctBetween(t, folds[k - 1].test.end!, f.test.start!)).toBe(0)
    }
    expect(folds[2].test.end).toBe(Math.max(...tsOf(t)))
  })

  it('rolling folds keep a fixed training window', () => {
    const folds = walkForwardFolds(market(), { folds: 4, window: 'rolling', trainSize: 6, testSize: 2, gap: 2 })
    expect(folds.map((f) => f.train.timestamps)).toEqual([6, 6, 6, 6])
    for (let k = 1; k < 4; k++) expect(folds[k].train.start!).toBeGreaterThan(folds[k - 1].train.start!)
  })

  it('names what would be empty', () => {
    expect(() => walkForwardFolds(market(), { folds: 5, testSize: 4 })).toThrow(/first fold's train segment would be empty/)
    expect(() => walkForwardFolds(table([['AAA', 0, 1]]), { folds: 2 })).toThrow(/test blocks would be empty/)
  })
})

/** Row-major 2-feature matrix from the market table: x and x² / 100, with some NaN. */
function matrix(t: Table): Float64Array {
  const x = t.columns.x.values as Float64Array
  const X = new Float64Array(t.length * 2)
  for (let i = 0; i < t.length; i++) {
    X[2 * i] = i % 7 === 3 ? Number.NaN : x[i]
    X[2 * i + 1] = (x[i] * x[i]) / 100
  }
  return X
}

function referenceStats(values: number[]) {
  const v = values.filter((a) => !Number.isNaN(a)).sort((a, b) => a - b)
  const mean = v.reduce((a, b) => a + b, 0) / v.length
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length)
  const q = (p: number) => {
    const pos = (v.length - 1) * p
    const lo = Math.floor(pos)
    return v[lo] + (v[Math.ceil(pos)] - v[lo]) * (pos - lo)
  }
  return { mean, std, min: v[0], max: v[v.length - 1], median: q(0.5), iqr: q(0.75) - q(0.25) }
}

describe('Scaler', () => {
  const t = market()
  const split = chronologicalSplit(t, { testSize: 0.2, validationSize: 0.2, gap: 1 })
  const X = matrix(t)

  for (const type of ['standard', 'minmax', 'robust'] as const) {
    it(`${type}: parameters are the training rows' statistics alone`, () => {
      const scaler = Scaler.fit(type, X, 2, { rows: split.train.rows, featureNames: ['x', 'x2'] })
      for (let j = 0; j < 2; j++) {
        const ref = referenceStats(Array.from(split.train.rows, (r) => X[2 * r + j]))
        const [center, scale] =
          type === 'standard' ? [ref.mean, ref.std] : type === 'minmax' ? [ref.min, ref.max - ref.min] : [ref.median, ref.iqr]
        expect(scaler.center[j]).toBeCloseTo(center, 10)
        expect(scaler.scale[j]).toBeCloseTo(scale, 10)
      }
      expect(scaler.counts[0]).toBe(Array.from(split.train.rows).filter((r) => !Number.isNaN(X[2 * r])).length)
      // Changing every non-training row changes nothing.
      const poisoned = X.slice()
      const inTrain = new Set(split.train.rows)
      for (let r = 0; r < t.length; r++) if (!inTrain.has(r)) poisoned.fill(1e9, 2 * r, 2 * r + 2)
      const again = Scaler.fit(type, poisoned, 2, { rows: split.train.rows, featureNames: ['x', 'x2'] })
      expect(again.toJSON()).toEqual(scaler.toJSON())
      // inverseTransform undoes transform; NaN stays NaN.
      const Y = scaler.transform(X)
      const back = scaler.inverseTransform(Y)
      for (let i = 0; i < X.length; i++) {
        if (Number.isNaN(X[i])) expect(Y[i]).toBeNaN()
        else expect(back[i]).toBeCloseTo(X[i], 9)
      }
    })
  }

  it('minmax maps the training range to [0, 1] and robust matches NumPy quantiles', () => {
    const m = Scaler.fit('minmax', Float64Array.of(2, 4, 6, 10), 1)
    expect(Array.from(m.transform(Float64Array.of(2, 10, 6, 14)))).toEqual([0, 1, 0.5, 1.5])
    const r = Scaler.fit('robust', Float64Array.of(10, 1, 3, 2, 4), 1) // np.percentile: 25% 2, 50% 3, 75% 4
    expect([r.center[0], r.scale[0]]).toEqual([3, 2])
  })

  it('round-trips through JSON, including an all-NaN and a constant feature', () => {
    const Z = Float64Array.of(1, Number.NaN, 5, 3, Number.NaN, 5, 8, Number.NaN, 5)
    const scaler = Scaler.fit('standard', Z, 3, { featureNames: ['a', 'empty', 'flat'] })
    const json = JSON.parse(JSON.stringify(scaler))
    expect(json.center[1]).toBeNull()
    expect(json.scale[2]).toBe(1)
    expect(json.counts).toEqual([3, 0, 3])
    const back = Scaler.fromJSON(json)
    expect(back.toJSON()).toEqual(scaler.toJSON())
    expect(Scaler.fromJSON(JSON.stringify(scaler)).featureNames).toEqual(['a', 'empty', 'flat'])
    const probe = Float64Array.of(4, 7, 5)
    const y = back.transform(probe)
    expect(Array.from(y)).toEqual(Array.from(scaler.transform(probe)))
    expect(y[1]).toBeNaN() // no training values: never passes through unscaled
    expect(y[2]).toBe(0)
  })

  it('rejects bad input with the field named', () => {
    expect(() => Scaler.fit('standard', new Float64Array(5), 2)).toThrow(/features/)
    expect(() => Scaler.fit('zscore' as never, new Float64Array(4), 2)).toThrow(/scalerType/)
    expect(() => Scaler.fit('standard', new Float64Array(4), 2, { rows: [2] })).toThrow(/row 2 is outside/)
    const s = Scaler.fit('standard', Float64Array.of(1, 2, 3, 4), 2)
    expect(() => s.transform(new Float64Array(3))).toThrow(/not a multiple/)
    expect(() => Scaler.fromJSON({ ...s.toJSON(), scale: [1] })).toThrow(/scale/)
    expect(() => Scaler.fromJSON({ format: 'other' })).toThrow(ValidationError)
  })
})

describe('fillMissing', () => {
  const xs = (t: Table) => Array.from(t.columns.x.values as Float64Array)

  it('forward fill stays within a symbol', () => {
    const t = table([
      ['AAA', 0, 1],
      ['AAA', 1, null],
      ['AAA', 2, null],
      ['BBB', 0, null],
      ['BBB', 1, 5],
      ['BBB', 2, null],
    ])
    const r = fillMissing(t, { columns: { x: 'ffill' } })
    expect(xs(r.table)).toEqual([1, 1, 1, Number.NaN, 5, 5])
    expect(r.columns.x).toEqual({ method: 'ffill', filled: 3, dropped: 0, remaining: 1 })
    expect(xs(t)[1]).toBeNaN() // input untouched
  })

  it('backward fill stays within a symbol and, given segment ids, within a segment', () => {
    const t = table([
      ['AAA', 0, null],
      ['AAA', 1, 2],
      ['AAA', 2, null],
      ['BBB', 0, null],
      ['BBB', 1, null],
      ['BBB', 2, 7],
    ])
    expect(xs(fillMissing(t, { columns: { x: 'bfill' } }).table)).toEqual([2, 2, Number.NaN, 7, 7, 7])
    const split = chronologicalSplit(t, { testSize: 0.3 }) // hours 0-1 train, hour 2 test
    const within = segmentIds(t.length, split)
    const r = fillMissing(t, { columns: { x: 'bfill' }, within })
    expect(xs(r.table)).toEqual([2, 2, Number.NaN, Number.NaN, Number.NaN, 7]) // no test value reaches a training row
    expect(r.columns.x.remaining).toBe(3)
  })

  it('mean and median come from the training rows only', () => {
    const t = table([
      ['AAA', 0, 1],
      ['AAA', 1, null],
      ['AAA', 2, 2],
      ['AAA', 3, 1000],
      ['BBB', 0, 6],
      ['BBB', 3, null],
    ])
    const split = chronologicalSplit(t, { testSize: 0.25 }) // hour 3 is test
    const mean = fillMissing(t, { columns: { x: 'mean' }, trainRows: split.train.rows })
    expect(mean.columns.x.value).toBe(3) // (1 + 2 + 6) / 3; the test row's 1000 is not used
    expect(xs(mean.table)).toEqual([1, 3, 2, 1000, 6, 3])
    const median = fillMissing(t, { columns: { x: { method: 'median' } }, trainRows: split.train.rows })
    expect(median.columns.x).toEqual({ method: 'median', filled: 2, dropped: 0, remaining: 0, value: 2 })
    expect(() => fillMissing(t, { columns: { x: 'mean' } })).toThrow(/trainRows/)
  })

  it('a training column with no values fills nothing and says so', () => {
    const t = table([
      ['AAA', 0, null],
      ['AAA', 1, null],
      ['AAA', 2, 4],
    ])
    const r = fillMissing(t, { columns: { x: 'mean' }, trainRows: Uint32Array.of(0, 1) })
    expect(r.columns.x).toEqual({ method: 'mean', filled: 0, dropped: 0, remaining: 2, value: null })
  })

  it('drops rows and fills constants, preserving column types', () => {
    const base = table([
      ['AAA', 0, 1],
      ['AAA', 1, null],
      ['BBB', 0, 3],
      ['BBB', 1, 4],
    ])
    const t: Table = {
      ...base,
      schema: [...base.schema, { name: 'n', type: 'int64' }, { name: 'b', type: 'boolean' }, { name: 's', type: 'string' }],
      columns: {
        ...base.columns,
        n: { type: 'int64', values: BigInt64Array.of(1n, 0n, 0n, 4n), nulls: Uint8Array.of(0, 1, 1, 0) },
        b: { type: 'boolean', values: Uint8Array.of(1, BOOL_NULL, 0, BOOL_NULL) },
        s: { type: 'string', values: ['a', null, null, 'd'] },
      },
    }
    const r = fillMissing(t, {
      columns: { x: 'drop', n: { method: 'constant', value: 9n }, b: { method: 'constant', value: false }, s: 'ffill' },
    })
    expect(r.rowsDropped).toBe(1)
    expect(Array.from(r.rowIndex)).toEqual([0, 2, 3])
    expect(r.table.length).toBe(3)
    expect(r.table.columns.n).toEqual({ type: 'int64', values: BigInt64Array.of(1n, 9n, 4n), nulls: new Uint8Array(3) })
    expect(r.table.columns.b).toEqual({ type: 'boolean', values: Uint8Array.of(1, 0, 0) })
    expect(r.table.columns.s.values).toEqual(['a', null, 'd']) // row 1's fill was dropped; BBB's null is not filled from AAA
    expect(r.columns).toEqual({
      x: { method: 'drop', filled: 0, dropped: 1, remaining: 0 },
      n: { method: 'constant', filled: 2, dropped: 0, remaining: 0, value: 9 },
      b: { method: 'constant', filled: 2, dropped: 0, remaining: 0, value: false },
      s: { method: 'ffill', filled: 1, dropped: 0, remaining: 1 },
    })
    expect(() => fillMissing(t, { columns: { s: { method: 'constant', value: 1 } } })).toThrow(/does not fit a string column/)
    expect(() => fillMissing(t, { columns: { s: 'mean' }, trainRows: [0] })).toThrow(/float64 or int64/)
  })

  it('refuses unsorted tables for directional fills, key columns and unknown columns', () => {
    const t = table([
      ['BBB', 0, 1],
      ['AAA', 0, null],
    ])
    expect(() => fillMissing(t, { columns: { x: 'ffill' } })).toThrow(/sorted by \(symbol, timestamp\)/)
    expect(fillMissing(t, { columns: { x: { method: 'constant', value: 0 } } }).columns.x.filled).toBe(1)
    expect(() => fillMissing(t, { columns: { timestamp: 'drop' } })).toThrow(/key columns/)
    expect(() => fillMissing(t, { columns: { y: 'drop' } })).toThrow(/no such column/)
  })
})
