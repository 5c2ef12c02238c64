/**
 * The training library over real storages (local Parquet always, S3 Parquet and PostgreSQL when
 * their servers answer): a small irregular minute-bar dataset is written with `storage.write`,
 * read back with `storage.read`, and every training output is checked against a reference
 * computed here with plain loops (split, gap, embargo, fills, per-symbol targets, label purge,
 * scalers, windows, batches, the streamed path and parallel loading).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresStorage, type PgPoolLike } from '../src/backends/postgres/index.js'
import { createPgPool } from '../src/backends/postgres/node.js'
import { type FieldIssue, NotFoundError, ValidationError } from '../src/core/errors.js'
import type { Column, DataStorage, InputRow, Table } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import {
  type FeatureMatrix,
  getFeatureMatrix,
  getTrainingData,
  loadSymbols,
  type MatrixOptionsInput,
  mulberry32,
  openTrainingStream,
  rowBatches,
  Scaler,
  type ScalerType,
  type StreamBatch,
  sequenceWindows,
  walkForwardMatrices,
  windowBatches,
} from '../src/training/index.js'
import { rowsOf, uniqueDataset } from './conformance/storage.case.js'
import { requirePostgresOrSkip } from './helpers/postgres.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection } from './helpers/s3.js'

// ---------------------------------------------------------------------------------------------
// Backends: one factory each, like test/lake-s3.test.ts and test/postgres.test.ts

const s3 = await requireS3OrSkip()
const pgServer = await requirePostgresOrSkip()
const pgPool = pgServer ? createPgPool(pgServer.url, { max: 10 }) : null
const RUN = Math.random().toString(36).slice(2, 8)
const PG_SCHEMA = `friday_t_${RUN}_training`
const BUCKET = `friday-training-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
const dirs: string[] = []

const BACKENDS: { name: string; create: () => Promise<DataStorage>; skip: false | string }[] = [
  {
    name: 'local_parquet',
    skip: false,
    create: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'friday-training-'))
      dirs.push(dir)
      return createStorage({ storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } }, {})
    },
  },
  {
    name: 's3_parquet',
    skip: s3 ? false : 'no S3 endpoint reachable',
    create: async () =>
      createStorage(
        {
          storage: {
            default_backend: 's3_parquet',
            s3_parquet: s3ParquetSection(s3!, BUCKET),
          },
        },
        {},
      ),
  },
  {
    name: 'postgres',
    skip: pgServer ? false : 'no PostgreSQL (set DATABASE_URL or install PostgreSQL)',
    create: async () => createPostgresStorage({ pool: pgPool as PgPoolLike, schema: PG_SCHEMA }),
  },
]
for (const b of BACKENDS) if (b.skip) console.warn(`[skipped] training over ${b.name}: ${b.skip}`)

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
  if (s3) await deleteTestBucket(s3, BUCKET)
  if (pgPool) {
    await pgPool.query(`DROP SCHEMA IF EXISTS "${PG_SCHEMA}" CASCADE`)
    await pgPool.end()
  }
  await pgServer?.stop()
})

// ---------------------------------------------------------------------------------------------
// The dataset and the options every test shares

const MIN_MS = 60_000
const DAY_MS = 86_400_000
const T0 = Date.UTC(2024, 0, 1, 13, 0) // session start, day 0
const SESSION = 360 // minute bars per day
const at = (day: number, minute: number) => (T0 + day * DAY_MS + minute * MIN_MS) * 1000 // epoch µs
/** CCC has no bars on day 2 from minute 100 to 219. */
const STRETCH = { from: at(2, 100), to: at(2, 219) }

const FEATURES = ['open', 'close', 'volume']
const TARGET = { kind: 'returns', column: 'close', horizon: 3 } as const
const SPLIT = { testSize: 0.2, validationSize: 0.15, gap: 5, embargo: 10 * MIN_MS }
const BASE = { features: FEATURES, target: TARGET, ...SPLIT }

