/**
 * `createDataStorage(driver, options)`: the one `DataStorage` every backend is reached through.
 * It checks each call's arguments once (dataset names, write modes, time units, filters, limits,
 * batch sizes, column lists, gc options), applies the retrieval defaults, offers a maintenance
 * fallback to drivers without their own, and puts the read cache and the op log in front, in
 * that order. The driver receives only checked, normalized arguments (see `driver.ts`).
 */

import {
  checkBatchSize,
  checkColumns,
  checkDryRun,
  checkGraceMs,
  checkLimit,
  checkTimeUnit,
  checkWriteMode,
  DEFAULT_SCAN_BATCH,
} from './checks.js'
import type { StorageDriver } from './driver.js'
import { ValidationError } from './errors.js'
import { parseRowFilter, type TimeSymbolFilter } from './filter.js'
import { checkDatasetName } from './keys.js'
import { overlay } from './overlay.js'
import type {
  DataStorage,
  DeleteOptions,
  GcOptions,
  MaintenanceOptions,
  MaintenanceReport,
  PartitionFilter,
  ReadOptions,
  RetrievalDefaults,
  ScanOptions,
  WriteOptions,
} from './types.js'

/** A wrapper that returns the same storage with some members replaced (the read cache, the op log). */
export type StorageLayer = (storage: DataStorage) => DataStorage

export interface FrontOptions {
  /** `storage.retrieval`: the batch size of a `scan()` that names none, and the training functions' concurrency. */
  retrieval?: RetrievalDefaults
  /**
   * `maintain()` for a driver without its own (row retention of the database backends): called
   * with the checked storage (under the read cache and the op log) and checked options. Ignored
   * when the driver has `maintain`.
   */
  maintain?: (storage: DataStorage, options: MaintenanceOptions) => Promise<MaintenanceReport>
  /** Puts a read cache in front of the checked storage (`withReadCache`). */
  readCache?: StorageLayer
  /** Attaches an op log in front of everything else, so it records every call, cached or not (`attachOpLog`). */
  opLog?: StorageLayer
  /**
   * Unit of epoch numbers in the time column of a write that names none (config
   * `storage.ingest.time_unit`, as for HTTP and CLI writes); unset: milliseconds, with the
   * plausibility check of the default unit.
   */
  timeUnit?: WriteOptions['timeUnit']
}

/** The optional capabilities of the contract a driver may implement. */
type Capability = 'maintain' | 'listArchives' | 'restoreArchive' | 'opLogStore' | 'snapshot'

/**
 * The storage a driver gives: the contract, with the optional capabilities the driver surely has
 * as present, plus the driver's own extra members (e.g. the lake's `store`, postgres's
 * `expireRows`), which reach the driver unchanged.
 */
export type FrontedStorage<D extends StorageDriver> = DataStorage &
  Omit<D, keyof StorageDriver> & {
    [K in Capability as K extends keyof D ? (undefined extends D[K] ? never : K) : never]-?: NonNullable<DataStorage[K]>
  }

/** A `read`/`delete`/`listPartitions` filter: parsed, and `end` not before `start` (equal bounds: an empty range). */
export function checkFilter(o: { symbols?: unknown; start?: unknown; end?: unknown }): TimeSymbolFilter {
  const f = parseRowFilter(o)
  if (f.end < f.start) {
    throw new ValidationError([
      { field: 'end', message: `end ${JSON.stringify(String(o.end))} is before start ${JSON.stringify(String(o.start))}` },
    ])
  }
  return f
}

