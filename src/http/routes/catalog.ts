/**
 * The catalog: `GET /v1/datasets`, `GET /v1/datasets/:dataset` (its description), its
 * partitions (`.../partitions`) and a partition's manifest (`.../partitions/manifest` for any
 * partitioning, `.../partitions/:symbol/:date` for symbol/date and symbol/month datasets).
 */

import type { Hono } from 'hono'
import { NotFoundError, StorageError, ValidationError } from '../../core/errors.js'
import { endOfPeriodUs, startOfPeriodUs } from '../../core/time.js'
import type { DataStorage } from '../../core/types.js'
import type { Env } from '../app-types.js'
import { ManifestQuery, NoQuery, PartitionsQuery, PeriodParam, parseParam, SymbolParam } from '../params.js'
import { assertDataset, datasetNotFound, datasetOf, queryOf, type RouteContext } from './context.js'

/** 404 for a partition named by keys its dataset is not partitioned by: says which keys it is. */
class PartitionNotFoundError extends StorageError {
  constructor(dataset: string, partition: string, partitionBy: string[]) {
    const query = partitionBy.map((k) => `${k}=...`).join('&')
    super(
      404,
      'not_found',
      `partition ${partition} of dataset '${dataset}' not found: the dataset is partitioned by ${partitionBy.join('/')}; ` +
        `name a partition by ${partitionBy.join(' and ')} (GET /v1/datasets/${dataset}/partitions/manifest?${query}, ` +
        'or ?path= as GET .../partitions lists it)',
      { partitionBy },
    )
  }
}

/** `k=v` segments of a hive path as values (a symbol percent-decoded); segments that do not parse are left out. */
function valuesOfPath(path: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const seg of path.split('/')) {
    const eq = seg.indexOf('=')
    if (eq <= 0) continue
    const key = seg.slice(0, eq)
    try {
      values[key] = key === 'symbol' ? decodeURIComponent(seg.slice(eq + 1)) : seg.slice(eq + 1)
    } catch {
      // a broken escape: not a value to look near
    }
  }
  return values
}

/**
 * 404 for a partition that is not there: the dataset's when it does not exist; else, when a
 * partition of the same symbol or period exists but is keyed otherwise (a `['date']` dataset
 * asked for `symbol` and `date`), a message naming the dataset's partitioning. Bounded work:
 * one filtered partition listing, never a scan of every partition.
 */
async function partitionNotFound(storage: DataStorage, name: string, partition: Record<string, string> | string): Promise<never> {
  const shown = typeof partition === 'string' ? partition : Object.values(partition).join('/')
  const values = typeof partition === 'string' ? valuesOfPath(partition) : partition
  const raw = values.date ?? values.month
  const period = raw !== undefined && /^\d{4}-\d{2}(-\d{2})?$/.test(raw) ? raw : undefined
  const near =
    values.symbol !== undefined || period !== undefined
      ? await storage
          .listPartitions(name, {
            symbols: values.symbol !== undefined ? [values.symbol] : undefined,
            start: period !== undefined ? startOfPeriodUs(period) / 1000 : undefined,
            end: period !== undefined ? endOfPeriodUs(period) / 1000 : undefined,
          })
          .catch((err) => {
            if (err instanceof ValidationError) return [] // e.g. a symbol no partition can have
            throw err
          })
      : []
  if (near.length === 0) {
    await assertDataset(storage, name)
    throw new NotFoundError(`partition ${shown} of dataset '${name}'`)
  }
  const by = Object.keys(near[0].values)
  const keys = Object.keys(values)
  const fits = keys.length === by.length && by.every((k) => keys.includes(k))
  if (fits) throw new NotFoundError(`partition ${shown} of dataset '${name}'`)
  throw new PartitionNotFoundError(name, shown, by)
}

export function registerCatalogRoutes(app: Hono<Env>, { storage, requireScope, op }: RouteContext): void {
  app.get('/v1/datasets', op('datasets.list'), requireScope('read'), async (c) => {
    queryOf(NoQuery, c)
    return c.json({ datasets: await storage.listDatasets() })
  })

  app.get('/v1/datasets/:dataset', op('datasets.describe'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    queryOf(NoQuery, c)
    const description = await storage.describe(name)
    if (!description) throw datasetNotFound(name)
    return c.json(description)
  })

  app.get('/v1/datasets/:dataset/partitions', op('partitions.list'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    const q = queryOf(PartitionsQuery, c)
    const symbols =
      q.symbol !== undefined || q.symbols ? [...(q.symbol !== undefined ? [q.symbol] : []), ...(q.symbols ?? [])] : undefined
    const partitions = await storage.listPartitions(name, { symbols, start: q.start, end: q.end })
    if (partitions.length === 0) await assertDataset(storage, name)
    return c.json({ partitions })
  })

  /**
   * The manifest of one partition, for any partitioning: `?path=` a hive path as `GET
   * .../partitions` lists it (`date=2024-01-02`, `symbol=EUR%2FUSD/date=2024-01-02`, itself
   * percent-encoded in the query), or the partition's values (`?date=2024-01-02`,
   * `?symbol=EUR/USD&month=2024-01`).
   */
  app.get('/v1/datasets/:dataset/partitions/manifest', op('partitions.manifest'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    const { path, ...rest } = queryOf(ManifestQuery, c)
    const partition =
      path ?? (Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Record<string, string>)
    const manifest = await storage.getManifest(name, partition)
    if (!manifest) return partitionNotFound(storage, name, partition)
    return c.json(manifest)
  })

  /**
   * The manifest of one partition of a dataset partitioned by symbol and day (`:date` =
   * `YYYY-MM-DD`) or symbol and month (`:date` = `YYYY-MM`). `:symbol` is percent-encoded in the
   * URL (`EUR%2FUSD`, `%5EGSPC`). Other partitionings: `GET .../partitions/manifest`.
   */
  app.get('/v1/datasets/:dataset/partitions/:symbol/:date', op('partitions.manifest'), requireScope('read'), async (c) => {
    const name = datasetOf(c)
    const symbol = parseParam(SymbolParam, c.req.param('symbol'), 'symbol')
    const period = parseParam(PeriodParam, c.req.param('date'), 'date')
    queryOf(NoQuery, c)
    const values: Record<string, string> = period.length === 10 ? { symbol, date: period } : { symbol, month: period }
    const manifest = await storage.getManifest(name, values)
    if (!manifest) return partitionNotFound(storage, name, values)
    return c.json(manifest)
  })
}
