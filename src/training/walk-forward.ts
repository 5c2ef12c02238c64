/**
 * Walk-forward backtesting folds over any `DataStorage`, leakage-safe like the chronological
 * split: the rows are loaded once, then each fold is its own split of the same distinct
 * timestamps (train block, `gap`, test block; `embargo` after the train block), with fills,
 * targets and the label purge redone for it and the scaler fitted on that fold's training rows
 * only. Folds come one at a time, so only one fold's matrix is built at once.
 */

import type { DataStorage } from '../core/types.js'
import { buildMatrix, type FeatureMatrix } from './matrix.js'
import { givenScaler, parseOptions, type WalkForwardOptionsInput, WalkForwardOptionsSchema } from './options.js'
import { loadTrainingTable, prepareTable } from './prepare.js'
import { distinctTimestamps, walkForwardRanges } from './split.js'

export interface WalkForwardFoldMatrix extends FeatureMatrix {
  /** The fold's index (0 first, in time order) and the count. */
  fold: number
  folds: number
}

/**
 * One `FeatureMatrix` per fold (its `train` and `test` segments; `validation` is empty), in time
 * order. Throws `ValidationError` before the first fold if the folds do not fit the data.
 */
export async function walkForwardMatrices(
  storage: DataStorage,
  options: WalkForwardOptionsInput & { dataset: string },
): Promise<{ folds: number; distinctTimestamps: number; matrices: () => Generator<WalkForwardFoldMatrix> }> {
  const { dataset, ...rest } = options
  const o = parseOptions(WalkForwardOptionsSchema, rest)
  const loaded = await loadTrainingTable(storage, dataset, o)
  const distinct = distinctTimestamps(loaded.table)
  const ranges = walkForwardRanges(distinct.length, {
    folds: o.folds,
    window: o.window,
    testSize: o.foldSize,
    trainSize: o.trainSize,
    gap: o.gap,
  })
  const given = givenScaler(o)
  const bound = (lo: number, hi: number) => (hi > lo ? { start: distinct[lo], end: distinct[hi - 1] } : null)
  function* matrices(): Generator<WalkForwardFoldMatrix> {
    for (const [fold, r] of ranges.entries()) {
      const bounds = { train: bound(r.trainLo, r.trainHi), validation: null, test: bound(r.testLo, r.testHi) }
      const p = prepareTable(dataset, loaded, o, { distinct, bounds })
      const m = buildMatrix(p, { dtype: o.dtype, normalize: o.normalize, scalerType: o.scalerType, scaler: given })
      yield Object.assign(m, { fold, folds: ranges.length })
    }
  }
  return { folds: ranges.length, distinctTimestamps: distinct.length, matrices }
}
