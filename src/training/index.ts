export type { StreamSegment } from './stream-segment.js'
/** Retrieval for model training: leakage-safe splits, scalers, fills, feature matrices, sequence windows, batches (in memory and streamed), `.npy`. */

export { type Batch, type BatchOptions, batchIndices, rowBatches, windowBatches } from './batches.js'
export {
  type ColumnFillReport,
  type FillMethod,
  type FillOptions,
  type FillResult,
  type FillSpec,
  fillMissing,
} from './fill.js'
export { type LoadOptions, loadSymbols } from './load.js'
export {
  type BuildOptions,
  buildMatrix,
  type FeatureMatrix,
  getFeatureMatrix,
  getTrainingData,
  type MatrixArray,
  type MatrixSegment,
  type TrainingData,
} from './matrix.js'
export {
  encodeNpy,
  NPY_CONTENT_TYPE,
  type NpyDtype,
  type NpyTypedArray,
  nanCellsPerColumn,
  npyByteLength,
  npyDtypeOf,
  npyHeader,
  npyStream,
} from './npy.js'
export {
  DERIVED_TARGETS,
  type DerivedTarget,
  type MatrixOptions,
  type MatrixOptionsInput,
  MatrixOptionsSchema,
  parseOptions,
  resolveTarget,
  type TargetSpec,
  type TrainingOptions,
  type TrainingOptionsInput,
  TrainingOptionsSchema,
  type WalkForwardMatrixOptions,
  type WalkForwardOptionsInput,
  WalkForwardOptionsSchema,
} from './options.js'
export {
  type LoadedTable,
  loadTrainingTable,
  type PreparedData,
  prepareTable,
  prepareTrainingData,
  SEGMENTS,
  type SegmentBounds,
  type SegmentInfo,
  type SegmentName,
  type TrainingReport,
} from './prepare.js'
export { mulberry32, shuffleInPlace } from './random.js'
export { type FitOptions, type FloatArray, fitScaler, SCALER_TYPES, Scaler, type ScalerJSON, type ScalerType } from './scaler.js'
export {
  type ChronologicalSplit,
  chronologicalSplit,
  distinctTimestamps,
  type SplitOptions,
  segmentIds,
  splitIndexRanges,
  type TimeSegment,
  type WalkForwardFold,
  type WalkForwardOptions,
  walkForwardFolds,
  walkForwardRanges,
} from './split.js'
export {
  openTrainingStream,
  type StreamBatch,
  type StreamBatchOptions,
  type StreamOptionsInput,
  StreamOptionsSchema,
  TrainingStream,
} from './stream.js'
export { computeTarget, numericValues, type TargetColumn, targetValue } from './target.js'
export { type WalkForwardFoldMatrix, walkForwardMatrices } from './walk-forward.js'
export { SequenceWindows, sequenceWindows, type WindowOptions } from './windows.js'
