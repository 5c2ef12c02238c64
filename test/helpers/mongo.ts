/**
 * A MongoDB wire-protocol server for tests: the real MongoDB at `MONGODB_URL` when set, else
 * CongoDB (test/fixtures/congo-server.ts) started in a child process on a free port. Under CI a
 * server that cannot be reached or started is an error; locally the suites skip and say so.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { MongoClient } from 'mongodb'

export interface MongoTestServer {
  url: string
  /** `external`: a real MongoDB from MONGODB_URL; `congodb`: the emulator (known gaps apply). */
  kind: 'external' | 'congodb'
  /** A new client for this server (the caller closes it). */
  client(): MongoClient
  stop(): Promise<void>
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const START_TIMEOUT_MS = 30_000

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/**
 * A client for `url`. For CongoDB, server monitoring polls: CongoDB does not implement the
 * streaming `hello` (exhaust, moreToCome) that the driver uses by default, so a heartbeat
 * fails now and then ("Server ended moreToCome unexpectedly") and clears the connection pool,
 * failing whatever operations were in flight.
 */
function clientFor(url: string, kind: MongoTestServer['kind']): MongoClient {
  return new MongoClient(url, {
    directConnection: true,
    serverSelectionTimeoutMS: 5_000,
    ...(kind === 'congodb' ? { serverMonitoringMode: 'poll' as const } : {}),
  })
}

async function ping(url: string, kind: MongoTestServer['kind']): Promise<void> {
  const c = clientFor(url, kind)
  try {
    await c.db('admin').command({ ping: 1 })
  } finally {
    await c.close()
  }
}

/** Starts CongoDB in a child process; resolves once it prints `ready <uri>`. */
async function startCongo(): Promise<MongoTestServer> {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/congo-server.ts', String(port)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'], // stdin: the server exits when it closes (this process died)
  })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString()
  })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => fail(new Error(`CongoDB did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    const fail = (err: Error) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new Error(`${err.message}\n${stderr.slice(-2000)}`))
    }
    child.once('error', fail)
    child.once('exit', (code) => fail(new Error(`CongoDB exited with code ${code} before it was ready`)))
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString()
      const m = /^ready (\S+)$/m.exec(out)
      if (m) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve(m[1])
      }
    })
  })
  await ping(url, 'congodb')
  return {
    url,
    kind: 'congodb',
    client: () => clientFor(url, 'congodb'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const force = setTimeout(() => child.kill('SIGKILL'), 5_000)
        child.once('exit', () => {
          clearTimeout(force)
          resolve()
        })
        child.kill('SIGTERM')
      }),
  }
}

/**
 * The server to test against, or null when the suite should skip (after saying why). Throws
 * under CI: a MongoDB suite fails there, it never silently skips.
 */
export async function requireMongoOrSkip(): Promise<MongoTestServer | null> {
  const external = process.env.MONGODB_URL
  try {
    if (external) {
      await ping(external, 'external')
      return { url: external, kind: 'external', client: () => clientFor(external, 'external'), stop: async () => {} }
    }
    return await startCongo()
  } catch (err) {
    const what = external ? `MONGODB_URL (${external}) is not reachable` : 'CongoDB could not be started'
    if (process.env.CI) throw new Error(`MongoDB tests cannot run under CI: ${what}: ${(err as Error).message}`)
    console.warn(`MongoDB tests skipped: ${what}: ${(err as Error).message}`)
    return null
  }
}
