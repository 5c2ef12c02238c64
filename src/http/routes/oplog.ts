/**
 * `GET /v1/oplog`: the operation log, newest first: flushed and not yet flushed records. Page
 * back with the returned `next.until` (null: nothing older matches).
 */

import type { Hono } from 'hono'
import { parseTimeUs } from '../../core/time.js'
import { pageOf } from '../../oplog/records.js'
import type { Env } from '../app-types.js'
import { OplogQuery } from '../params.js'
import { queryOf, type RouteContext } from './context.js'

export function registerOplogRoutes(app: Hono<Env>, { storage, requireScope, op }: RouteContext): void {
  app.get('/v1/oplog', op('oplog.read'), requireScope('read'), async (c) => {
    const q = queryOf(OplogQuery, c)
    const log = storage.oplog
    if (!log) return c.json({ enabled: false, records: [], next: null })
    const ms = (t: string | number | undefined) => (t === undefined ? undefined : parseTimeUs(t)! / 1000)
    const filter = { since: ms(q.since), until: ms(q.until), dataset: q.dataset, op: q.op }
    const page = pageOf(await log.query({ ...filter, limit: q.limit + 1 }), q.limit)
    const next = page.nextUntil === null ? null : { until: new Date(page.nextUntil).toISOString() }
    return c.json({ enabled: true, records: page.records, next })
  })
}
