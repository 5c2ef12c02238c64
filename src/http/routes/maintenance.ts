/** `POST /v1/maintenance/run` (admin): one maintenance run (rotation, compaction, archiving, retention, gc) under the configured policy. */

import type { Hono } from 'hono'
import { runMaintenance } from '../../maintenance/run.js'
import type { Env } from '../app-types.js'
import { MaintenanceQuery } from '../maintenance-params.js'
import { assertDataset, queryOf, type RouteContext } from './context.js'

export function registerMaintenanceRoutes(app: Hono<Env>, { storage, requireScope, op }: RouteContext): void {
  app.post('/v1/maintenance/run', op('maintenance.run'), requireScope('admin'), async (c) => {
    const q = queryOf(MaintenanceQuery, c)
    if (q.dataset !== undefined) await assertDataset(storage, q.dataset) // 404, as every dataset-scoped route
    return c.json(await runMaintenance(storage, { dataset: q.dataset, dryRun: q.dry_run === 'true' }))
  })
}
