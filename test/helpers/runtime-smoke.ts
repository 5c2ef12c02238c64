/**
 * The HTTP smoke checks a runtime entry passes once started (test/runtime-deno.test.ts,
 * test/runtime-node-lts.test.ts): /healthz names the backend; rows written as NDJSON and CSV read
 * back exactly as JSON and Parquet; a batch with a bad timestamp is a 400 naming the field and
 * writes none of its rows; a write without a token is a 401 when the server has API tokens.
 */

import { parquetReadObjects } from 'hyparquet'
import { expect, it } from 'vitest'
import type { Running } from './runtime-process.js'

export const SMOKE_DATASET = 'bars_1m'
/** What the checks write (NDJSON: the AAPL rows, CSV: the MSFT row) and expect to read back. */
export const SMOKE_ROWS = [
  { symbol: 'AAPL', timestamp: '2024-01-02T14:30:00.000Z', close: 187.3, volume: 120300 },
  { symbol: 'AAPL', timestamp: '2024-01-02T14:31:00.000Z', close: 187.45, volume: 98100 },
  { symbol: 'MSFT', timestamp: '2024-01-02T14:30:00.000Z', close: 370.1, volume: 51000 },
]

/** Registers the checks; `auth` goes with every request but /healthz (`{}`: an open API). */
export function ingestSmokeTests(server: () => Running, auth: Record<string, string>, backend: string): void {
  const rowsUrl = () => `${server().url}/v1/datasets/${SMOKE_DATASET}/rows`

  it('answers GET /healthz', async () => {
    const res = await fetch(`${server().url}/healthz`)
    expect(res.status, await res.clone().text()).toBe(200)
    expect(await res.json()).toMatchObject({ ok: true, backend })
  })

  it('stores rows POSTed as NDJSON and CSV and returns them as JSON and Parquet', async () => {
    const ndjson = await fetch(rowsUrl(), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/x-ndjson' },
      body: `${JSON.stringify(SMOKE_ROWS[0])}\n${JSON.stringify(SMOKE_ROWS[1])}\n`,
    })
    expect(ndjson.status, await ndjson.clone().text()).toBe(200)
    expect(await ndjson.json()).toMatchObject({ rowsWritten: 2 })
    const csv = await fetch(rowsUrl(), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'text/csv' },
      body: 'symbol,timestamp,close,volume\nMSFT,2024-01-02T14:30:00.000Z,370.1,51000\n',
    })
    expect(csv.status, await csv.clone().text()).toBe(200)
    expect(await csv.json()).toMatchObject({ rowsWritten: 1 })

    const json = await fetch(`${rowsUrl()}?format=json`, { headers: auth })
    expect(json.status).toBe(200)
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await json.json()).toEqual(SMOKE_ROWS)

    const parquet = await fetch(`${rowsUrl()}?format=parquet`, { headers: auth })
    expect(parquet.status).toBe(200)
    expect(parquet.headers.get('content-type')).toBe('application/vnd.apache.parquet')
    const rows = await parquetReadObjects({ file: await parquet.arrayBuffer() })
    expect(rows.map((r) => [r.symbol, new Date(r.timestamp).toISOString(), r.close, Number(r.volume)])).toEqual(
      SMOKE_ROWS.map((r) => [r.symbol, r.timestamp, r.close, r.volume]),
    )
  })

  it('refuses a batch with a bad timestamp with 400 naming the field, and writes none of it', async () => {
    const bad = await fetch(rowsUrl(), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify([
        { ...SMOKE_ROWS[0], symbol: 'NVDA' },
        { ...SMOKE_ROWS[1], symbol: 'NVDA', timestamp: 'not a time' },
      ]),
    })
    expect(bad.status).toBe(400)
    expect(JSON.stringify(await bad.json())).toMatch(/timestamp/)
    const json = await fetch(`${rowsUrl()}?format=json`, { headers: auth })
    expect(await json.json()).toEqual(SMOKE_ROWS)
  })

  if (Object.keys(auth).length > 0) {
    it('refuses a write without a token', async () => {
      const res = await fetch(rowsUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(SMOKE_ROWS),
      })
      expect(res.status).toBe(401)
    })
  }
}
