/**
 * How tests run the `friday` CLI: its TypeScript sources through tsx (`node --import <tsx>
 * src/cli/bin.ts`), the same program `bin/friday.js` runs from the build, so CLI tests never
 * depend on a stale or missing `dist/`. The built bin itself is tested by test/package.test.ts.
 */

import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const CLI = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url))

/** `node` arguments before the CLI's own: `spawn(process.execPath, [...FRIDAY_CLI_ARGS, 'ls'])`. Any cwd works. */
export const FRIDAY_CLI_ARGS: readonly string[] = ['--import', TSX, CLI]
