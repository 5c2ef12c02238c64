/** Query of `POST /v1/maintenance/run`: `dataset` (one dataset, else all) and `dry_run=true|false`. */

import * as v from 'valibot'
import { DatasetParam } from './params.js'

export const MaintenanceQuery = v.strictObject({
  dataset: v.optional(DatasetParam),
  dry_run: v.optional(v.picklist(['true', 'false'], (issue) => `expected true or false, got ${JSON.stringify(issue.input)}`)),
})
