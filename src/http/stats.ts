/**
 * In-memory request statistics for `GET /v1/stats`: counts per operation, errors by code,
 * latency percentiles from fixed-size reservoirs (memory stays constant however long the server
 * runs), and body bytes in and out. Per process/isolate; reset on restart.
 */

import type { StoreRequestStats } from '../core/types.js'
import { Reservoir } from '../reservoir.js'

export { RESERVOIR_SIZE } from '../reservoir.js'

interface OperationStats {
  count: number
  errors: number
  latency: Reservoir
}

export interface OperationSnapshot {
  count: number
  errors: number
  p50Ms: number | null
  p99Ms: number | null
}

export interface StatsSnapshot {
  startedAt: string
  uptimeMs: number
  requests: { total: number; errors: number; p50Ms: number | null; p99Ms: number | null }
  /** Keyed by operation, e.g. `rows.read`, `rows.write`, `datasets.describe`, `healthz`, `not_found`. */
  operations: Record<string, OperationSnapshot>
  /** Error responses by error code, e.g. `{ validation_error: 3, unauthorized: 1 }`. */
  errors: Record<string, number>
  statuses: Record<string, number>
  /** Request body bytes read, response body bytes sent (counted as streamed). */
  bytes: { in: number; out: number }
  /** Requests this server made to its store (`DataStorage.requestStats()`). */
  storage: StoreRequestStats
}

export class HttpStats {
  private readonly started = Date.now()
  private readonly total: OperationStats = { count: 0, errors: 0, latency: new Reservoir() }
  private readonly operations = new Map<string, OperationStats>()
  private readonly errorCodes = new Map<string, number>()
  private readonly statuses = new Map<number, number>()
  private bytesIn = 0
  private bytesOut = 0

  /** One finished request: its operation, status, error code (if any) and time to response in ms. */
  record(operation: string, status: number, errorCode: string | undefined, ms: number): void {
    let op = this.operations.get(operation)
    if (!op) {
      op = { count: 0, errors: 0, latency: new Reservoir() }
      this.operations.set(operation, op)
    }
    const failed = status >= 400
    for (const s of [op, this.total]) {
      s.count++
      if (failed) s.errors++
      s.latency.add(ms)
    }
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1)
    if (errorCode) this.errorCodes.set(errorCode, (this.errorCodes.get(errorCode) ?? 0) + 1)
  }

  addBytesIn(n: number): void {
    this.bytesIn += n
  }

  addBytesOut(n: number): void {
    this.bytesOut += n
  }

  /** A stream that passes chunks through, adding their sizes to `bytes.in` or `bytes.out`. */
  counter(direction: 'in' | 'out', onChunk?: (total: number) => void): TransformStream<Uint8Array, Uint8Array> {
    let total = 0
    return new TransformStream({
      transform: (chunk, controller) => {
        total += chunk.byteLength
        if (direction === 'in') this.addBytesIn(chunk.byteLength)
        else this.addBytesOut(chunk.byteLength)
        onChunk?.(total)
        controller.enqueue(chunk)
      },
    })
  }

  snapshot(storage: StoreRequestStats): StatsSnapshot {
    const [p50, p99] = this.total.latency.percentiles(50, 99)
    const operations: Record<string, OperationSnapshot> = {}
    for (const [name, op] of [...this.operations].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [p50Ms, p99Ms] = op.latency.percentiles(50, 99)
      operations[name] = { count: op.count, errors: op.errors, p50Ms, p99Ms }
    }
    return {
      startedAt: new Date(this.started).toISOString(),
      uptimeMs: Date.now() - this.started,
      requests: { total: this.total.count, errors: this.total.errors, p50Ms: p50, p99Ms: p99 },
      operations,
      errors: Object.fromEntries([...this.errorCodes].sort(([a], [b]) => (a < b ? -1 : 1))),
      statuses: Object.fromEntries([...this.statuses].map(([s, n]) => [String(s), n])),
      bytes: { in: this.bytesIn, out: this.bytesOut },
      storage,
    }
  }
}
