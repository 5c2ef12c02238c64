/**
 * HTTP benchmark: ingest rows/s (NDJSON and CSV bodies of 10k rows, 4 concurrent clients) and
 * symbol-day query latency (p50/p99), against the real Node entry point (functions/node.ts) on
 * a fresh local lake. Ingest is driven by 4 fetch clients from this process, latency by
 * autocannon; the server runs in its own process. To profile the server, pass Node flags for it in
 * HTTP_BENCH_SERVER_ARGS, e.g. `HTTP_BENCH_SERVER_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'`.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'

export interface HttpResults {
  rowsPerBody: number
  ingest: Record<
    'ndjson' | 'csv',
    {
      bodies: number
      seconds: number
      rowsPerSec: number
      /** Server CPU time (user + system, all its threads) per row; null where /proc is absent. */
      serverCpuUsPerRow: number | null
      non2xx: number
      errors: number
    }
  >
  query: { path: string; rows: number; requests: number; p50Ms: number; p99Ms: number; non2xx: number }
}

const ROWS_PER_BODY = 10_000
const SYMBOLS = 20

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    try {
      const r = await fetch(`${url}/healthz`)
      if (r.ok) return
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('server did not become healthy')
}

/** Body k: 10k consecutive minute bars of symbol k % 20, each body on its own stretch of time. */
function body(k: number, format: 'ndjson' | 'csv'): string {
  const symbol = `SYM${String(k % SYMBOLS).padStart(2, '0')}`
  const start = Date.UTC(2024, 0, 1) + Math.floor(k / SYMBOLS) * ROWS_PER_BODY * 60_000
  const lines: string[] = format === 'csv' ? ['symbol,timestamp,open,high,low,close,volume'] : []
  let price = 100 + (k % SYMBOLS)
  for (let i = 0; i < ROWS_PER_BODY; i++) {
    const o = price
    price += Math.sin(k * 31 + i) * 0.05
    const ts = new Date(start + i * 60_000).toISOString()
    const hi = Math.max(o, price) + 0.01
    const lo = Math.min(o, price) - 0.01
    const vol = 1000 + ((k * 7919 + i * 104729) % 9000)
    lines.push(
      format === 'csv'
        ? `${symbol},${ts},${o},${hi},${lo},${price},${vol}`
        : JSON.stringify({ symbol, timestamp: ts, open: o, high: hi, low: lo, close: price, volume: vol }),
    )
  }
  return `${lines.join('\n')}\n`
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere.
 * Per row, it moves less than rows/s when other processes compete for the cores (but it moves).
 */
async function cpuSeconds(pid: number | undefined): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return null
  }
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

export async function runHttpBench(options: { quick: boolean; root?: string }): Promise<HttpResults> {
  const dir = await mkdtemp(join(options.root ?? tmpdir(), 'friday-http-bench-'))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const serverArgs = (process.env.HTTP_BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean)
  const child = spawn(process.execPath, [...serverArgs, '--import', 'tsx', 'functions/node.ts'], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, DATA_DIR: dir, PORT: String(port), HOST: '127.0.0.1', API_TOKENS: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  try {
    await waitHealthy(url, child)
    const bodies = options.quick ? 20 : 100
    const ingest = {} as HttpResults['ingest']
    for (const format of ['ndjson', 'csv'] as const) {
      const payloads = Array.from({ length: bodies }, (_, k) => body(k, format))
      const contentType = format === 'csv' ? 'text/csv' : 'application/x-ndjson'
      // 4 clients posting bodies back to back; timed here because autocannon ends runs on its
      // 1-second reporting tick, too coarse for a run of a few seconds
      let next = 0
      let ok = 0
      let non2xx = 0
      let errors = 0
      const cpu0 = await cpuSeconds(child.pid)
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < payloads.length) {
            const payload = payloads[next++]
            try {
              const res = await fetch(`${url}/v1/datasets/http_${format}/rows`, {
                method: 'POST',
                headers: { 'content-type': contentType },
                body: payload,
              })
              await res.arrayBuffer()
              if (res.ok) ok++
              else non2xx++
            } catch {
              errors++
            }
          }
        }),
      )
      const seconds = (performance.now() - t0) / 1000
      const cpu1 = await cpuSeconds(child.pid)
      ingest[format] = {
        bodies: payloads.length,
        seconds,
        rowsPerSec: Math.round((ok * ROWS_PER_BODY) / seconds),
        serverCpuUsPerRow:
          cpu0 === null || cpu1 === null ? null : Math.round(((cpu1 - cpu0) * 1e8) / (payloads.length * ROWS_PER_BODY)) / 100,
        non2xx,
        errors,
      }
    }
    // symbol-day latency: one client, sequential requests
    const day = new Date(Date.UTC(2024, 0, 2)).toISOString().slice(0, 10)
    const path = `/v1/datasets/http_ndjson/rows?symbols=SYM00&start=${day}T00:00:00Z&end=${day}T23:59:59.999Z&format=json`
    const rows = ((await (await fetch(url + path)).json()) as unknown[]).length
    const q = await run({ url: url + path, connections: 1, duration: options.quick ? 3 : 10 })
    return {
      rowsPerBody: ROWS_PER_BODY,
      ingest,
      query: { path, rows, requests: q.requests.total, p50Ms: q.latency.p50, p99Ms: q.latency.p99, non2xx: q.non2xx },
    }
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r).once('error', r))
    await rm(dir, { recursive: true, force: true })
  }
}
