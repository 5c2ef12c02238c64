/** Leakage-safe training building blocks over a `Table`: time splits, scalers, missing-value fills. */

export {
  type ColumnFillReport,
  type FillMethod,
  type FillOptions,
  type FillResult,
  type FillSpec,
  fillMissing,
} from './fill.js'
export { type FitOptions, fitScaler, SCALER_TYPES, Scaler, type ScalerJSON, type ScalerType } from './scaler.js'
export {
  type ChronologicalSplit,
  chronologicalSplit,
  distinctTimestamps,
  type SplitOptions,
  segmentIds,
  type TimeSegment,
  type WalkForwardFold,
  type WalkForwardOptions,
  walkForwardFolds,
} from './split.js'
