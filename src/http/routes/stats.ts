/** `GET /v1/stats` (admin: the app's counters and the op-log summary) and `GET /v1/cache/stats` (the read cache's counters). */

import type { Hono } from 'hono'
import type { Env } from '../app-types.js'
import { NoQuery } from '../params.js'
import { queryOf, type RouteContext } from './context.js'

export function registerStatsRoutes(app: Hono<Env>, { storage, requireScope, op, stats }: RouteContext): void {
  app.get('/v1/stats', op('stats'), requireScope('admin'), (c) => {
    queryOf(NoQuery, c)
    return c.json({ ...stats.snapshot(storage.requestStats()), oplog: storage.oplog?.summary() ?? { enabled: false } })
  })

  /** Counters of the read cache (`storage.read_cache`); `{ enabled: false }` when the storage has none. */
  app.get('/v1/cache/stats', op('cache_stats'), requireScope('read'), (c) => {
    queryOf(NoQuery, c)
    const cache = storage.readCache
    return c.json(cache ? cache.stats() : { enabled: false })
  })
}