describe.each(BACKENDS)('training over $name', ({ create, skip }) => {
  describe.skipIf(Boolean(skip))('getTrainingData, getFeatureMatrix, windows, batches, streams', () => {
    let storage: DataStorage
    let ds: string
    let raw: Table // storage.read(ds): what every reference is computed from
    const cache = new Map<string, Promise<FeatureMatrix>>()
    const matrix = (o: Partial<MatrixOptionsInput> = {}) => {
      const key = JSON.stringify(o)
      if (!cache.has(key)) cache.set(key, getFeatureMatrix(storage, { dataset: ds, ...BASE, ...o }))
      return cache.get(key)!
    }

    beforeAll(async () => {
      storage = await create()
      ds = uniqueDataset('training')
      const rows = makeRows()
      await storage.write(ds, rows)
      raw = await storage.read(ds)
      expect(raw.length).toBe(rows.length)
    })
    afterAll(async () => {
      await storage?.close()
    })

    it('splits without leakage: order, gap, embargo, label purge, per-symbol returns', async () => {
      const ref = refPrepare(raw, {})
      const td = await getTrainingData(storage, { dataset: ds, ...BASE })
      const m = await matrix({ dtype: 'float64' })
      const tsOf = (t: Table) => Array.from(t.columns.timestamp.values as Float64Array)
      const segTs = [tsOf(td.train), tsOf(td.validation), tsOf(td.test)]
      const mTs = (['train', 'validation', 'test'] as const).map((s) => {
        const { offset, rows } = m.segments[s]
        return Array.from(m.timestamps.subarray(offset, offset + rows))
      })
      for (const parts of [segTs, mTs]) {
        const [tr, va, te] = parts.map((p) => [Math.min(...p), Math.max(...p)])
        expect(va[0]).toBeGreaterThan(tr[1])
        expect(te[0]).toBeGreaterThan(va[1])
        const distinct = [...new Set(raw.columns.timestamp.values as Float64Array)]
        const between = (lo: number, hi: number) => distinct.filter((t) => t > lo && t < hi).length
        expect(between(tr[1], va[0])).toBeGreaterThanOrEqual(SPLIT.gap)
        expect(between(va[1], te[0])).toBeGreaterThanOrEqual(SPLIT.gap)
        expect(va[0]).toBeGreaterThan(tr[1] + SPLIT.embargo * 1000)
        // the embargo counts from the split boundary, not from the last surviving training row
        expect(va[0]).toBeGreaterThan(ref.boundaries[0] + SPLIT.embargo * 1000)
      }
      expect(segTs).toEqual(ref.segments.map((rows) => rows.map((r) => r.ts)))
      // purge: every label lies inside its own segment (up to the segment's last timestamp in the split), after its row
      for (const [k, s] of (['train', 'validation', 'test'] as const).entries()) {
        const { offset, rows } = m.segments[s]
        const last = ref.boundaries[k]
        for (let i = offset; i < offset + rows; i++) {
          expect(m.labelTs[i]).toBeLessThanOrEqual(last)
          expect(m.labelTs[i]).toBeGreaterThan(m.timestamps[i])
        }
      }
      // returns_3 from the same symbol's bar 3 rows ahead in storage.read order, never another symbol's
      const sym = raw.columns.symbol.values as string[]
      const ts = raw.columns.timestamp.values as Float64Array
      const close = raw.columns.close.values as Float64Array
      const rowOf = new Map(Array.from(ts, (t, i) => [`${sym[i]}|${t}`, i]))
      for (let i = 0; i < m.shape[0]; i++) {
        const r = rowOf.get(`${m.symbols[m.symbolIndex[i]]}|${m.timestamps[i]}`)!
        expect(sym[r + 3]).toBe(sym[r])
        expect(m.labelTs[i]).toBe(ts[r + 3])
        expect(m.y[i]).toBe(close[r + 3] / close[r] - 1)
      }
      expect(td.target).toBe('returns_3')
      expect(Array.from(td.train.columns.returns_3.values as Float64Array)).toEqual(ref.segments[0].map((r) => r.y))
      expect(td.report.dropped).toEqual(ref.dropped)
      expect(ref.dropped.embargo).toBeGreaterThan(0)
      expect(ref.dropped.purged).toBeGreaterThan(0)
    })

    it.each(['expanding', 'rolling'] as const)(
      'walk-forward folds (%s): each fold is its own split, with its own fills, purge and scaler',
      async (window) => {
        const folds = 3
        const rollingSize = 300
        const fill = { volume: 'mean' } as const
        const wf = await walkForwardMatrices(storage, {
          dataset: ds,
          features: FEATURES,
          target: TARGET,
          folds,
          window,
          gap: SPLIT.gap,
          embargo: SPLIT.embargo,
          fill,
          dtype: 'float64',
          ...(window === 'rolling' ? { trainSize: rollingSize } : {}),
        })
        const distinct = [...new Set(raw.columns.timestamp.values as Float64Array)].sort((a, b) => a - b)
        const d = distinct.length
        const size = Math.floor(d / (folds + 1))
        expect(wf.folds).toBe(folds)
        expect(wf.distinctTimestamps).toBe(d)
        let k = 0
        let previousTestEnd = Number.NEGATIVE_INFINITY
        for (const m of wf.matrices()) {
          const testLo = d - folds * size + k * size
          const trainHi = testLo - SPLIT.gap
          const trainLo = window === 'rolling' ? Math.max(0, trainHi - rollingSize) : 0
          const ref = refPrepare(raw, fill, [
            [trainLo, trainHi],
            [trainHi, trainHi],
            [testLo, testLo + size],
          ])
          expect(m.fold).toBe(k)
          expect(m.segments.validation.rows).toBe(0)
          const segTs = (s: 'train' | 'test') => {
            const { offset, rows } = m.segments[s]
            return Array.from(m.timestamps.subarray(offset, offset + rows))
          }
          const train = segTs('train')
          const test = segTs('test')
          expect(train).toEqual(pick(ref.segments[0], 'ts'))
          expect(test).toEqual(pick(ref.segments[2], 'ts'))
          expect(Array.from(m.segments.test.y)).toEqual(pick(ref.segments[2], 'y'))
          // time order, gap and embargo; test blocks follow one another; a rolling window starts late
          const trainMax = Math.max(...train)
          const testMin = Math.min(...test)
          expect(testMin).toBeGreaterThan(trainMax + SPLIT.embargo * 1000)
          expect(distinct.filter((t) => t > trainMax && t < testMin).length).toBeGreaterThanOrEqual(SPLIT.gap)
          expect(testMin).toBeGreaterThan(previousTestEnd)
          previousTestEnd = Math.max(...test)
          expect(Math.min(...train)).toBeGreaterThanOrEqual(distinct[trainLo])
          if (window === 'rolling') expect(ref.dropped.outside).toBeGreaterThan(0)
          // no training label looks past the fold's training block
          expect(Math.max(...m.labelTs.subarray(0, m.segments.train.rows))).toBeLessThanOrEqual(distinct[trainHi - 1])
          // the scaler and the fill statistic come from this fold's training rows alone
          FEATURES.forEach((f, j) => {
            const st = refStats('standard', pick(ref.segments[0], f))
            expect(relDiff(m.scaler!.center[j], st.center), `fold ${k} ${f} center`).toBeLessThanOrEqual(1e-12)
            expect(relDiff(m.scaler!.scale[j], st.scale), `fold ${k} ${f} scale`).toBeLessThanOrEqual(1e-12)
          })
          expect(m.report.fill.volume.value).toBe(ref.fill.volume.value)
          expect(m.report.dropped).toEqual(ref.dropped)
          k++
        }
        expect(k).toBe(folds)
      },
    )

    it('walk-forward folds that do not fit the data are refused, naming the field', async () => {
      const base = { dataset: ds, features: FEATURES, target: TARGET }
      expect(await issuesOf(walkForwardMatrices(storage, { ...base, folds: 5, foldSize: 400 }))).toEqual([
        expect.objectContaining({ field: 'folds' }),
      ])
      expect(await issuesOf(walkForwardMatrices(storage, { ...base, folds: 0 }))).toEqual([
        expect.objectContaining({ field: 'folds' }),
      ])
      expect(await issuesOf(walkForwardMatrices(storage, { ...base, folds: 2, testSize: 0.2 } as never))).toEqual([
        expect.objectContaining({ field: 'testSize', message: 'unknown field' }),
      ])
    })

    it.each(['standard', 'minmax', 'robust'] as ScalerType[])('fits the %s scaler on training rows only', async (type) => {
      const m = await matrix({ scalerType: type, dtype: 'float64' })
      const ref = refPrepare(raw, {})
      const all = ref.segments.flat()
      const scaler = m.scaler!
      FEATURES.forEach((f, j) => {
        const train = refStats(type, pick(ref.segments[0], f))
        const everything = refStats(type, pick(all, f))
        expect(relDiff(scaler.center[j], train.center), `${f} center`).toBeLessThanOrEqual(1e-12)
        expect(relDiff(scaler.scale[j], train.scale), `${f} scale`).toBeLessThanOrEqual(1e-12)
        const apart = Math.max(relDiff(train.center, everything.center), relDiff(train.scale, everything.scale))
        expect(apart, `${f}: train and all-row statistics must differ for this test to mean anything`).toBeGreaterThan(1e-4)
      })
      const x = Float64Array.from(all.flatMap((r) => FEATURES.map((f) => r.values[f])))
      const again = Scaler.fromJSON(JSON.parse(JSON.stringify(scaler)))
      expectArrays(again.transform(x), scaler.transform(x), 'transform after JSON')
      expectArrays(scaler.inverseTransform(scaler.transform(x)), x, 'inverse(transform(x))', 1e-12)
    })

    it.each(['float64', 'float32'] as const)('builds X and y exactly (%s)', async (dtype) => {
      const m = await matrix(dtype === 'float64' ? { dtype } : {})
      expect(m.X).toBeInstanceOf(dtype === 'float64' ? Float64Array : Float32Array)
      const ref = refPrepare(raw, {}).segments.flat() // train | validation | test, each (symbol, timestamp)
      const { center, scale } = m.scaler!
      const round = dtype === 'float64' ? (v: number) => v : Math.fround
      const X = ref.flatMap((r) => FEATURES.map((f, j) => round((r.values[f] - center[j]) / scale[j])))
      expect(m.shape).toEqual([ref.length, FEATURES.length])
      expectArrays(m.X, X, 'X')
      expectArrays(m.y, pick(ref, 'y').map(round), 'y')
      expectArrays(m.timestamps, pick(ref, 'ts'), 'timestamps')
      expect(Array.from(m.symbolIndex, (k) => m.symbols[k])).toEqual(ref.map((r) => r.symbol))
      expect(m.segments.validation.X.buffer).toBe(m.X.buffer)
    })

    it.each([
      { open: 'mean', volume: 'median', close: 'ffill' },
      { open: 'median', volume: 'ffill', close: 'drop' },
      { open: 'ffill', volume: 'mean' },
    ] as Record<string, 'ffill' | 'mean' | 'median' | 'drop'>[])(
      'fills %o within symbol and segment, with training statistics',
      async (fill) => {
        const td = await getTrainingData(storage, { dataset: ds, ...BASE, fill })
        const ref = refPrepare(raw, fill)
        const parts = [td.train, td.validation, td.test]
        parts.forEach((t, s) => {
          expect(t.schema).toEqual([
            { name: 'symbol', type: 'string' },
            { name: 'timestamp', type: 'timestamp' },
            { name: 'open', type: 'float64' },
            { name: 'close', type: 'float64' },
            { name: 'volume', type: 'int64' },
            { name: 'returns_3', type: 'float64' },
          ])
          expect(t.columns.symbol.values).toEqual(ref.segments[s].map((r) => r.symbol))
          for (const f of FEATURES) expectArrays(numbers(t.columns[f]), pick(ref.segments[s], f), `${f} (${s})`)
          expectArrays(numbers(t.columns.returns_3), pick(ref.segments[s], 'y'), `target (${s})`)
        })
        for (const [col, method] of Object.entries(fill)) {
          const rep = td.report.fill[col]
          const want = ref.fill[col]
          expect({ method: rep.method, filled: rep.filled, dropped: rep.dropped }).toEqual({ method, ...want.counts })
          if (method === 'mean' || method === 'median') {
            expect(rep.value).toBe(want.value)
            expect(want.value, 'the statistic over all rows differs').not.toBe(want.allRowsValue)
          }
          if (method === 'ffill') {
            // a null at the start of a (symbol, segment) run stays null: it is not filled from the
            // previous symbol or segment
            expect(want.leadingNulls, 'the data has nulls at run starts').toBeGreaterThan(0)
            expect(rep.remaining).toBeGreaterThanOrEqual(want.leadingNulls)
          }
          expect(rep.remaining).toBe(want.remaining)
          if (method === 'drop') expect(td.report.dropped.fill).toBe(want.counts.dropped)
        }
      },
    )

    it('cuts sequence windows inside one symbol, one segment and one run of bars', async () => {
      const m = await matrix()
      const options = { lookback: 10, stride: 3, maxGap: 60_000 }
      const w = sequenceWindows(m, options)
      const ref = refPrepare(raw, {})
      const expected = refWindows(ref.segments, options, TARGET.horizon)
      const F = FEATURES.length
      let offset = 0
      for (const [s, name] of (['train', 'validation', 'test'] as const).entries()) {
        const win = w[name]
        const seg = m.segments[name]
        expect(Array.from(win.starts)).toEqual(expected[s].map((k) => offset + k))
        expect(win.count).toBeGreaterThan(10)
        for (let i = 0; i < win.count; i++) {
          const first = win.starts[i]
          const last = first + options.lookback - 1
          expect(first).toBeGreaterThanOrEqual(seg.offset)
          expect(last).toBeLessThan(seg.offset + seg.rows)
          expect(m.symbolIndex[first]).toBe(m.symbolIndex[last])
          for (let r = first + 1; r <= last; r++) expect(m.timestamps[r] - m.timestamps[r - 1]).toBeLessThanOrEqual(60_000_000)
          const spans = m.symbols[m.symbolIndex[first]] === 'CCC' && m.timestamps[first] < STRETCH.from
          expect(spans && m.timestamps[last] > STRETCH.to).toBe(false)
          const view = win.window(i)
          expect(view.buffer).toBe(m.X.buffer)
          expectArrays(view, m.X.subarray(first * F, (last + 1) * F), `window ${i}`)
          expect(win.targets[i]).toBe(m.y[last])
        }
        const all = win.materialize()
        expect(all.length).toBe(win.count * options.lookback * F)
        for (let i = 0; i < win.count; i++)
          expectArrays(all.subarray(i * options.lookback * F, (i + 1) * options.lookback * F), win.window(i), `materialized ${i}`)
        offset += ref.segments[s].length
      }
      // CCC has windows on day 2 on both sides of its missing stretch, none across it
      const ccc = m.symbols.indexOf('CCC')
      const ends = Array.from(w.train.endTimestamps).filter((_, i) => w.train.symbolIndex[i] === ccc)
      expect(ends.some((t) => t < STRETCH.from && t > at(2, 0))).toBe(true)
      expect(ends.some((t) => t > STRETCH.to && t < at(3, 0))).toBe(true)
    })

    it('batches rows and windows reproducibly, each item once per epoch, within the segment given', async () => {
      const m = await matrix()
      const F = FEATURES.length
      const order = (it: Iterable<{ indices: Uint32Array }>) => [...it].flatMap((b) => Array.from(b.indices))
      const train = m.segments.train
      const a = order(rowBatches(train, F, { batchSize: 64, shuffle: true, seed: 7 }))
      expect(order(rowBatches(train, F, { batchSize: 64, shuffle: true, seed: 7 }))).toEqual(a)
      expect(order(rowBatches(train, F, { batchSize: 64, shuffle: true, seed: 8 }))).not.toEqual(a)
      expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: train.rows }, (_, i) => i))
      expect(a).not.toEqual([...a].sort((x, y) => x - y))
      const dropped = [...rowBatches(train, F, { batchSize: 64, shuffle: true, seed: 7, dropLast: true })]
      expect(dropped.length).toBe(Math.floor(train.rows / 64))
      expect(dropped.every((b) => b.shape[0] === 64)).toBe(true)
      // a shuffled validation epoch holds validation rows only
      const val = m.segments.validation
      for (const b of rowBatches(val, F, { batchSize: 50, shuffle: true, seed: 1 })) {
        b.indices.forEach((r, k) => {
          expect(r).toBeLessThan(val.rows)
          expectArrays(b.X.subarray(k * F, k * F + F), m.X.subarray((val.offset + r) * F, (val.offset + r + 1) * F), 'row')
          expect(b.y[k]).toBe(m.y[val.offset + r])
        })
      }
      const w = sequenceWindows(m, { lookback: 10, stride: 3, maxGap: 60_000 }).train
      const wo = order(windowBatches(w, { batchSize: 32, shuffle: true, seed: 5 }))
      expect(order(windowBatches(w, { batchSize: 32, shuffle: true, seed: 5 }))).toEqual(wo)
      expect(order(windowBatches(w, { batchSize: 32, shuffle: true, seed: 6 }))).not.toEqual(wo)
      expect([...wo].sort((x, y) => x - y)).toEqual(Array.from({ length: w.count }, (_, i) => i))
      const size = 10 * F
      const wb = [...windowBatches(w, { batchSize: 32, shuffle: true, seed: 5, dropLast: true })]
      expect(wb.length).toBe(Math.floor(w.count / 32))
      for (const b of wb) {
        expect(b.shape).toEqual([32, 10, F])
        b.indices.forEach((i, k) => {
          expectArrays(b.X.subarray(k * size, (k + 1) * size), w.window(i), `batch window ${i}`)
          expect(b.y[k]).toBe(w.targets[i])
        })
      }
    })

    it('streams the same rows as the matrix, in the same order', async () => {
      const o = { ...BASE, dtype: 'float64' as const, fill: { open: 'ffill', volume: 'mean' } as const }
      const m = await matrix({ dtype: 'float64', fill: o.fill })
      const stream = await openTrainingStream(storage, { dataset: ds, ...o, scanBatchSize: 257 })
      FEATURES.forEach((f, j) => {
        expect(relDiff(stream.scaler!.center[j], m.scaler!.center[j]), `${f} center`).toBeLessThanOrEqual(1e-9)
        expect(relDiff(stream.scaler!.scale[j], m.scaler!.scale[j]), `${f} scale`).toBeLessThanOrEqual(1e-9)
      })
      for (const name of ['train', 'validation', 'test'] as const) {
        const got = await collect(stream.batches(name, { batchSize: 100 }))
        const seg = m.segments[name]
        expect(got.batches.every((b, i) => b.rows === 100 || i === got.batches.length - 1)).toBe(true)
        expectArrays(got.ts, m.timestamps.subarray(seg.offset, seg.offset + seg.rows), `${name} timestamps`)
        expect(got.sym.map((k) => stream.symbols[k])).toEqual(
          Array.from(m.symbolIndex.subarray(seg.offset, seg.offset + seg.rows), (k) => m.symbols[k]),
        )
        expectArrays(got.y, seg.y, `${name} y`)
        expectArrays(got.X, seg.X, `${name} X`, 1e-9)
      }
      const plain = await collect(stream.batches('train', { batchSize: 100 }))
      const shuffled = await collect(stream.batches('train', { batchSize: 100, shuffle: true, seed: 11 }))
      const small = await collect(stream.batches('train', { batchSize: 100, shuffle: true, seed: 11, shuffleBuffer: 300 }))
      expect((await collect(stream.batches('train', { batchSize: 100, shuffle: true, seed: 11 }))).keys).toEqual(shuffled.keys)
      expect((await collect(stream.batches('train', { batchSize: 100, shuffle: true, seed: 12 }))).keys).not.toEqual(
        shuffled.keys,
      )
      expect(shuffled.keys).not.toEqual(plain.keys)
      expect([...shuffled.keys].sort()).toEqual([...plain.keys].sort())
      expect([...small.keys].sort()).toEqual([...plain.keys].sort())

      const fieldsOf = async (p: Promise<unknown>) => (await issuesOf(p)).map((i) => i.field)
      const drain = async (it: AsyncIterable<unknown>) => {
        for await (const _ of it);
      }
      expect(await fieldsOf(drain(stream.batches('validation', { batchSize: 10, shuffle: true })))).toEqual(['shuffle'])
      expect(await fieldsOf(openTrainingStream(storage, { dataset: ds, ...BASE, scalerType: 'robust' }))).toEqual(['scalerType'])
      expect(await fieldsOf(openTrainingStream(storage, { dataset: ds, ...BASE, fill: { close: 'bfill' } }))).toEqual([
        'fill.close',
      ])
      const other = Scaler.fit('standard', Float64Array.from([1, 2, 3, 4, 5, 6]), 3, {
        featureNames: ['close', 'open', 'volume'],
      })
      expect(await fieldsOf(openTrainingStream(storage, { dataset: ds, ...BASE, scaler: other }))).toEqual(['scaler'])
      // a robust scaler fitted in memory can be passed in
      const robust = await matrix({ scalerType: 'robust', dtype: 'float64' })
      const rs = await openTrainingStream(storage, { dataset: ds, ...BASE, dtype: 'float64', scaler: robust.scaler!.toJSON() })
      const r = await collect(rs.batches('test', { batchSize: 100 }))
      expectArrays(r.X, robust.segments.test.X, 'robust-scaled test X')
    })

    it('loads symbols in parallel, at most `concurrency` reads at once, exactly like one read', async () => {
      const symbols = ['AAA', 'BBB', 'CCC']
      const counted = countingReads(storage)
      const t = await loadSymbols(counted.storage, ds, { symbols, concurrency: 2 })
      const direct = await storage.read(ds, { symbols })
      expect(t.schema).toEqual(direct.schema)
      expect(rowsOf(t)).toEqual(rowsOf(direct))
      expect(counted.counts).toMatchObject({ calls: 3, maxInFlight: 2 })
      const one = countingReads(storage)
      await getTrainingData(one.storage, { dataset: ds, ...BASE, symbols, concurrency: 1 })
      expect(one.counts).toMatchObject({ calls: 3, maxInFlight: 1 })
      // Without a symbol list: one read of everything, the backend's own parallelism.
      const all = countingReads(storage)
      const whole = await getTrainingData(all.storage, { dataset: ds, ...BASE })
      expect(all.counts).toMatchObject({ calls: 1 })
      expect(whole.report.symbols).toEqual([...symbols].sort())
    })

    it('rejects bad options with errors naming the field', async () => {
      const fields = async (o: Record<string, unknown>) =>
        (await issuesOf(getFeatureMatrix(storage, { dataset: ds, ...BASE, ...o } as never))).map((i) => i.field)
      expect(await fields({ features: ['open', 'nope'] })).toEqual(['features[1]'])
      expect(await fields({ features: ['close', 'venue'] })).toEqual(['features[1]'])
      expect(await fields({ target: { kind: 'returns', column: 'nope', horizon: 3 } })).toEqual(['target.column'])
      expect(await fields({ target: 'nope' })).toEqual(['target'])
      expect(await fields({ testSize: 1 })).toEqual(['testSize'])
      expect(await fields({ testSize: 0.6, validationSize: 0.4 })).toEqual(['testSize'])
      expect(await issuesOf(getTrainingData(storage, { dataset: ds, ...BASE, features: ['venue'] }))).toMatchObject([
        { field: 'features[0]', message: expect.stringContaining('string') },
      ])
      // The stream checks columns before any storage pass, with the same fields.
      for (const features of [
        ['open', 'nope'],
        ['close', 'venue'],
      ]) {
        const stream = openTrainingStream(storage, { dataset: ds, ...BASE, features, normalize: false })
        expect((await issuesOf(stream)).map((i) => i.field)).toEqual(['features[1]'])
      }
      const missing = uniqueDataset('nothing')
      await expect(getFeatureMatrix(storage, { dataset: missing, ...BASE })).rejects.toBeInstanceOf(NotFoundError)
      await expect(getTrainingData(storage, { dataset: missing, ...BASE })).rejects.toBeInstanceOf(NotFoundError)
      await expect(openTrainingStream(storage, { dataset: missing, ...BASE })).rejects.toBeInstanceOf(NotFoundError)
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Data and reference computations

/**
 * Three symbols of minute bars over 5 UTC days (360 bars a day): AAA complete until it stops on
 * day 2 minute 300 (inside the training segment, where BBB starts: a symbol change with no
 * segment change); BBB from day 1 minute 180, with ~3% of bars missing; CCC complete but for
 * day 2 minutes 100-219. A few null opens, closes and volumes, also at the start of symbols and
 * of the validation and test segments.
 */
function makeRows(): InputRow[] {
  const rand = mulberry32(20240101)
  const rows: InputRow[] = []
  const nullAt = new Set(['BBB|3|90', 'CCC|3|90', 'CCC|4|0', 'BBB|4|0'])
  const nullCloseAt = new Set(['BBB|3|90', 'CCC|4|0'])
  for (const [k, symbol] of ['AAA', 'BBB', 'CCC'].entries()) {
    let price = 100 * (k + 1)
    const first = rows.length
    for (let day = 0; day < 5; day++) {
      for (let m = 0; m < SESSION; m++) {
        price *= Math.exp(0.0004 + 0.004 * (rand() - 0.5)) // an upward drift: later segments look different
        const skipped = rand() < 0.03
        if (symbol === 'AAA' && (day > 2 || (day === 2 && m >= 300))) continue
        if (symbol === 'BBB' && (day === 0 || (day === 1 && m < 180) || skipped)) continue
        if (symbol === 'CCC' && day === 2 && m >= 100 && m < 220) continue
        const key = `${symbol}|${day}|${m}`
        const forced = nullAt.has(key) || rows.length === first // and the symbol's first bar
        rows.push({
          symbol,
          timestamp: T0 + day * DAY_MS + m * MIN_MS,
          open: forced || rand() < 0.01 ? null : Math.round(price * (1 + 0.002 * (rand() - 0.5)) * 1e4) / 1e4,
          close: nullCloseAt.has(key) || rand() < 0.005 ? null : price,
          volume: forced || rand() < 0.02 ? null : BigInt(1000 + 200 * day + Math.floor(500 * rand())),
          venue: rand() < 0.5 ? 'XNAS' : 'XNYS',
        })
      }
    }
  }
  return rows
}

type RefFill = Record<string, 'ffill' | 'mean' | 'median' | 'drop'>
interface RefRow {
  symbol: string
  ts: number
  /** -1: in a gap or the embargo. */
  seg: number
  values: Record<string, number>
  y: number
  labelTs: number
}
interface Ref {
  /** Rows per segment (train, validation, test), each in (symbol, timestamp) order. */
  segments: RefRow[][]
  /** Last timestamp of the train, validation and test blocks of the split. */
  boundaries: number[]
  dropped: { gap: number; outside: number; embargo: number; purged: number; missingTarget: number; fill: number }
  fill: Record<
    string,
    {
      counts: { filled: number; dropped: number }
      value?: number
      allRowsValue?: number
      /** Nulls left in the kept rows, and how many of them start a (symbol, segment) run. */
      remaining: number
      leadingNulls: number
    }
  >
}

/** The leakage-safe preparation written out plainly, on `storage.read` rows, for `BASE` options. */
/**
 * `ranges`: each segment's `[lo, hi)` in the sorted distinct timestamps (a walk-forward fold);
 * by default the chronological split of SPLIT. Embargo: after the previous non-empty segment.
 */
function refPrepare(raw: Table, fill: RefFill, ranges?: [number, number][]): Ref {
  const sym = raw.columns.symbol.values as string[]
  const ts = raw.columns.timestamp.values as Float64Array
  const int64 = new Set(raw.schema.filter((c) => c.type === 'int64').map((c) => c.name))
  let rows: RefRow[] = Array.from(ts, (t, i) => ({
    symbol: sym[i],
    ts: t,
    seg: -1,
    values: Object.fromEntries(FEATURES.map((f) => [f, numbers(raw.columns[f])[i]])),
    y: Number.NaN,
    labelTs: Number.NaN,
  }))
  // split on distinct timestamps; sizes rounded up; training takes the rest
  const distinct = [...new Set(ts)].sort((a, b) => a - b)
  const d = distinct.length
  if (!ranges) {
    const nTest = Math.ceil(d * SPLIT.testSize - 1e-9)
    const nVal = Math.ceil(d * SPLIT.validationSize - 1e-9)
    const nTrain = d - nTest - nVal - 2 * SPLIT.gap
    const valLo = nTrain + SPLIT.gap
    const testLo = valLo + nVal + SPLIT.gap
    ranges = [
      [0, nTrain],
      [valLo, valLo + nVal],
      [testLo, d],
    ]
  }
  const index = new Map(distinct.map((t, i) => [t, i]))
  const boundaries = ranges.map(([lo, hi]) => (hi > lo ? distinct[hi - 1] : Number.NaN))
  const dropped = { gap: 0, outside: 0, embargo: 0, purged: 0, missingTarget: 0, fill: 0 }
  const first = ranges[0][0]
  const last = Math.max(...ranges.filter(([lo, hi]) => hi > lo).map(([, hi]) => hi))
  for (const r of rows) {
    const i = index.get(r.ts)!
    r.seg = ranges.findIndex(([lo, hi]) => i >= lo && i < hi)
    const prev = r.seg === 2 && Number.isNaN(boundaries[1]) ? boundaries[0] : boundaries[r.seg - 1]
    if (r.seg === -1) {
      if (i < first || i >= last) dropped.outside++
      else dropped.gap++
    } else if (r.seg > 0 && r.ts <= prev + SPLIT.embargo * 1000) {
      r.seg = -1
      dropped.embargo++
    }
  }
  // fills: statistics from training rows; forward fill within runs of one symbol and one segment
  const out: Ref['fill'] = {}
  const drop = new Set<RefRow>()
  const leading = new Map<string, Set<RefRow>>()
  for (const [col, method] of Object.entries(fill)) {
    const before = rows.map((r) => r.values[col])
    const counts = { filled: 0, dropped: 0 }
    const leadingNulls = new Set<RefRow>()
    const trainValues = rows.flatMap((r, i) => (r.seg === 0 && !Number.isNaN(before[i]) ? [before[i]] : []))
    const allValues = before.filter((v) => !Number.isNaN(v))
    const statistic = (v: number[]) => {
      const s = method === 'mean' ? v.reduce((a, b) => a + b, 0) / v.length : quantile(v, 0.5)
      return int64.has(col) ? Math.round(s) : s
    }
    const value = method === 'mean' || method === 'median' ? statistic(trainValues) : Number.NaN
    rows.forEach((r, i) => {
      if (!Number.isNaN(before[i])) return
      const runStart = i === 0 || rows[i - 1].symbol !== r.symbol || rows[i - 1].seg !== r.seg
      if (method === 'ffill') {
        if (runStart) leadingNulls.add(r)
        else if (!Number.isNaN(rows[i - 1].values[col])) {
          r.values[col] = rows[i - 1].values[col]
          counts.filled++
        }
      } else if (method === 'drop') {
        drop.add(r)
        counts.dropped++
      } else {
        r.values[col] = value
        counts.filled++
      }
    })
    out[col] = { counts, remaining: 0, leadingNulls: 0 }
    leading.set(col, leadingNulls)
    if (method === 'mean' || method === 'median') {
      out[col].value = value
      out[col].allRowsValue = statistic(allValues)
    }
  }
  dropped.fill = drop.size
  rows = rows.filter((r) => !drop.has(r))
  for (const col of Object.keys(fill)) {
    out[col].remaining = rows.filter((r) => Number.isNaN(r.values[col])).length
    out[col].leadingNulls = rows.filter((r) => leading.get(col)!.has(r)).length
  }
  // returns 3 rows ahead within the symbol, then the label purge per segment
  for (let i = 0; i + TARGET.horizon < rows.length; i++) {
    const ahead = rows[i + TARGET.horizon]
    if (ahead.symbol !== rows[i].symbol) continue
    rows[i].labelTs = ahead.ts
    const y = ahead.values.close / rows[i].values.close - 1
    rows[i].y = Number.isFinite(y) ? y : Number.NaN
  }
  const segEnd = [0, 1, 2].map((s) => Math.max(...rows.filter((r) => r.seg === s).map((r) => r.ts)))
  const segments: RefRow[][] = [[], [], []]
  for (const r of rows) {
    if (r.seg === -1) continue
    if (r.labelTs > segEnd[r.seg]) dropped.purged++
    else if (Number.isNaN(r.y)) dropped.missingTarget++
    else segments[r.seg].push(r)
  }
  return { segments, boundaries, dropped, fill: out }
}

/** Scaler parameters of non-NaN `values`: standard (mean, population std), minmax, robust (median, IQR). */
function refStats(type: ScalerType, values: number[]): { center: number; scale: number } {
  const v = values.filter((x) => !Number.isNaN(x))
  let center: number
  let scale: number
  if (type === 'standard') {
    let sum = 0
    for (const x of v) sum += x
    center = sum / v.length
    let ss = 0
    for (const x of v) ss += (x - center) * (x - center)
    scale = Math.sqrt(ss / v.length)
  } else if (type === 'minmax') {
    center = Math.min(...v)
    scale = Math.max(...v) - center
  } else {
    center = quantile(v, 0.5)
    scale = quantile(v, 0.75) - quantile(v, 0.25)
  }
  return { center, scale: scale === 0 ? 1 : scale }
}

/** NumPy's default ('linear') quantile. */
function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  return s[lo] + (s[Math.ceil(pos)] - s[lo]) * (pos - lo)
}

/**
 * Window starts per segment (row index within the segment): runs of one symbol with steps
 * ≤ maxGap, a start every `stride` rows, and only windows whose last row's label lies at most
 * `horizon × maxGap` ahead.
 */
function refWindows(segments: RefRow[][], o: { lookback: number; stride: number; maxGap: number }, horizon: number): number[][] {
  return segments.map((rows) => {
    const starts: number[] = []
    let runStart = 0
    for (let i = 1; i <= rows.length; i++) {
      if (i < rows.length && rows[i].symbol === rows[i - 1].symbol && rows[i].ts - rows[i - 1].ts <= o.maxGap * 1000) continue
      for (let s = runStart; s + o.lookback <= i; s += o.stride) {
        const last = rows[s + o.lookback - 1]
        if (last.labelTs - last.ts <= horizon * o.maxGap * 1000) starts.push(s)
      }
      runStart = i
    }
    return starts
  })
}

/** One value per reference row: a feature, the target `y` or the timestamp `ts`. */
function pick(rows: RefRow[], key: string): number[] {
  return rows.map((r) => (key === 'y' ? r.y : key === 'ts' ? r.ts : r.values[key]))
}

/** A numeric column as numbers, null → NaN. */
function numbers(col: Column): Float64Array {
  if (col.type === 'float64') return col.values
  if (col.type === 'int64') return Float64Array.from(col.values, (v, i) => (col.nulls?.[i] ? Number.NaN : Number(v)))
  throw new Error(`not numeric: ${col.type}`)
}

function relDiff(a: number, b: number): number {
  return a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b))
}

