/**
 * A real consumer of the training library: bars whose close follows a noisy sine go into a local
 * Parquet lake, come back as a feature matrix and sequence windows, and train a small TensorFlow.js
 * LSTM (CPU backend) batch by batch. The training loss has to fall and the validation loss be finite:
 * the windows, targets and batches carry a signal a model can learn.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateBars, mulberry32 } from '../bench/data.js'
import type { DataStorage } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import {
  getFeatureMatrix,
  type MatrixArray,
  type SequenceWindows,
  sequenceWindows,
  windowBatches,
} from '../src/training/index.js'

const SYMBOLS = 3
const DAYS = 10
const BARS_PER_DAY = 120
const PERIOD = 24 // bars per sine cycle
const LOOKBACK = 16
const EPOCHS = 6
const SEED = 1

let dir: string
let storage: DataStorage

/**
 * generateBars' calendar (symbols, session minutes) with prices replaced by a sine of period
 * `PERIOD` bars (a phase per symbol, ±5 %) times 0.2 % multiplicative noise: the next bar's return
 * follows from the last few closes, up to the noise.
 */
function sineBars() {
  const bars = generateBars({ symbols: SYMBOLS, days: DAYS, barsPerDay: BARS_PER_DAY, order: 'symbol', seed: SEED })
  const rand = mulberry32(42)
  const noise = () => (rand() + rand() + rand() - 1.5) * 0.004 // roughly N(0, 0.002)
  const c = bars.columns
  const perSymbol = DAYS * BARS_PER_DAY
  let prev = 0
  for (let i = 0; i < bars.rows; i++) {
    const s = Math.floor(i / perSymbol)
    const k = i % perSymbol
    const close = 100 * (1 + 0.05 * Math.sin((2 * Math.PI * k) / PERIOD + s)) * (1 + noise())
    const open = k === 0 ? close : prev
    c.open[i] = open
    c.close[i] = close
    c.high[i] = Math.max(open, close) * 1.001
    c.low[i] = Math.min(open, close) * 0.999
    prev = close
  }
  return bars
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'friday-tfjs-'))
  storage = createStorage({ storage: { local_parquet: { base_dir: dir }, metadata_logging: { enabled: false } } }, {})
  await storage.write('bars', sineBars().columns)
  await tf.setBackend('cpu')
})

afterAll(async () => {
  await storage?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** LSTM(8) → Dense(1), every weight from a seeded initializer. */
function buildModel(features: number): tf.Sequential {
  const model = tf.sequential()
  model.add(
    tf.layers.lstm({
      units: 8,
      inputShape: [LOOKBACK, features],
      kernelInitializer: tf.initializers.glorotUniform({ seed: SEED }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: SEED + 1 }),
    }),
  )
  model.add(tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: SEED + 2 }) }))
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' })
  return model
}

/** Targets standardized with the training windows' mean and deviation (returns are ~1e-2: too small to fit raw). */
function standardize(y: MatrixArray, mean: number, std: number): Float32Array {
  return Float32Array.from(y, (v) => (v - mean) / std)
}

/** The matrix's dtype (default float32) as the array type tfjs takes: `MatrixArray` also allows float64, which tfjs does not. */
function f32(a: MatrixArray): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error(`expected a Float32Array, got ${a.constructor.name}`)
  return a
}

function meanStd(y: MatrixArray): [number, number] {
  let s = 0
  for (const v of y) s += v
  const mean = s / y.length
  let ss = 0
  for (const v of y) ss += (v - mean) ** 2
  return [mean, Math.sqrt(ss / y.length)]
}

/** Mean squared error of `model` on every window of `w` (standardized targets). */
function evaluate(model: tf.Sequential, w: SequenceWindows, mean: number, std: number): number {
  return tf.tidy(() => {
    const x = tf.tensor3d(f32(w.materialize()), w.shape)
    const y = tf.tensor2d(standardize(w.targets, mean, std), [w.count, 1])
    return (model.evaluate(x, y) as tf.Scalar).dataSync()[0]
  })
}

describe('training library → TensorFlow.js LSTM', () => {
  it('trains an LSTM on window batches: the training loss falls and the validation loss is finite', async () => {
    const m = await getFeatureMatrix(storage, {
      dataset: 'bars',
      features: ['open', 'high', 'low', 'close'],
      target: 'returns',
      testSize: 0.2,
      validationSize: 0.1,
    })
    const w = sequenceWindows(m, { lookback: LOOKBACK, stride: 2 })
    expect(w.train.shape).toEqual([w.train.count, LOOKBACK, 4])
    expect(w.train.count).toBeGreaterThan(1000)
    expect(w.validation.count).toBeGreaterThan(100)

    const [mean, std] = meanStd(w.train.targets)
    const model = buildModel(4)
    const losses: number[] = []
    const tensorsAfterEpoch: number[] = []
    for (let epoch = 0; epoch < EPOCHS; epoch++) {
      let sum = 0
      let rows = 0
      for (const batch of windowBatches(w.train, { batchSize: 64, shuffle: true, seed: SEED + epoch })) {
        const k = batch.shape[0]
        const x = tf.tensor3d(f32(batch.X), batch.shape as [number, number, number])
        const y = tf.tensor2d(standardize(batch.y, mean, std), [k, 1])
        const loss = (await model.trainOnBatch(x, y)) as number
        x.dispose()
        y.dispose()
        sum += loss * k
        rows += k
      }
      expect(rows).toBe(w.train.count)
      losses.push(sum / rows)
      tensorsAfterEpoch.push(tf.memory().numTensors)
    }
    const valLoss = evaluate(model, w.validation, mean, std)
    // No tensor leaks: the count is flat from the first epoch on (weights + optimizer slots), evaluation included.
    expect(new Set([...tensorsAfterEpoch, tf.memory().numTensors]).size).toBe(1)

    console.log(
      `tfjs LSTM: train MSE per epoch ${losses.map((l) => l.toFixed(4)).join(' → ')}; validation MSE ${valLoss.toFixed(4)} ` +
        `(standardized targets; predicting the mean scores ~1); live tensors ${tensorsAfterEpoch[0]}`,
    )
    expect(losses.every(Number.isFinite)).toBe(true)
    expect(losses[EPOCHS - 1]).toBeLessThan(0.7 * losses[0])
    expect(Number.isFinite(valLoss)).toBe(true)
    // The validation windows come after every training one: a model that learned the sine beats the mean there too.
    expect(valLoss).toBeLessThan(0.7)
    model.dispose()
  }, 30_000)
})
