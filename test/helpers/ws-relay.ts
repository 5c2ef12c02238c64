/**
 * A WebSocket-to-TCP relay, so the Neon serverless driver (which speaks the Postgres wire
 * protocol over a WebSocket) can reach a plain PostgreSQL in tests. Point the driver at it with
 * `neonConfig.wsProxy = (host, port) => \`127.0.0.1:${relay.port}/v1?address=${host}:${port}\``.
 *
 * Each WebSocket gets its own TCP socket to `address` (or the fixed target); binary frames are
 * piped both ways. The TCP side is closed when the client sends the Terminate message ('X'),
 * otherwise the driver's `end()` would wait for a close that never comes.
 */

import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { type RawData, WebSocket, WebSocketServer } from 'ws'

export interface WsRelay {
  port: number
  /** Open client connections (for tests that check nothing leaks). */
  connections(): number
  close(): Promise<void>
}

/** The Postgres frontend Terminate message: 'X' then the length 4. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4])

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

/** Starts a relay on 127.0.0.1 (port 0 = a free port). `target` overrides the `address` query. */
export async function startWsRelay(options: { port?: number; target?: { host: string; port: number } } = {}): Promise<WsRelay> {
  const http: Server = createServer((_req, res) => {
    res.writeHead(426).end('WebSocket only')
  })
  const wss = new WebSocketServer({ server: http })
  const open = new Set<{ ws: WebSocket; tcp: Socket }>()

  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://relay')
    let host = options.target?.host
    let port = options.target?.port
    if (!host) {
      const address = url.searchParams.get('address') ?? ''
      const colon = address.lastIndexOf(':')
      host = colon > 0 ? address.slice(0, colon) : address
      port = colon > 0 ? Number(address.slice(colon + 1)) : 5432
    }
    if (!host || !port || !Number.isInteger(port)) {
      ws.close(1008, 'missing or bad address')
      return
    }
    const tcp = connect({ host, port })
    const entry = { ws, tcp }
    open.add(entry)
    const pending: Buffer[] = []
    let connected = false
    tcp.setNoDelay(true)
    tcp.on('connect', () => {
      connected = true
      for (const b of pending) tcp.write(b)
      pending.length = 0
    })
    tcp.on('data', (chunk) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(chunk, { binary: true })
    })
    const finish = () => {
      open.delete(entry)
      if (!tcp.destroyed) tcp.destroy()
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close()
    }
    tcp.on('close', finish)
    tcp.on('error', finish)
    ws.on('close', finish)
    ws.on('error', finish)
    ws.on('message', (data) => {
      const buf = toBuffer(data)
      if (connected) tcp.write(buf)
      else pending.push(buf)
      // the client said goodbye: close the TCP side so both ends see the connection end
      if (buf.length >= 5 && buf.subarray(buf.length - 5).equals(TERMINATE)) {
        if (connected) tcp.end()
        else tcp.once('connect', () => tcp.end())
      }
    })
  })

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const address = http.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    port,
    connections: () => open.size,
    close: async () => {
      for (const { ws, tcp } of open) {
        tcp.destroy()
        ws.terminate()
      }
      open.clear()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}
