/** How a failed multi-partition lake write reports what it stored (see `src/concurrency.ts` for the fan-out). */

import type { Settled } from '../concurrency.js'
import { StorageError, StoreError } from '../core/errors.js'
import type { PartitionRef } from '../core/types.js'

/** What a multi-partition write stored before it failed: attached to its error as `details.written`. */
export interface WrittenOutcome {
  /** Partitions whose commit landed. */
  committed: string[]
  /** Rows of the call in those partitions (for a delete: rows deleted). */
  rowsCommitted: number
  /** Partitions whose commit may or may not have landed. */
  inDoubt: string[]
  /** Partitions where nothing was written. */
  notWritten: string[]
}

/**
 * The error of a write whose partitions ended as `settled` says exactly what was stored: its
 * message gains one sentence and its details a `written` record. The first failure (in batch
 * order) is the error thrown; other failures are listed in `details.otherErrors`.
 */
export function writeFailure(
  refs: readonly PartitionRef[],
  settled: readonly Settled<{ committed: boolean; rows: number }>[],
  isInDoubt: (err: unknown) => boolean,
): unknown {
  const out: WrittenOutcome = { committed: [], rowsCommitted: 0, inDoubt: [], notWritten: [] }
  const errors: unknown[] = []
  settled.forEach((s, i) => {
    const path = refs[i].path
    if (s.ok) {
      if (s.value.committed) {
        out.committed.push(path)
        out.rowsCommitted += s.value.rows
      } else out.notWritten.push(path)
    } else if ('error' in s) {
      errors.push(s.error)
      if (isInDoubt(s.error)) out.inDoubt.push(path)
      else out.notWritten.push(path)
    } else out.notWritten.push(path)
  })
  const first = errors[0]
  const list = (paths: string[]) => `${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', ...' : ''}`
  const said: string[] = []
  if (out.committed.length)
    said.push(`${out.rowsCommitted} row(s) in ${out.committed.length} partition(s) were committed (${list(out.committed)})`)
  if (out.inDoubt.length)
    said.push(`${out.inDoubt.length} partition(s) may or may not have been committed (${list(out.inDoubt)})`)
  const sentence = said.length ? `; ${said.join('; ')}; nothing else was written` : '; nothing was written'
  const others = errors.slice(1, 6).map((e) => (e instanceof Error ? e.message : String(e)))
  const extra = { written: out, ...(others.length ? { otherErrors: others } : {}) }
  if (first instanceof StorageError) {
    Object.assign(first, { message: `${first.message}${sentence}`, details: { ...first.details, ...extra } })
    return first
  }
  const message = first instanceof Error ? first.message : String(first)
  return new StoreError(`${message}${sentence}`, extra, first)
}

/** The error of a write refused before any partition was touched (e.g. append's key check): nothing was written. */
export function refusedBeforeWriting(err: unknown, refs: readonly PartitionRef[]): unknown {
  return writeFailure(
    refs,
    refs.map((_, i) => (i === 0 ? { ok: false, error: err } : { ok: false, skipped: true })),
    () => false,
  )
}
