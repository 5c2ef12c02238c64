/**
 * How tests run the `friday` CLI: its TypeScript sources through tsx (`node --import <tsx>
 * src/cli/bin.ts`), the same program `bin/friday.js` runs from the build, so CLI tests never
 * depend on a stale or missing `dist/`. The built bin itself is tested by test/package.test.ts.
 */

import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const CLI = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))

/** `node` arguments before the CLI's own: `spawn(process.execPath, [...FRIDAY_CLI_ARGS, 'ls'])`. Any cwd works. */
export const FRIDAY_CLI_ARGS: readonly string[] = ['--import', TSX, CLI]

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs the CLI in `cwd` with DATA_DIR=`dataDir` (no STORAGE_BACKEND/FRIDAY_ENV from the outer
 * environment; `env` adds or overrides), `input` on its standard input (none: stdin ignored);
 * stdio are pipes, never a TTY. Fails after 45 s.
 */
export function runFriday(
  args: string[],
  opts: { cwd: string; dataDir: string; env?: Record<string, string>; input?: string },
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...FRIDAY_CLI_ARGS, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, DATA_DIR: opts.dataDir, STORAGE_BACKEND: '', FRIDAY_ENV: '', ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d) => (stdout += d))
    child.stderr!.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`friday ${args.join(' ')} still running after 45 s:\n${stdout}${stderr}`))
    }, 45_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    if (opts.input !== undefined) child.stdin!.end(opts.input)
  })
}
