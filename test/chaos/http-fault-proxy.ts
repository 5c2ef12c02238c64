/**
 * An HTTP proxy on 127.0.0.1 that injects faults between the chaos processes and the S3 server:
 * random delays, connections dropped before forwarding, connections dropped after forwarding
 * (the request landed, its response is lost), HTTP 500s without forwarding and after forwarding
 * (landed, but reported failed), truncated responses and garbage (bytes that are not HTTP).
 * Requests are forwarded byte for byte with their Host header, so SigV4 signatures stay valid.
 * A request whose client gave up during a delay is not forwarded.
 */

import { randomBytes } from 'node:crypto'
import { Agent, createServer, type IncomingMessage, request, type Server } from 'node:http'
import { rng } from './model.js'

export const HTTP_FAULTS = ['delay', 'drop-before', 'drop-after', 'error-500', 'error-after', 'truncate', 'garbage'] as const
export type HttpFault = (typeof HTTP_FAULTS)[number]
const WEIGHTS: Record<HttpFault, number> = {
  delay: 35,
  'drop-before': 10,
  'drop-after': 20,
  'error-500': 15,
  'error-after': 20,
  truncate: 10,
  garbage: 5,
}

export interface HttpFaultProxy {
  url: string
  /** Faults injected, by kind. */
  counts: Record<string, number>
  requests(): number
  /** Off: a plain pass-through proxy. */
  setEnabled(on: boolean): void
  close(): Promise<void>
}

const ERROR_XML = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>chaos proxy</Message></Error>'

function collect(s: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    s.on('data', (b: Buffer) => parts.push(b))
    s.on('end', () => resolve(Buffer.concat(parts)))
    s.on('error', reject)
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function startHttpFaultProxy(options: {
  target: string
  rate: number
  seed: number
  maxDelayMs?: number
}): Promise<HttpFaultProxy> {
  const target = new URL(options.target)
  const r = rng(options.seed)
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const counts: Record<string, number> = {}
  let enabled = true
  let requests = 0
  const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0)
  const pick = (): HttpFault => {
    let x = r() * total
    for (const f of HTTP_FAULTS) {
      x -= WEIGHTS[f]
      if (x < 0) return f
    }
    return 'delay'
  }

  const server: Server = createServer(async (req, res) => {
    requests++
    const sock = req.socket
    try {
      const body = await collect(req)
      const fault = enabled && r() < options.rate ? pick() : null
      if (fault) counts[fault] = (counts[fault] ?? 0) + 1
      if (fault === 'delay') await sleep(20 + r() * (options.maxDelayMs ?? 400))
      if (fault === 'drop-before') return void sock.destroy()
      if (fault === 'garbage') return void sock.end(randomBytes(16 + Math.floor(r() * 200)))
      if (fault === 'error-500') {
        res.writeHead(500, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(ERROR_XML) })
        return void res.end(ERROR_XML)
      }
      if (sock.destroyed) return // the client gave up while we held the request
      const headers = { ...req.headers }
      delete headers.expect
      const up = await new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>((resolve, reject) => {
        const u = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (ur) =>
          collect(ur).then((b) => resolve({ status: ur.statusCode ?? 502, headers: ur.headers, body: b }), reject),
        )
        u.on('error', reject)
        u.end(body)
      })
      if (fault === 'drop-after') return void sock.destroy()
      if (fault === 'error-after') {
        res.writeHead(500, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(ERROR_XML) })
        return void res.end(ERROR_XML)
      }
      const h = { ...up.headers }
      if (h['transfer-encoding']) {
        delete h['transfer-encoding']
        h['content-length'] = String(up.body.length)
      }
      delete h.connection
      delete h['keep-alive']
      if (fault === 'truncate' && up.body.length > 1) {
        res.writeHead(up.status, h)
        res.write(up.body.subarray(0, Math.floor(up.body.length / 2)))
        setTimeout(() => sock.destroy(), 5)
        return
      }
      res.writeHead(up.status, h)
      res.end(up.body)
    } catch {
      sock.destroy()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    requests: () => requests,
    setEnabled: (on) => {
      enabled = on
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      agent.destroy()
    },
  }
}
