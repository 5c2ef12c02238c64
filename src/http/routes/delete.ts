/** `DELETE /v1/datasets/:dataset/rows`: the rows matching `symbols`/`start`/`end`, or every row with `all=true` (never both). */

import type { Hono } from 'hono'
import { ValidationError } from '../../core/errors.js'
import type { Env } from '../app-types.js'
import { DeleteQuery } from '../params.js'
import { assertDataset, datasetOf, queryOf, type RouteContext } from './context.js'

export function registerDeleteRoutes(app: Hono<Env>, { storage, requireScope, op }: RouteContext): void {
  app.delete('/v1/datasets/:dataset/rows', op('rows.delete'), requireScope('write'), async (c) => {
    const name = datasetOf(c)
    const q = queryOf(DeleteQuery, c)
    const filtered = q.symbols !== undefined || q.start !== undefined || q.end !== undefined
    if (q.all === 'true' && filtered) {
      throw new ValidationError([
        { field: 'all', message: 'all=true deletes every row; it cannot be combined with symbols, start or end' },
      ])
    }
    if (!filtered && q.all !== 'true') {
      throw new ValidationError([
        { field: 'all', message: 'no filter given: pass symbols, start or end, or all=true to delete every row of the dataset' },
      ])
    }
    const result = await storage.delete(name, { symbols: q.symbols, start: q.start, end: q.end })
    if (result.rowsDeleted === 0) await assertDataset(storage, name)
    return c.json(result)
  })
}
