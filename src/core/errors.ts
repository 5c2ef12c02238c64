/** Typed errors that know their HTTP status; the HTTP layer renders them as JSON. */

export interface ErrorDetails {
  [key: string]: unknown
}

export class StorageError extends Error {
  readonly status: number
  readonly code: string
  readonly details?: ErrorDetails

  constructor(status: number, code: string, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.status = status
    this.code = code
    this.details = details
  }

  toJSON(): { error: { code: string; message: string; details?: ErrorDetails } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } }
  }
}

/**
 * One problem with one input row or field. `row` is the 0-based index of the data row in the
 * batch; `line` the 1-based line of a CSV or NDJSON body where the row starts.
 */
export interface FieldIssue {
  row?: number
  line?: number
  field: string
  message: string
}

/** Bad input: nothing was written. `details.issues` lists the first problems found. */
export class ValidationError extends StorageError {
  readonly issues: FieldIssue[]
  constructor(issues: FieldIssue[], extra?: ErrorDetails) {
    const first = issues[0]
    const line = first?.line !== undefined ? ` (line ${first.line})` : ''
    const where = first
      ? first.row !== undefined
        ? `row ${first.row}${line}, field '${first.field}'`
        : `field '${first.field}'`
      : ''
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
    super(400, 'validation_error', first ? `${where}: ${first.message}${more}` : 'invalid input', { issues, ...extra })
    this.issues = issues
  }
}

/**
 * A write whose column type conflicts with the dataset's fixed schema; `row` the first row with
 * the other type, `line` the CSV or NDJSON body line it starts on.
 */
export class SchemaConflictError extends StorageError {
  constructor(column: string, expected: string, got: string, row?: number, line?: number) {
    const where = row !== undefined ? ` (row ${row}${line !== undefined ? `, line ${line}` : ''})` : ''
    super(409, 'schema_conflict', `column '${column}' has type ${expected} in the dataset, the write has ${got}${where}`, {
      column,
      expected,
      got,
      ...(row !== undefined ? { row } : {}),
      ...(row !== undefined && line !== undefined ? { line } : {}),
    })
  }
}

/** `append` found keys that already exist; nothing was written. */
export class DuplicateKeyError extends StorageError {
  constructor(keys: { symbol: string; timestamp: string; row?: number }[], total: number) {
    const sample = keys
      .slice(0, 5)
      .map((k) => `${k.symbol}@${k.timestamp}`)
      .join(', ')
    super(409, 'duplicate_key', `append rejected: ${total} key(s) already exist: ${sample}${total > 5 ? ', ...' : ''}`, {
      keys: keys.slice(0, 100),
      total,
    })
  }
}

/** The configuration is invalid; `path` names the offending setting. */
export class ConfigError extends StorageError {
  constructor(message: string, issues: { path: string; message: string }[] = []) {
    super(500, 'config_error', message, { issues })
  }
}

/** A conditional write lost (HTTP 412/409 on object stores, EEXIST locally). Internal. */
export class PreconditionFailedError extends StorageError {
  constructor(key: string, cause?: unknown) {
    super(412, 'precondition_failed', `conditional write to '${key}' lost a race`, { key }, { cause })
  }
}

/** The store cannot give the guarantees asked for (e.g. ignores conditional writes). */
export class StoreCapabilityError extends StorageError {
  constructor(message: string, details?: ErrorDetails) {
    super(503, 'store_capability', message, details)
  }
}

/** The store failed in a way retries did not fix. */
export class StoreError extends StorageError {
  constructor(message: string, details?: ErrorDetails, cause?: unknown) {
    super(502, 'store_error', message, details, { cause })
  }
}

/** Too much contention: a commit kept losing races past the retry budget. */
export class CommitConflictError extends StorageError {
  constructor(partition: string, attempts: number) {
    super(503, 'commit_conflict', `gave up committing '${partition}' after ${attempts} attempts`, { partition, attempts })
  }
}

