/**
 * Test access to a real PostgreSQL. `DATABASE_URL` set: that server is used as is. Otherwise a
 * throwaway cluster is created in a temp dir on a free port (initdb + pg_ctl from
 * `PG_BIN`, `/usr/lib/postgresql/<version>/bin` or `pg_config --bindir`) and removed afterwards.
 * Under CI a missing PostgreSQL is an error; locally the suites skip and say so.
 */

import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

export interface PostgresServer {
  url: string
  host: string
  port: number
  /** Stops the cluster this helper started (a no-op for `DATABASE_URL`). */
  stop(): Promise<void>
  /**
   * `pg_ctl restart -m fast|immediate` of a cluster this helper started (every connection
   * drops; resolves when the server accepts again). Absent for `DATABASE_URL`.
   */
  restart?(mode: 'fast' | 'immediate'): Promise<void>
}

function findBinDir(): string | null {
  const candidates: string[] = []
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN)
  try {
    for (const v of readdirSync('/usr/lib/postgresql').sort().reverse()) candidates.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {
    // no Debian-style install
  }
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim())
  } catch {
    // no pg_config on PATH
  }
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null
}

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

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Runs a PostgreSQL binary; as root it runs as the `postgres` user (initdb refuses root). */
function runPg(bin: string, args: string[]): void {
  const asRoot = process.getuid?.() === 0
  if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: 'pipe' })
  else execFileSync(bin, args, { stdio: 'pipe' })
}

/** `runPg` without blocking the event loop (for restarts while proxies in this process run). */
function runPgAsync(bin: string, args: string[]): Promise<void> {
  const [cmd, a] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args]
  return new Promise((resolve, reject) =>
    execFile(cmd, a, (err, _out, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve())),
  )
}

/** Creates and starts a throwaway cluster. */
export async function startPostgresCluster(): Promise<PostgresServer | null> {
  const bin = findBinDir()
  if (!bin) return null
  const dir = mkdtempSync(join(tmpdir(), 'friday-pg-'))
  const data = join(dir, 'data')
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, uid, gid)
  }
  runPg(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  const port = await freePort()
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`
  const log = join(dir, 'server.log')
  runPg(join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', log, 'start', '-o', opts])
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  return {
    url,
    host: '127.0.0.1',
    port,
    restart: (mode) => runPgAsync(join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', log, '-m', mode, 'restart', '-o', opts]),
    stop: async () => {
      try {
        runPg(join(bin, 'pg_ctl'), ['-D', data, '-w', '-m', 'immediate', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}

/**
 * A running PostgreSQL: `DATABASE_URL` if set and reachable, else a fresh throwaway cluster.
 * Null (after saying why) when neither is possible; throws instead under CI.
 */
export async function requirePostgresOrSkip(): Promise<PostgresServer | null> {
  const envUrl = process.env.DATABASE_URL
  let reason: string
  if (envUrl) {
    if (await reachable(envUrl)) {
      const u = new URL(envUrl)
      return { url: envUrl, host: u.hostname, port: Number(u.port || 5432), stop: async () => undefined }
    }
    reason = `DATABASE_URL is set but ${new URL(envUrl).host} does not answer`
  } else {
    try {
      const server = await startPostgresCluster()
      if (server) return server
      reason = 'no PostgreSQL binaries found (set DATABASE_URL, PG_BIN, or run scripts/start-postgres.sh)'
    } catch (err) {
      reason = `starting a throwaway cluster failed: ${(err as Error).message}`
    }
  }
  if (process.env.CI) throw new Error(`PostgreSQL tests cannot run under CI: ${reason}`)
  console.warn(`PostgreSQL tests skipped: ${reason}`)
  return null
}
