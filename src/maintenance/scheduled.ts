/**
 * A scheduled maintenance run (the Worker's `scheduled` handler, or any cron-driven caller): one
 * `maintain()` over every dataset, a summary line on the runtime's log (errors on its error log),
 * and the op log flushed before the runtime may stop. Rejects when the run itself failed, so the
 * platform marks the invocation as failed.
 */

import type { DataStorage, MaintenanceReport } from '../core/types.js'
import { runMaintenance, summarizeReport } from './run.js'

export async function scheduledMaintenance(storage: DataStorage, trigger = 'scheduled'): Promise<MaintenanceReport> {
  try {
    const report = await runMaintenance(storage)
    console.log(`[${trigger}] ${summarizeReport(report)}`)
    for (const d of report.datasets)
      for (const e of d.errors) console.error(`[${trigger}] ${d.dataset}${e.partition ? `/${e.partition}` : ''}: ${e.message}`)
    return report
  } catch (err) {
    console.error(`[${trigger}] maintenance failed:`, err)
    throw err
  } finally {
    await storage.oplog?.flush()
  }
}
