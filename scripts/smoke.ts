/**
 * Smoke-tests a running friday server (Deno Deploy, a Worker, `friday serve`, ...) with the steps
 * of test/helpers/runtime-smoke.ts: one line per step, exit 0 when all pass, 1 when one fails,
 * 2 on a usage error. The datasets it writes are new (`smoke_<8 hex>` and `<that>_train`) and
 * their rows are deleted at the end.
 *
 *   npx tsx scripts/smoke.ts <url> [--token T] [--backend B] [--dataset PREFIX] [--no-compaction]
 */

import { parseArgs } from 'node:util'
import { runSmoke, type SmokeContext, smokeContext } from '../test/helpers/runtime-smoke.js'

const USAGE = `usage: npx tsx scripts/smoke.ts <url> [--token T] [--backend B] [--dataset PREFIX] [--no-compaction]

  <url>            base URL of the server, e.g. http://127.0.0.1:8787 or https://friday.example.workers.dev
  --token T        bearer token with the admin scope (default: $FRIDAY_TOKEN; none: an open API)
  --backend B      the backend /healthz must name (local_parquet, s3_parquet, ...; default: any)
  --dataset PREFIX prefix of the datasets written: PREFIX and PREFIX_train, which must not exist
                   (default: smoke_<8 random hex>)
  --no-compaction  do not require the maintenance run to compact (for a file_rotation policy
                   that does not merge two small files)`

function usage(message: string): never {
  console.error(`smoke: ${message}\n\n${USAGE}`)
  process.exit(2)
}

let ctx: SmokeContext
try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      token: { type: 'string' },
      backend: { type: 'string' },
      dataset: { type: 'string' },
      'no-compaction': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  if (positionals.length !== 1)
    usage(positionals.length === 0 ? 'no URL given' : `one URL expected, got ${positionals.join(' ')}`)
  ctx = smokeContext({
    url: positionals[0],
    token: values.token ?? (process.env.FRIDAY_TOKEN || undefined),
    backend: values.backend,
    dataset: values.dataset,
    compaction: values['no-compaction'] ? false : undefined,
  })
} catch (err) {
  usage((err as Error).message)
}

console.log(`smoke: ${ctx.url} (datasets ${ctx.dataset}, ${ctx.trainDataset}${ctx.token ? '' : '; no token'})`)
const results = await runSmoke(ctx, (name, ok, ms, error, note, skipped) => {
  if (skipped) console.log(`- ${name}: ${error}`)
  else if (ok) console.log(`✓ ${name} (${ms} ms)${note ? `: ${note}` : ''}`)
  else console.log(`✗ ${name} (${ms} ms): ${error}`)
})
const passed = results.filter((r) => r.ok).length
console.log(`smoke: ${passed} of ${results.length} steps passed`)
process.exitCode = passed === results.length ? 0 : 1
