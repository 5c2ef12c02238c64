/**
 * Runs the HTTP benchmark in a process of its own (load generators should not share a heap and
 * an event loop with the rest of the benchmark) and prints its results as JSON on stdout.
 *   npx tsx bench/http-main.ts [--quick]
 */
import { runHttpBench } from './http.js'

const results = await runHttpBench({ quick: process.argv.includes('--quick') })
process.stdout.write(`${JSON.stringify(results)}\n`)