/** The checked storage over `driver`, with the read cache and op log of `options` in front. */
export function createDataStorage<D extends StorageDriver>(driver: D, options: FrontOptions = {}): FrontedStorage<D> {
  const retrieval = options.retrieval
  const checked: Partial<DataStorage> = {
    write(dataset, data, o: WriteOptions = {}) {
      return call(() => {
        const ds = checkDatasetName(dataset)
        const request = { mode: checkWriteMode(o?.mode), timeUnit: checkTimeUnit(o?.timeUnit ?? options.timeUnit) }
        return driver.write(ds, data, request)
      })
    },
    read(dataset, o: ReadOptions = {}) {
      return call(() => driver.read(checkDatasetName(dataset), readRequest(o ?? {})))
    },
    async *scan(dataset, o: ScanOptions = {}) {
      const ds = checkDatasetName(dataset)
      const request = readRequest(o ?? {})
      const batchSize = Math.floor(checkBatchSize(o?.batchSize ?? retrieval?.batchSize ?? DEFAULT_SCAN_BATCH))
      yield* driver.scan(ds, { ...request, batchSize })
    },
    delete(dataset, o: DeleteOptions = {}) {
      return call(() => driver.delete(checkDatasetName(dataset), checkFilter(o ?? {})))
    },
    listDatasets: () => driver.listDatasets(),
    describe(dataset) {
      return call(() => driver.describe(checkDatasetName(dataset)))
    },
    listPartitions(dataset, filter: PartitionFilter = {}) {
      return call(() => driver.listPartitions(checkDatasetName(dataset), checkFilter(filter ?? {})))
    },
    getManifest(dataset, partition) {
      return call(() => driver.getManifest(checkDatasetName(dataset), partition))
    },
    verify(dataset) {
      return call(() => driver.verify(dataset === undefined ? undefined : checkDatasetName(dataset)))
    },
    gc(o: GcOptions = {}) {
      return call(() =>
        driver.gc({
          dataset: o?.dataset === undefined ? undefined : checkDatasetName(o.dataset),
          graceMs: checkGraceMs(o?.graceMs),
          dryRun: checkDryRun(o?.dryRun),
        }),
      )
    },
  }
  if (driver.listArchives) {
    const list = driver.listArchives.bind(driver)
    checked.listArchives = (dataset, filter = {}) => call(() => list(checkDatasetName(dataset), filter ?? {}))
  }
  if (driver.restoreArchive) {
    const restore = driver.restoreArchive.bind(driver)
    checked.restoreArchive = (dataset, key, o = {}) => call(() => restore(checkDatasetName(dataset), key, o ?? {}))
  }
  if (driver.snapshot) {
    const take = driver.snapshot.bind(driver)
    checked.snapshot = (dataset, filter: PartitionFilter = {}) =>
      call(async () => {
        const snap = await take(checkDatasetName(dataset), checkFilter(filter ?? {}))
        return {
          partitions: snap.partitions,
          read: (o: ReadOptions = {}) => call(() => snap.read(readRequest(o ?? {}))),
        }
      })
  }
  const own = driver.maintain?.bind(driver)
  const fallback = options.maintain
  if (own || fallback) {
    checked.maintain = (o: MaintenanceOptions = {}) =>
      call(() => {
        const request = o?.dataset === undefined ? { ...o } : { ...o, dataset: checkDatasetName(o.dataset) }
        return own ? own(request) : fallback!(storage, request)
      })
  }
  if (retrieval) (checked as { retrieval: RetrievalDefaults }).retrieval = retrieval
  const storage = overlay(driver as unknown as DataStorage, checked)
  return inFront(storage, options) as FrontedStorage<D>
}

/**
 * The one place the wrappers are composed: the read cache over the checked storage, the op log
 * over both (it records every call, cached or not, with the requests it really made).
 */
function inFront(storage: DataStorage, layers: Pick<FrontOptions, 'readCache' | 'opLog'>): DataStorage {
  const cached = layers.readCache ? layers.readCache(storage) : storage
  return layers.opLog ? layers.opLog(cached) : cached
}

/** The checked part of a read or scan: filter, columns, limit (whole rows, or `Infinity`). */
function readRequest(o: ReadOptions) {
  const filter = checkFilter(o)
  const columns = checkColumns(o.columns)
  const limit = Math.floor(checkLimit(o.limit))
  return { filter, columns, limit }
}

/** Runs `fn`; a check that throws becomes a rejected promise, as from an async method. */
function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn()
  } catch (err) {
    return Promise.reject(err)
  }
}
