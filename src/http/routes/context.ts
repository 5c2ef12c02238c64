/** What the route modules share: the storage, auth, stats and the parsing of the dataset and query every route does. */

import type { Context, MiddlewareHandler } from 'hono'
import { NotFoundError } from '../../core/errors.js'
import type { DataStorage } from '../../core/types.js'
import type { Env } from '../app-types.js'
import type { RequireScope } from '../auth.js'
import { DatasetParam, parseParam, queryObject } from '../params.js'
import type { HttpStats } from '../stats.js'

/** The app's shared pieces a route group registers with. */
export interface RouteContext {
  storage: DataStorage
  requireScope: RequireScope
  /** Names the operation for the stats. */
  op: (name: string) => MiddlewareHandler<Env>
  /** The app's counters (request and response bytes). */
  stats: HttpStats
}

/** Middleware naming the operation for the stats (`op` of the app's `Env`). */
export const op =
  (name: string): MiddlewareHandler<Env> =>
  async (c, next) => {
    c.set('op', name)
    await next()
  }

/** The `:dataset` path parameter, validated (400 naming `dataset`). */
export const datasetOf = (c: Context<Env>): string => parseParam(DatasetParam, c.req.param('dataset'), 'dataset')

/** The query string under `schema` (unknown parameters and repeated scalars are a 400). */
export const queryOf = <S extends Parameters<typeof parseParam>[0]>(schema: S, c: Context<Env>) =>
  parseParam(schema, queryObject(c.req.queries()), 'query')

export const datasetNotFound = (name: string): NotFoundError => new NotFoundError(`dataset '${name}'`)

/** 404 `not_found` unless the dataset exists. */
export async function assertDataset(storage: DataStorage, name: string): Promise<void> {
  if (!(await storage.listDatasets()).includes(name)) throw datasetNotFound(name)
}
