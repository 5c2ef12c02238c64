/**
 * Append-only JSON-lines logs: one fsync'd line per event, so a line that is in the file was on
 * disk before the next step started (an intent before its request, an outcome after its answer).
 * A process killed mid-line leaves a partial last line, which readers skip.
 */

import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export class LogFile {
  private readonly fd: number

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a')
  }

  append(line: object): void {
    writeSync(this.fd, `${JSON.stringify(line)}\n`)
    fsyncSync(this.fd)
  }

  close(): void {
    closeSync(this.fd)
  }
}

/** The complete lines of one log (a torn last line is ignored). */
export function readLines<T>(path: string): T[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return []
  }
  const out: T[] = []
  const lines = text.split('\n')
  lines.pop() // after the last newline: empty, or a line cut by a kill
  for (const l of lines) {
    if (!l) continue
    try {
      out.push(JSON.parse(l) as T)
    } catch {
      // a torn line (cannot happen before the last one, but never trust a crashed writer)
    }
  }
  return out
}

/** Lines of every file in `dir` whose name ends with `suffix`. */
export function readAll<T>(dir: string, suffix: string): T[] {
  const out: T[] = []
  for (const f of readdirSync(dir).sort()) if (f.endsWith(suffix)) out.push(...readLines<T>(join(dir, f)))
  return out
}
