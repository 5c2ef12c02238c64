/**
 * A TCP proxy for fault injection: 127.0.0.1:<free port> -> `target` host:port, one upstream
 * socket per accepted connection, bytes forwarded both ways unchanged. Controls:
 *
 * - `cut()`: resets every open connection now (RST on both sides, like a dropped link);
 * - `stall()` / `resume()`: stop forwarding while keeping every socket open (half-open, like a
 *   partition: nothing is lost, bytes wait in the socket buffers); connections accepted while
 *   stalled reach the target only after `resume()`;
 * - `cutAfterClientSends(match)`: one shot; the next client chunk `match` accepts is forwarded,
 *   then the target's side is ended gracefully (so the server still acts on it) and the client's
 *   side reset (so the client never hears the answer);
 * - `accepted()` / `open()`: connections accepted so far / open now.
 *
 * Node-only test helper; also used by the chaos harness.
 */

import { connect, createServer, type Server, type Socket } from 'node:net'

export interface TcpProxyOptions {
  target: { host: string; port: number }
  /** Listening port (default 0: a free port). */
  port?: number
}

export interface TcpProxy {
  readonly host: string
  readonly port: number
  /** `host:port` of the proxy. */
  readonly address: string
  accepted(): number
  open(): number
  /** Resets every open connection (both sides); later connections are forwarded normally. */
  cut(): void
  /** Stops forwarding in both directions; sockets stay open (half-open). */
  stall(): void
  /** Forwards again, including what waited during the stall. */
  resume(): void
  readonly stalled: boolean
  /** See the file comment; resolves once it fired. */
  cutAfterClientSends(match: (chunk: Buffer) => boolean): Promise<void>
  close(): Promise<void>
}

interface Link {
  client: Socket
  server: Socket | null
  /** Chunks from the client not yet written upstream (stalled, or upstream still connecting). */
  pending: Buffer[]
  connected: boolean
}

/** Resets a socket (RST) where supported, else destroys it. */
function reset(socket: Socket | null): void {
  if (!socket || socket.destroyed) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const links = new Set<Link>()
  let total = 0
  let stalled = false
  let trigger: { match: (chunk: Buffer) => boolean; fired: () => void } | null = null

  const toServer = (link: Link, chunk: Buffer) => {
    if (stalled || !link.connected || !link.server) {
      link.pending.push(chunk)
      return
    }
    const t = trigger
    if (t?.match(chunk)) {
      trigger = null
      link.server.end(chunk) // the server reads the chunk, then EOF: it acts on it, then ends the session
      link.server.removeAllListeners('data') // its answer goes nowhere
      reset(link.client)
      links.delete(link)
      t.fired()
      return
    }
    link.server.write(chunk)
  }

  const flush = (link: Link) => {
    const waiting = link.pending.splice(0)
    for (const chunk of waiting) {
      if (!links.has(link)) return
      toServer(link, chunk)
    }
  }

  const openUpstream = (link: Link) => {
    const server = connect({ host: options.target.host, port: options.target.port })
    link.server = server
    server.setNoDelay(true)
    server.on('connect', () => {
      link.connected = true
      if (!stalled) flush(link)
    })
    server.on('data', (chunk) => {
      if (!link.client.destroyed) link.client.write(chunk)
    })
    const done = () => {
      if (!links.delete(link)) return
      reset(link.client)
    }
    server.on('close', done)
    server.on('error', done)
    if (stalled) server.pause()
  }

  const server: Server = createServer((client) => {
    total++
    const link: Link = { client, server: null, pending: [], connected: false }
    links.add(link)
    client.setNoDelay(true)
    client.on('data', (chunk) => toServer(link, chunk))
    const done = () => {
      if (!links.delete(link)) return
      link.server?.destroy()
    }
    client.on('close', done)
    client.on('error', done)
    if (stalled) client.pause()
    else openUpstream(link)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0

  return {
    host: '127.0.0.1',
    port,
    address: `127.0.0.1:${port}`,
    accepted: () => total,
    open: () => links.size,
    get stalled() {
      return stalled
    },
    cut() {
      for (const link of [...links]) {
        links.delete(link)
        reset(link.server)
        reset(link.client)
      }
    },
    stall() {
      stalled = true
      for (const link of links) {
        link.client.pause()
        link.server?.pause()
      }
    },
    resume() {
      stalled = false
      for (const link of [...links]) {
        if (!link.server) openUpstream(link)
        else {
          link.server.resume()
          if (link.connected) flush(link)
        }
        link.client.resume()
      }
    },
    cutAfterClientSends(match) {
      return new Promise<void>((resolve) => {
        trigger = { match, fired: resolve }
      })
    },
    async close() {
      for (const link of [...links]) {
        links.delete(link)
        link.server?.destroy()
        link.client.destroy()
      }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * A matcher for `cutAfterClientSends`: a chunk holding a Postgres simple-query message ('Q')
 * whose SQL text is `sql` (e.g. `COMMIT`), as `pg` and Neon send transaction control.
 */
export function pgSimpleQuery(sql: string): (chunk: Buffer) => boolean {
  const body = Buffer.from(`${sql}\u0000`, 'utf8')
  const message = Buffer.alloc(5 + body.length)
  message[0] = 0x51 // 'Q'
  message.writeInt32BE(4 + body.length, 1)
  body.copy(message, 5)
  return (chunk) => chunk.includes(message)
}
