/** Maintenance entry points: running `maintain()` with the op log, DB row retention, reports. */

export { maintainRows } from './db-retention.js'
export { StepRecorder } from './op-records.js'
export { emptyDatasetReport, finishReport } from './report.js'
export { MaintenanceUnsupportedError, runMaintenance, summarizeReport } from './run.js'
export { scheduledMaintenance } from './scheduled.js'
