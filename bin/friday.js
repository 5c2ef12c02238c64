#!/usr/bin/env node
// The `friday` command: runs the compiled CLI (dist/cli/bin.js, built by `npm run build`, which
// `npm ci` runs through `prepare`; the published package ships dist/). Plain JavaScript, no
// TypeScript loader at run time. Works as a package bin (npm resolves the symlink in
// node_modules/.bin to this file) and as `node bin/friday.js`.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const entry = new URL('../dist/cli/bin.js', import.meta.url)
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(`friday: ${fileURLToPath(entry)} is missing: run \`npm run build\` (or \`npm ci\`) first\n`)
  process.exit(1)
}
await import(entry.href)
