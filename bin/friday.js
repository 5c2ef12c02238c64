#!/usr/bin/env node
// The `friday` command: registers tsx (TypeScript on the fly; the package ships sources, no
// build step), then runs src/cli/index.ts. Works as a package bin (npm resolves the symlink in
// node_modules/.bin to this file) and as `node bin/friday.js`.
import { register } from 'tsx/esm/api'

register()
const { main } = await import(new URL('../src/cli/index.ts', import.meta.url).href)
// a closed pipe (`friday query ... | head`) is not an error
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})
const code = await main(process.argv)
// exit even if a client left a handle open, once stdout has taken everything written to it
process.stdout.write('', () => process.exit(code))
