/**
 * A throwaway PostgreSQL cluster the chaos harness may restart (never the shared DATABASE_URL
 * one): test/helpers/postgres.ts's own cluster, with its `restart`.
 */

import { startPostgresCluster } from '../helpers/postgres.js'

export interface PgCluster {
  url: string
  port: number
  /** `pg_ctl restart -m fast|immediate`: every connection drops; resolves when the server accepts again. */
  restart(mode: 'fast' | 'immediate'): Promise<void>
  stop(): Promise<void>
}

/** Null when no PostgreSQL binaries are installed. */
export async function startPgCluster(): Promise<PgCluster | null> {
  const server = await startPostgresCluster()
  if (!server?.restart) return null
  return { url: server.url, port: server.port, restart: server.restart, stop: server.stop }
}
