/**
 * A TCP proxy on 127.0.0.1 with faults on demand, for the database connections: `cut` (both
 * sides closed at once), `stall` (nothing forwarded for a while, then everything resumes), and
 * `halfOpen` (the server side is gone while the client's socket stays open and silent, until it is
 * reset after a while, like a connection lost behind a NAT).
 */

import { connect, createServer, type Server, type Socket } from 'node:net'

interface Conn {
  client: Socket
  upstream: Socket
  stalled: boolean
  blackhole: boolean
  up: Buffer[]
  down: Buffer[]
}

export interface TcpFaultProxy {
  port: number
  connections(): number
  counts: Record<string, number>
  cut(r: () => number): boolean
  stall(r: () => number, ms: number): boolean
  halfOpen(r: () => number, ms: number): boolean
  close(): Promise<void>
}

export async function startTcpFaultProxy(target: { host: string; port: number }): Promise<TcpFaultProxy> {
  const conns = new Set<Conn>()
  const counts: Record<string, number> = {}
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t)
      fn()
    }, ms)
    timers.add(t)
  }
  const server: Server = createServer((client) => {
    const upstream = connect(target)
    const c: Conn = { client, upstream, stalled: false, blackhole: false, up: [], down: [] }
    conns.add(c)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    client.on('data', (b: Buffer) => {
      if (c.blackhole) return
      if (c.stalled) c.up.push(b)
      else upstream.write(b)
    })
    upstream.on('data', (b: Buffer) => {
      if (c.blackhole) return
      if (c.stalled) c.down.push(b)
      else client.write(b)
    })
    const end = () => {
      conns.delete(c)
      upstream.destroy()
      if (!c.blackhole) client.destroy()
    }
    client.on('close', () => {
      conns.delete(c)
      upstream.destroy()
    })
    client.on('error', end)
    upstream.on('close', end)
    upstream.on('error', end)
  })
  const any = (r: () => number): Conn | undefined => {
    const live = [...conns].filter((c) => !c.blackhole && !c.stalled)
    return live.length ? live[Math.floor(r() * live.length)] : undefined
  }
  const count = (k: string) => {
    counts[k] = (counts[k] ?? 0) + 1
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const addr = server.address()
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    connections: () => conns.size,
    counts,
    cut(r) {
      const c = any(r)
      if (!c) return false
      count('cut')
      c.client.destroy()
      c.upstream.destroy()
      conns.delete(c)
      return true
    },
    stall(r, ms) {
      const c = any(r)
      if (!c) return false
      count('stall')
      c.stalled = true
      later(ms, () => {
        c.stalled = false
        for (const b of c.up.splice(0)) if (!c.upstream.destroyed) c.upstream.write(b)
        for (const b of c.down.splice(0)) if (!c.client.destroyed) c.client.write(b)
      })
      return true
    },
    halfOpen(r, ms) {
      const c = any(r)
      if (!c) return false
      count('half-open')
      c.blackhole = true
      c.upstream.destroy()
      later(ms, () => {
        c.client.resetAndDestroy()
        conns.delete(c)
      })
      return true
    },
    async close() {
      for (const t of timers) clearTimeout(t)
      for (const c of conns) {
        c.client.destroy()
        c.upstream.destroy()
      }
      conns.clear()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
