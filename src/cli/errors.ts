/** CLI errors and how any error becomes one line on stderr. */

import { type FieldIssue, StorageError, ValidationError } from '../core/errors.js'

/** A failure the CLI explains itself (exit code 1); `message` is shown as is. */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode = 1) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}

/** One issue as `field 'x': message`, with its row when known. */
export function formatIssue(issue: FieldIssue): string {
  const where = issue.row !== undefined ? `row ${issue.row}, ` : ''
  return `${where}field '${issue.field}': ${issue.message}`
}

/**
 * One line for any error: the StorageError message (which already names the first issue or,
 * for a config, all of them) plus the next few validation issues; other errors by message.
 */
export function formatError(err: unknown): string {
  if (err instanceof ValidationError && err.issues.length > 1) {
    const next = err.issues.slice(1, 4).map(formatIssue).join('; ')
    return `${err.message}; also: ${next}${err.issues.length > 4 ? '; ...' : ''}`
  }
  if (err instanceof StorageError || err instanceof CliError) return err.message
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message
  }
  return String(err)
}
