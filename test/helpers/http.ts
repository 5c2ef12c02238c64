/**
 * HTTP API tests in-process (`app.request(...)`) over real lakes: a fresh local Parquet lake in a
 * temp dir, or an S3 Parquet lake on radosgw in a uniquely named bucket (skipped with a message
 * when no S3 server answers; under CI a missing S3 fails, see `requireS3OrSkip`).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hono } from 'hono'
import { createPgPool } from '../../src/backends/postgres/node.js'
import { toRows } from '../../src/core/table.js'
import type { DataStorage } from '../../src/core/types.js'
import { type AppOptions, createApp } from '../../src/http/index.js'
import { createStorage } from '../../src/node.js'
import { requirePostgresOrSkip } from './postgres.js'
import { deleteTestBucket, requireS3OrSkip, s3ParquetSection } from './s3.js'

export interface TestLake {
  name: 'local' | 's3' | 'postgres'
  storage: DataStorage
  /** Closes the storage and removes the temp dir or bucket. */
  cleanup: () => Promise<void>
}

export async function localLake(): Promise<TestLake> {
  const dir = await mkdtemp(join(tmpdir(), 'friday-http-'))
  const storage = createStorage({ storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } }, {})
  return {
    name: 'local',
    storage,
    async cleanup() {
      await storage.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** An S3 lake in a fresh bucket, or null when no S3 server is reachable (throws under CI). */
export async function s3Lake(): Promise<TestLake | null> {
  const config = await requireS3OrSkip()
  if (!config) return null
  const bucket = `friday-http-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`
  const storage = createStorage(
    {
      storage: {
        default_backend: 's3_parquet',
        s3_parquet: s3ParquetSection(config, bucket),
      },
    },
    {},
  )
  return {
    name: 's3',
    storage,
    async cleanup() {
      await storage.close()
      await deleteTestBucket(config, bucket)
    },
  }
}

/**
 * The same API over the `postgres` backend (issue 4: the HTTP tests run once more on it), in a
 * fresh PostgreSQL schema; null when no PostgreSQL is available (throws under CI).
 */
export async function postgresLake(): Promise<TestLake | null> {
  const server = await requirePostgresOrSkip()
  if (!server) return null
  const schema = `http_${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`
  const storage = createStorage(
    { storage: { default_backend: 'postgres', postgres: { url: server.url, driver: 'pg', schema } } },
    {},
  )
  return {
    name: 'postgres',
    storage,
    async cleanup() {
      await storage.close()
      const pool = createPgPool(server.url, { max: 1 })
      try {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      } finally {
        await pool.end()
        await server.stop()
      }
    },
  }
}

/** The lakes the route tests run over: `describe.each(LAKES)`; a lake whose server is absent opens as null. */
export const LAKES: { name: TestLake['name']; open: () => Promise<TestLake | null> }[] = [
  { name: 'local', open: localLake },
  { name: 's3', open: s3Lake },
  { name: 'postgres', open: postgresLake },
]

/** An app over `storage` with open writes unless the options say otherwise. */
export function testApp(storage: DataStorage, options: Partial<AppOptions> = {}): Hono {
  return createApp({ openWrites: true, ...options, storage })
}

/** The parsed JSON body of a response (throws with the text if it is not JSON). */
export async function json(res: Response): Promise<any> {
  const text = await res.text()
  try {
    return JSON.parse(text)
  } catch {
    throw new Error(`expected a JSON body (status ${res.status}), got: ${text.slice(0, 500)}`)
  }
}

/** POSTs rows as JSON (an array of row objects). */
export function postJson(app: Hono, path: string, rows: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(
    app.request(path, {
      method: 'POST',
      body: JSON.stringify(rows),
      headers: { 'content-type': 'application/json', ...headers },
    }),
  )
}

/** Everything the store holds, as comparable JSON: dataset names plus every dataset's rows. */
export async function snapshot(storage: DataStorage): Promise<string> {
  const datasets = await storage.listDatasets()
  const content: Record<string, unknown> = {}
  for (const ds of datasets) content[ds] = toRows(await storage.read(ds))
  return JSON.stringify({ datasets, content }, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))
}
