/**
 * The `friday` executable: runs the CLI on `process.argv` and exits with its code. `bin/friday.js`
 * imports the compiled copy (`dist/cli/bin.js`); tests run this source with tsx.
 */

import { main } from './index.js'

// a closed pipe (`friday query ... | head`) is not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})
const code = await main(process.argv)
// exit even if a client left a handle open, once stdout has taken everything written to it
process.stdout.write('', () => process.exit(code))
