/**
 * Deno's own smoke test (`deno task test`; test/runtime-deno.test.ts runs it): the compiled
 * package in-process under Deno over a local lake in a temp dir. The app writes NDJSON and CSV,
 * reads JSON and Parquet back, rejects a bad batch with a 4xx, and one scheduled maintenance run
 * (what the entry's Deno.cron job calls) covers the dataset.
 */

import { parquetReadObjects } from 'hyparquet'
import { scheduledMaintenance } from '../../dist/maintenance/scheduled.js'
import { prepareServer } from '../../dist/server/node-server.js'

/** The part of Deno's API used here (the project does not install Deno's types). */
declare const Deno: {
  test(name: string, fn: () => Promise<void>): void
  makeTempDir(options?: { prefix?: string }): Promise<string>
  remove(path: string, options?: { recursive?: boolean }): Promise<void>
  stat(path: string): Promise<{ isFile: boolean }>
  version: { deno: string }
}

function assertEquals(actual: unknown, expected: unknown, what: string): void {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)]
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`)
}

const ROWS = [
  { symbol: 'AAPL', timestamp: '2024-01-02T14:30:00.000Z', close: 187.3, volume: 120300 },
  { symbol: 'AAPL', timestamp: '2024-01-02T14:31:00.000Z', close: 187.45, volume: 98100 },
  { symbol: 'MSFT', timestamp: '2024-01-02T14:30:00.000Z', close: 370.1, volume: 51000 },
]
const ROWS_URL = '/v1/datasets/bars_1m/rows'

Deno.test(`the app over a local lake, on Deno ${Deno.version.deno}`, async () => {
  const dir = await Deno.makeTempDir({ prefix: 'friday-deno-' })
  const { app, storage } = prepareServer({ env: { DATA_DIR: dir }, port: 8787 })
  const host = { host: '127.0.0.1:8787' } // the open local API answers loopback Host names only
  try {
    const health = await app.request('/healthz', { headers: host })
    assertEquals([health.status, ((await health.json()) as { backend?: string }).backend], [200, 'local_parquet'], 'GET /healthz')

    const ndjson = await app.request(ROWS_URL, {
      method: 'POST',
      headers: { ...host, 'content-type': 'application/x-ndjson' },
      body: `${JSON.stringify(ROWS[0])}\n${JSON.stringify(ROWS[1])}\n`,
    })
    assertEquals([ndjson.status, ((await ndjson.json()) as { rowsWritten?: number }).rowsWritten], [200, 2], 'POST NDJSON')
    const csv = await app.request(ROWS_URL, {
      method: 'POST',
      headers: { ...host, 'content-type': 'text/csv' },
      body: 'symbol,timestamp,close,volume\nMSFT,2024-01-02T14:30:00.000Z,370.1,51000\n',
    })
    assertEquals([csv.status, ((await csv.json()) as { rowsWritten?: number }).rowsWritten], [200, 1], 'POST CSV')

    const json = await app.request(`${ROWS_URL}?format=json`, { headers: host })
    assertEquals([json.status, await json.json()], [200, ROWS], 'GET JSON')
    const parquet = await app.request(`${ROWS_URL}?format=parquet`, { headers: host })
    assertEquals(parquet.headers.get('content-type'), 'application/vnd.apache.parquet', 'GET Parquet content-type')
    const rows = await parquetReadObjects({ file: await parquet.arrayBuffer() })
    assertEquals(
      rows.map((r) => [r.symbol, new Date(r.timestamp as number | Date).toISOString(), r.close, Number(r.volume)]),
      ROWS.map((r) => [r.symbol, r.timestamp, r.close, r.volume]),
      'GET Parquet rows',
    )

    const bad = await app.request(ROWS_URL, {
      method: 'POST',
      headers: { ...host, 'content-type': 'application/json' },
      body: JSON.stringify([{ symbol: 'AAPL', timestamp: 'not a time', close: 1 }]),
    })
    assertEquals(bad.status, 400, `POST a row with a bad timestamp (${await bad.text()})`)

    // the partition's first manifest version (the local lake publishes no _manifest.json hint for it)
    const manifest = await Deno.stat(
      `${dir}/_friday/bars_1m/symbol=AAPL/date=2024-01-02/_manifest.v${'1'.padStart(20, '0')}.json`,
    )
    assertEquals(manifest.isFile, true, 'manifest under DATA_DIR')

    const report = await scheduledMaintenance(storage, 'deno test')
    assertEquals(
      report.datasets.map((d) => [d.dataset, d.errors.length]),
      [['bars_1m', 0]],
      'scheduled maintenance report',
    )
  } finally {
    await storage.close()
    await Deno.remove(dir, { recursive: true })
  }
})
