/**
 * A throwaway PostgreSQL cluster the chaos harness may restart (never the shared DATABASE_URL
 * one): initdb in a temp dir, started on a free port with pg_ctl, as test/helpers/postgres.ts does.
 */

import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface PgCluster {
  url: string
  port: number
  /** `pg_ctl restart -m fast|immediate`: every connection drops; resolves when the server accepts again. */
  restart(mode: 'fast' | 'immediate'): Promise<void>
  stop(): Promise<void>
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

const asRoot = () => process.getuid?.() === 0
const argv = (bin: string, args: string[]): [string, string[]] =>
  asRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args]

function run(bin: string, args: string[]): Promise<void> {
  const [cmd, a] = argv(bin, args)
  return new Promise((resolve, reject) =>
    execFile(cmd, a, (err, _o, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve())),
  )
}

/** Null when no PostgreSQL binaries are installed. */
export async function startPgCluster(): Promise<PgCluster | null> {
  const bin = findBinDir()
  if (!bin) return null
  const dir = mkdtempSync(join(tmpdir(), 'friday-chaos-pg-'))
  const data = join(dir, 'data')
  if (asRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, uid, gid)
  }
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  const port = await freePort()
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`
  const log = join(dir, 'server.log')
  await run(join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', log, 'start', '-o', opts])
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: (mode) => run(join(bin, 'pg_ctl'), ['-D', data, '-w', '-l', log, '-m', mode, 'restart', '-o', opts]),
    stop: async () => {
      try {
        await run(join(bin, 'pg_ctl'), ['-D', data, '-w', '-m', 'immediate', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