/**
 * A commit whose outcome could not be learned (the store's answer was lost and re-reading it
 * failed, or the evidence was overwritten): it may or may not have been applied. Nothing the
 * call wrote was deleted; retrying the same upsert/append/replace/delete is safe.
 */
export class CommitInDoubtError extends StorageError {
  constructor(what: string, cause?: unknown, details?: ErrorDetails) {
    const why = cause instanceof Error ? `: ${cause.message}` : ''
    super(
      503,
      'commit_in_doubt',
      `the commit of '${what}' may or may not have been applied${why}`,
      { what, ...details },
      { cause },
    )
  }
}

/**
 * A put with a `deadline` that had passed before the write could be published: the store did
 * not write (and will never write) the object.
 */
export class DeadlinePassedError extends StorageError {
  constructor(key: string) {
    super(503, 'deadline_passed', `the write of '${key}' was not published: its deadline had passed`, { key })
  }
}

/** A maintenance run lost its dataset lease (another run took it over): it stops before committing. */
export class LeaseLostError extends StorageError {
  constructor(dataset: string) {
    super(409, 'lease_lost', `maintenance of '${dataset}' lost its lease to another run`, { dataset })
  }
}

export class ClosedError extends StorageError {
  constructor() {
    super(500, 'closed', 'storage is closed')
  }
}

/** The request body exceeds the configured limit; nothing was stored. */
export class PayloadTooLargeError extends StorageError {
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', `request body exceeds the limit of ${limitBytes} bytes`, { limitBytes })
  }
}

/**
 * A configured limit (`storage.limits.<limit>`) was passed; nothing was stored. 413 for a request
 * too large (columns, partitions), 422 for a dataset that would grow past its limit, 408 for a
 * body that did not arrive in time.
 */
export class LimitExceededError extends StorageError {
  constructor(status: 408 | 413 | 422, limit: string, value: number, message: string) {
    super(status, 'limit_exceeded', message, { limit, value })
  }
}

/** The request body's media type is not one the route accepts. */
export class UnsupportedMediaTypeError extends StorageError {
  constructor(got: string | null, accepted: string[]) {
    super(
      415,
      'unsupported_media_type',
      `unsupported content type ${JSON.stringify(got)}: expected one of ${accepted.join(', ')}`,
      {
        got,
        accepted,
      },
    )
  }
}

/** No or an unknown bearer token. */
export class UnauthorizedError extends StorageError {
  constructor(message = 'a bearer token is required') {
    super(401, 'unauthorized', message)
  }
}

/** A valid token without the scope the route needs. */
export class ForbiddenError extends StorageError {
  constructor(scope: string) {
    super(403, 'forbidden', `this token lacks the '${scope}' scope`, { scope })
  }
}

/** A route or resource that does not exist. */
export class NotFoundError extends StorageError {
  constructor(what: string) {
    super(404, 'not_found', `${what} not found`)
  }
}

/** The request conflicts with the current state of the data (e.g. a link describes data since rewritten). */
export class ConflictError extends StorageError {
  constructor(message: string, details?: ErrorDetails) {
    super(409, 'conflict', message, details)
  }
}

// Errors of the lake, maintenance and the HTTP layer: defined here so every module takes its
// errors from one place, and `app.onError` renders them all the same way.

/** A file listed by the manifest was replaced meanwhile: re-plan from the fresh manifest. */
export class FileVanishedError extends StoreError {
  constructor(partition: string) {
    super(`a data file of ${partition} was replaced while planning`, { partition })
  }
}

/** The backend cannot run maintenance. */
export class MaintenanceUnsupportedError extends StorageError {
  constructor(backend: string) {
    super(501, 'not_supported', `backend '${backend}' has no maintenance`, { backend })
  }
}

