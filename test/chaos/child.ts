/** What the harness passes to each chaos child process, and small helpers they share. */

import { join } from 'node:path'
import { LogFile } from './log-file.js'
import type { StoreSpec } from './open-storage.js'

export interface ChildArgs {
  spec: StoreSpec
  /** Process name, unique per incarnation (`w1.0`, `w1.1` after a restart, `m.0`, `r.0`). */
  proc: string
  seed: number
  /** Directory of the run's logs. */
  dir: string
  /** Upper bound of the random pause between two operations, ms. */
  pauseMs: number
  /** reader: granularity at which writes must be atomic (see `checker.ts`). */
  atomicity?: 'partition' | 'none'
}

/** `<dir>/<proc>.<kind>.jsonl`. */
export function childLog(args: ChildArgs, kind: string): LogFile {
  return new LogFile(join(args.dir, `${args.proc}.${kind}.jsonl`))
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