/** Element-wise equality (NaN equals NaN), or within `tol` relative (absolute below 1); names the first difference. */
function expectArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 0): void {
  expect(actual.length, `${what}: length`).toBe(expected.length)
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]
    const e = expected[i]
    const ok = a === e || (a !== a && e !== e) || Math.abs(a - e) <= tol * Math.max(1, Math.abs(e))
    if (!ok) expect(a, `${what}[${i}]`).toBe(e)
  }
}

/** Every row of a stream's batches, concatenated, with a key per row for order comparisons. */
async function collect(it: AsyncIterable<StreamBatch>) {
  const batches: StreamBatch[] = []
  for await (const b of it) batches.push(b)
  const cat = (f: (b: StreamBatch) => ArrayLike<number>) => batches.flatMap((b) => Array.from(f(b)))
  const ts = cat((b) => b.timestamps)
  const sym = cat((b) => b.symbolIndex)
  const y = cat((b) => b.y)
  return { batches, X: cat((b) => b.X), y, ts, sym, keys: ts.map((t, i) => `${sym[i]}|${t}|${y[i]}`) }
}

/** The issues of the `ValidationError` that `p` rejects with. */
async function issuesOf(p: Promise<unknown>): Promise<FieldIssue[]> {
  const err = await p.catch((e: unknown) => e)
  expect(err).toBeInstanceOf(ValidationError)
  return (err as ValidationError).issues
}

/** `storage` with `read` counted: calls and the most reads in flight at once. */
function countingReads(storage: DataStorage) {
  const counts = { calls: 0, inFlight: 0, maxInFlight: 0 }
  const read: DataStorage['read'] = async (...args) => {
    if (args[1]?.limit === 0) return storage.read(...args) // the schema lookup, not a load
    counts.calls++
    counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight)
    try {
      await new Promise((resolve) => setTimeout(resolve, 5)) // keep each read in flight a moment
      return await storage.read(...args)
    } finally {
      counts.inFlight--
    }
  }
  const proxy = new Proxy(storage, {
    get(target, prop) {
      if (prop === 'read') return read
      const v = Reflect.get(target, prop, target)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  return { storage: proxy, counts }
}
