/**
 * A rows read that fails after the response has started (issue 11: the client got a 200 and a
 * truncated body that looked complete). The storage is a real local lake behind a fault-injecting
 * wrapper whose scan throws on its Nth batch, once the test lets it (so the headers and the first
 * batch are out first). The client must see an error, in-process (`app.request`) and over the real
 * Node server (`startNodeServer`, with fetch and with node:http), and the server keeps serving.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Papa from 'papaparse'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { StoreError } from '../src/core/errors.js'
import type { DataStorage, ScanOptions, Table } from '../src/core/types.js'
import { decodeParquet } from '../src/parquet/index.js'
import { type RunningServer, startNodeServer } from '../src/server/node-server.js'
import { localLake, type TestLake, testApp } from './helpers/http.js'

/** Rows per scan batch under the wrapper, and the rows written: three batches. */
const BATCH = 5
const SYMBOLS = ['AAA', 'BBB', 'CCC']
const FORMATS = ['json', 'ndjson', 'csv', 'parquet'] as const
type Format = (typeof FORMATS)[number]

interface Fault {
  /** The 1-based scan batch that throws. */
  failAt: number
  /** The throwing batch waits for this first (the test opens it once the response has started). */
  gate: Promise<void>
}

/**
 * A fault-injecting wrapper around a real storage: everything passes through, except that `scan`
 * reads batches of `BATCH` rows and, while a fault is armed, throws a `StoreError` on batch
 * `failAt` once `gate` opens (each fault fires once).
 */
function withScanFault(storage: DataStorage, take: () => Fault | undefined): DataStorage {
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === 'scan') {
        return (dataset: string, options?: ScanOptions): AsyncIterable<Table> => ({
          async *[Symbol.asyncIterator]() {
            const fault = take()
            let n = 0
            for await (const batch of target.scan(dataset, { ...options, batchSize: BATCH })) {
              if (fault && ++n === fault.failAt) {
                await fault.gate
                throw new StoreError(`injected fault: batch ${n} of the scan`, { injected: true })
              }
              yield batch
            }
          },
        })
      }
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/** A fault for the next scan, and the function that opens its gate. */
function armFault(failAt = 2): { fault: Fault; release: () => void } {
  let release!: () => void
  const gate = new Promise<void>((r) => {
    release = r
  })
  return { fault: { failAt, gate }, release }
}

/** The storage `startNodeServer` builds (through `createStorage` of src/node.ts), wrapped. */
const hooks = vi.hoisted(() => ({ fault: undefined as Fault | undefined }))
vi.mock('../src/node.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/node.js')>()
  return {
    ...real,
    createStorage: (...args: Parameters<typeof real.createStorage>) =>
      withScanFault(real.createStorage(...args), () => {
        const f = hooks.fault
        hooks.fault = undefined
        return f
      }),
  }
})

function rows() {
  const out = []
  for (const symbol of SYMBOLS) {
    for (let m = 0; m < BATCH; m++) {
      out.push({ symbol, timestamp: new Date(Date.UTC(2024, 0, 2, 14, 30 + m)).toISOString(), close: 100 + m })
    }
  }
  return out
}

const dec = new TextDecoder()
const concat = (chunks: Uint8Array[]) => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let off = 0
  for (const c of chunks) {
    out.set(c, off)
    off += c.byteLength
  }
  return out
}

/**
 * Reads a body to its end; `afterFirst` runs once the first chunk is in. Gives the bytes read and
 * the error the read ended with (undefined: the body ended cleanly).
 */
async function readBody(
  body: ReadableStream<Uint8Array>,
  afterFirst: () => void = () => {},
): Promise<{ bytes: Uint8Array; error: unknown }> {
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { bytes: concat(chunks), error: undefined }
      chunks.push(value)
      if (chunks.length === 1) afterFirst()
    }
  } catch (error) {
    return { bytes: concat(chunks), error: error ?? new Error('rejected without a reason') }
  }
}