/** Writes refused because the server has no tokens and was not told writes are open. */
export class WritesDisabledError extends StorageError {
  constructor(scope: 'write' | 'admin' = 'write') {
    super(403, 'forbidden', `${scope === 'write' ? 'writes' : 'admin routes'} disabled: configure API_TOKENS`, { scope })
  }
}

/** Reads refused because the server has no tokens and reads were not made public (the Worker default). */
export class ReadsDisabledError extends StorageError {
  constructor() {
    super(403, 'forbidden', 'reads disabled: configure API_TOKENS (or PUBLIC_READS=true to serve reads to anyone)', {
      scope: 'read',
    })
  }
}

/** Too many failed authentications from one client address. */
export class TooManyFailuresError extends StorageError {
  readonly retryAfterSeconds: number
  constructor(retryAfterSeconds: number) {
    super(429, 'too_many_requests', `too many failed authentications from this address: retry in ${retryAfterSeconds} s`, {
      retryAfterSeconds,
    })
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** A request the open local server refuses because of its `Host` or `Origin`. */
export class ForeignRequestError extends StorageError {
  constructor(header: 'host' | 'origin', value: string) {
    super(
      403,
      'forbidden',
      header === 'host'
        ? `Host ${JSON.stringify(value)} is not served: without API_TOKENS the API answers only to localhost, 127.0.0.1 and [::1] on its port (add names with ALLOWED_HOSTS, or set API_TOKENS)`
        : `cross-origin request from ${JSON.stringify(value)} refused: without API_TOKENS the API serves programs on this machine, not web pages of other origins (set API_TOKENS)`,
      { header },
    )
  }
}

/** A route exists at this path, but not for this method. */
export class MethodNotAllowedError extends StorageError {
  readonly allowed: string[]
  constructor(method: string, allowed: string[]) {
    super(405, 'method_not_allowed', `method ${method} not allowed here: expected ${allowed.join(', ')}`, { method, allowed })
    this.allowed = allowed
  }
}

/** The health check could not reach or use the backend. */
export class UnhealthyError extends StorageError {
  constructor(backend: string, checkedMs: number, reason: string, cause?: unknown) {
    super(503, 'unhealthy', `backend ${backend} check failed: ${reason}`, { ok: false, backend, checkedMs }, { cause })
  }
}

/** 429: too many bodies are already waiting to be parsed. */
export class BodiesBusyError extends StorageError {
  readonly retryAfterSeconds = 1
  constructor(queued: number) {
    super(
      429,
      'too_many_requests',
      `${queued} request bodies are already waiting to be parsed (limits.max_queued_bodies): retry later`,
      { limit: 'max_queued_bodies', value: queued },
    )
  }
}

/** A training request above a configured bound (422), or whose parts would be too large (413). */
export class TrainingLimitError extends StorageError {
  constructor(status: 413 | 422, field: string, message: string, details: Record<string, unknown>) {
    super(status, status === 413 ? 'payload_too_large' : 'limit_exceeded', `${field}: ${message}`, { field, ...details })
  }
}

/** Inline bodies would make the response too large. */
export class InlineTooLargeError extends StorageError {
  constructor(bytes: number, limitBytes: number, atLeast: boolean) {
    super(
      413,
      'payload_too_large',
      `inline bodies would total ${atLeast ? 'over ' : ''}${bytes} bytes, above the limit of ${limitBytes}: ` +
        'leave out inline (or set it to false) to get download links instead',
      { bytes, limitBytes },
    )
  }
}

// Internal signals: plain Errors that never reach a caller as such.

/** The reason a request's signal is aborted with when its time is up. */
export class RequestTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no complete answer within ${timeoutMs} ms`)
    this.name = 'RequestTimeout'
  }
}

/** The health check's own time limit passed (`GET /healthz` answers 503). */
export class HealthTimeout extends Error {}

/** A Parquet file uses something the fast decode path does not decode (the caller falls back to the general decoder). */
export class Unsupported extends Error {}
