/**
 * Runs the DB benchmark (bench/db.ts) in a process of its own and prints its results as JSON on
 * the last line of stdout (progress goes to stderr).
 *   npx tsx bench/db-main.ts [--quick] [--table]   (--table: also print the table, on stderr)
 */
import { formatDb, runDbBench } from './db.js'

const results = await runDbBench({ quick: process.argv.includes('--quick') })
if (process.argv.includes('--table')) process.stderr.write(`\n${formatDb(results)}\n`)
process.stdout.write(`${JSON.stringify(results)}\n`)
