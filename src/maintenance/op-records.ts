/**
 * Op-log records for maintenance steps: one per step and dataset (rotate, compact, archive,
 * retention, gc) and one `maintain` summary per run, with the store requests each step made.
 */

import { newId } from '../core/ids.js'
import type { OpKind, OpRecord, OpSink } from '../core/oplog-types.js'
import type { StoreRequestStats } from '../core/types.js'

export interface StepFigures {
  partitions?: string[]
  rows?: number
  bytes?: number
  details?: Record<string, unknown>
  error?: unknown
}

const MAX_PARTITIONS = 100

/** Times steps and sends their records to the sink (if any); never throws. */
export class StepRecorder {
  constructor(
    private readonly sink: OpSink | undefined,
    private readonly stats: () => StoreRequestStats,
  ) {}

  /** Runs `fn` as one step and records it; the figures come from `fn`'s result. */
  async step<T>(op: OpKind, dataset: string | null, fn: () => Promise<T>, figures: (r: T) => StepFigures): Promise<T> {
    const at = new Date()
    const t0 = performance.now()
    const before = this.stats()
    try {
      const r = await fn()
      this.emit(op, dataset, at, t0, before, figures(r))
      return r
    } catch (err) {
      this.emit(op, dataset, at, t0, before, { error: err })
      throw err
    }
  }

  /** Records a step that already ran (from `at`/`t0`, with store stats `before`). */
  emit(op: OpKind, dataset: string | null, at: Date, t0: number, before: StoreRequestStats, f: StepFigures): void {
    if (!this.sink) return
    const after = this.stats()
    const partitions = f.partitions ?? []
    const err = f.error
    const record: OpRecord = {
      id: newId(),
      op,
      at: at.toISOString(),
      dataset,
      partitions: partitions.slice(0, MAX_PARTITIONS),
      partitionCount: partitions.length,
      rows: f.rows ?? 0,
      bytes: f.bytes ?? 0,
      durationMs: Math.round((performance.now() - t0) * 1000) / 1000,
      requests: {
        get: after.get - before.get,
        put: after.put - before.put,
        list: after.list - before.list,
        delete: after.delete - before.delete,
        head: after.head - before.head,
      },
      retries: 0,
      outcome: err === undefined ? 'ok' : 'error',
      error:
        err === undefined
          ? null
          : {
              code: (err as { code?: string }).code ?? 'internal_error',
              message: err instanceof Error ? err.message : String(err),
            },
      ...(f.details ? { details: f.details } : {}),
    }
    try {
      this.sink.record(record)
    } catch {
      // a sink must not break maintenance
    }
  }
}
