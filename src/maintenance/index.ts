export { MaintenanceUnsupportedError } from '../core/errors.js'
/** Maintenance entry points: running `maintain()` with the op log, DB row retention, reports. */

export { maintainRows } from './db-retention.js'
export { StepRecorder } from './op-records.js'
export { emptyDatasetReport, finishReport } from './report.js'
export { runMaintenance, summarizeReport } from './run.js'
export { scheduledMaintenance } from './scheduled.js'