/** What the client holds of a body cut short after the first batch, per format. */
async function expectCutBody(format: Format, bytes: Uint8Array): Promise<void> {
  const text = dec.decode(bytes)
  // a backend failure shows a generic message and a ref, the store's own text stays in the server log
  const message = expect.stringMatching(/^the storage backend failed \(ref [0-9a-f]{8}; the server log has the details\)$/)
  const record = { code: 'store_error', message, details: { ref: expect.stringMatching(/^[0-9a-f]{8}$/) } }
  switch (format) {
    case 'ndjson': {
      const lines = text.trimEnd().split('\n')
      expect(lines).toHaveLength(BATCH + 1)
      expect(JSON.parse(lines[0])).toMatchObject({ symbol: 'AAA', close: 100 })
      expect(JSON.parse(lines[BATCH])).toEqual({ error: record })
      break
    }
    case 'json': {
      expect(() => JSON.parse(text)).toThrow() // never a valid document
      const elements = JSON.parse(`${text.trimEnd()}]`) // what a streaming array parser sees
      expect(elements).toHaveLength(BATCH + 1)
      expect(elements[BATCH]).toEqual({ error: record })
      break
    }
    case 'csv': {
      const lines = text.split('\r\n')
      expect(lines[0]).toBe('symbol,timestamp,close')
      expect(lines[BATCH + 1]).toMatch(/^"error: store_error: the storage backend failed \(ref [0-9a-f]{8}; /)
      expect(text).not.toContain('injected fault')
      const parsed = Papa.parse(text, { header: true })
      expect(parsed.errors.map((e) => e.code)).toContain('MissingQuotes')
      break
    }
    case 'parquet':
      expect(dec.decode(bytes.subarray(0, 4))).toBe('PAR1')
      await expect(decodeParquet(bytes)).rejects.toThrow() // no footer
      break
  }
}

let errorLog: ReturnType<typeof vi.spyOn>
beforeEach(() => {
  errorLog = vi.spyOn(console, 'error').mockImplementation(() => {})
  return () => errorLog.mockRestore()
})

describe('rows read failing mid-stream, in-process (app.request)', () => {
  let lake: TestLake
  let fault: Fault | undefined
  let app: ReturnType<typeof testApp>
  beforeAll(async () => {
    lake = await localLake()
    await lake.storage.write('bars', rows())
    app = testApp(
      withScanFault(lake.storage, () => {
        const f = fault
        fault = undefined
        return f
      }),
    )
  })
  afterAll(async () => {
    await lake?.cleanup()
  })

  it.each(FORMATS)('%s: without a fault the body ends cleanly (control)', async (format) => {
    const res = await app.request(`/v1/datasets/bars/rows?format=${format}`)
    expect(res.status).toBe(200)
    const { bytes, error } = await readBody(res.body!)
    expect(error).toBeUndefined()
    if (format === 'parquet') expect((await decodeParquet(bytes)).length).toBe(SYMBOLS.length * BATCH)
    else expect(dec.decode(bytes)).toContain('CCC')
  })

  it.each(FORMATS)('%s: the body ends with the error record, then the stream errors', async (format) => {
    const armed = armFault()
    fault = armed.fault
    const res = await app.request(`/v1/datasets/bars/rows?format=${format}`)
    expect(res.status).toBe(200) // the first batch was fine: the response started
    const { bytes, error } = await readBody(res.body!, armed.release)
    expect(error).toBeInstanceOf(StoreError)
    expect((error as Error).message).toBe('injected fault: batch 2 of the scan')
    await expectCutBody(format, bytes)
    expect(errorLog).toHaveBeenCalledWith(
      '[http] GET /v1/datasets/bars/rows failed after the response started:',
      expect.any(StoreError),
    )
  })
})

describe('rows read failing mid-stream, over the real Node server', () => {
  let dir: string
  let server: RunningServer
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-stream-errors-'))
    server = await startNodeServer({
      port: 0,
      config: { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } },
      env: {},
      log: () => {},
    })
    const res = await fetch(`${server.url}/v1/datasets/bars/rows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(rows()),
    })
    expect(res.status).toBe(200)
  })
  afterAll(async () => {
    await server?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** The server still answers, and a whole read comes back complete. */
  async function expectServerServes(format: Format): Promise<void> {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    const res = await fetch(`${server.url}/v1/datasets/bars/rows?format=${format}`)
    expect(res.status).toBe(200)
    const { bytes, error } = await readBody(res.body!)
    expect(error).toBeUndefined()
    if (format === 'parquet') expect((await decodeParquet(bytes)).length).toBe(SYMBOLS.length * BATCH)
    else expect(dec.decode(bytes)).toContain('CCC')
  }

  it.each(FORMATS)('%s over fetch: a network error after the record, not a clean end', async (format) => {
    const armed = armFault()
    hooks.fault = armed.fault
    const res = await fetch(`${server.url}/v1/datasets/bars/rows?format=${format}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('transfer-encoding')).toBe('chunked')
    const { bytes, error } = await readBody(res.body!, armed.release)
    expect(error).toBeInstanceOf(TypeError) // undici: 'terminated' (the socket closed mid-body)
    expect((error as TypeError).message).toBe('terminated')
    await expectCutBody(format, bytes)
    await expectServerServes(format)
  })

  it('ndjson over node:http: the response is aborted (ECONNRESET), never complete', async () => {
    const armed = armFault()
    hooks.fault = armed.fault
    const outcome = await new Promise<{ status?: number; complete: boolean; error?: NodeJS.ErrnoException; text: string }>(
      (resolve, reject) => {
        const req = httpGet(`${server.url}/v1/datasets/bars/rows?format=ndjson`, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.once('data', () => armed.release())
          res.on('data', (chunk: string) => {
            text += chunk
          })
          res.on('end', () => resolve({ status: res.statusCode, complete: res.complete, text }))
          res.on('error', (error) => resolve({ status: res.statusCode, complete: res.complete, error, text }))
        })
        req.on('error', reject)
      },
    )
    expect(outcome.status).toBe(200)
    expect(outcome.complete).toBe(false)
    expect(outcome.error?.code).toBe('ECONNRESET')
    await expectCutBody('ndjson', new TextEncoder().encode(outcome.text))
    await expectServerServes('ndjson')
  })
})
