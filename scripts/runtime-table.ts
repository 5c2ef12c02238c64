/**
 * `npm run docs:runtimes`: renders the runtime support table of docs/runtimes.md from the runtime
 * matrix (test/helpers/runtime-matrix.ts), between its markers. test/runtime-matrix.test.ts fails
 * when the committed table differs from what this writes.
 */

import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { renderRuntimeTable, replaceRuntimeTable } from '../test/helpers/runtime-matrix.js'
import { ROOT } from '../test/helpers/runtime-process.js'

const path = join(ROOT, 'docs', 'runtimes.md')
const doc = await readFile(path, 'utf8')
const next = replaceRuntimeTable(doc, renderRuntimeTable())
if (next === doc) console.log('docs/runtimes.md: the runtime table is up to date')
else {
  await writeFile(path, next)
  console.log('docs/runtimes.md: runtime table rewritten')
}
