import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DuckDBInstance } from '@duckdb/node-api'
import { afterAll, describe, expect, it } from 'vitest'
import { nativeCodecs, nodeSha256Hex } from '../src/backends/node/native-codecs.js'
import type { Table } from '../src/core/types.js'
import { sha256 } from '../src/lake/manifest.js'
import { decodeParquet, encodeParquet, jsCodecs } from '../src/parquet/index.js'

function bars(n: number): Table {
  const symbol = new Array<string>(n).fill('AAPL')
  const timestamp = new Float64Array(n)
  const close = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    timestamp[i] = 1_704_205_800_000_000 + i * 60_000_000
    close[i] = 187 + Math.sin(i) * 3
  }
  return {
    length: n,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'close', type: 'float64' },
    ],
    columns: {
      symbol: { type: 'string', values: symbol },
      timestamp: { type: 'timestamp', values: timestamp },
      close: { type: 'float64', values: close },
    },
  }
}

describe('native snappy (Node entry)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'friday-native-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('loads on this platform and produces files hyparquet and DuckDB read exactly', async () => {
    const table = bars(5000)
    const codecs = nativeCodecs()
    expect(codecs.snappy?.compress).toBeTypeOf('function')
    expect(codecs.snappy?.compress).not.toBe(jsCodecs().snappy?.compress)
    const js = encodeParquet(table)
    const native = encodeParquet(table, { codecs })
    // the same Parquet structure; the compressed pages may differ byte for byte
    expect(native).not.toEqual(js)
    const back = await decodeParquet(native)
    expect(back.length).toBe(5000)
    expect(Array.from(back.columns.timestamp.values as Float64Array)).toEqual(
      Array.from(table.columns.timestamp.values as Float64Array),
    )
    expect(Array.from(back.columns.close.values as Float64Array)).toEqual(Array.from(table.columns.close.values as Float64Array))
    expect(Math.abs(native.length - js.length)).toBeLessThan(js.length * 0.2)
    // each reads what the other wrote
    expect((await decodeParquet(js, { codecs })).columns.close.values).toEqual(table.columns.close.values)
    expect((await decodeParquet(native, { codecs: jsCodecs() })).columns.close.values).toEqual(table.columns.close.values)

    const path = join(dir, 'native.parquet')
    writeFileSync(path, native)
    const con = await (await DuckDBInstance.create()).connect()
    const r = await con.runAndReadAll(
      `SELECT count(*)::INT AS n, sum(close) AS s, max(epoch_us("timestamp"))::BIGINT AS t FROM read_parquet('${path}')`,
    )
    const row = r.getRowObjectsJS()[0] as { n: number; s: number; t: bigint }
    expect(row.n).toBe(5000)
    expect(row.s).toBeCloseTo(
      (table.columns.close.values as Float64Array).reduce((a, b) => a + b, 0),
      6,
    )
    expect(row.t).toBe(BigInt(1_704_205_800_000_000 + 4999 * 60_000_000))
  })
})

describe('synchronous SHA-256 (Node entry)', () => {
  it('gives the same checksums as Web Crypto', async () => {
    const inputs = [new Uint8Array(0), new TextEncoder().encode('abc'), encodeParquet(bars(1000))]
    const web = await Promise.all(inputs.map((b) => sha256(b)))
    expect(web[1]).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    const native = await Promise.all(inputs.map((b) => sha256(b, nodeSha256Hex)))
    // node:crypto answers synchronously: the promises are already settled when created
    let settled = 0
    for (const p of inputs.map((b) => sha256(b, nodeSha256Hex))) void p.then(() => settled++)
    await Promise.resolve()
    expect(settled).toBe(inputs.length)
    expect(native).toEqual(web)
  })
})
