/**
 * How a chaos process (writer, reader, maintainer, the final checker) opens the store under test.
 * The lake backends are built from a config like an application would (`createStorage`), with an
 * aggressive rotation policy and a short gc grace period; postgres and mongodb get their own
 * pools/clients so the harness can route them through its fault proxies.
 */

import { MongoClient } from 'mongodb'
import ws from 'ws'
import { createMongoStorage } from '../../src/backends/mongodb/index.js'
import { createNeonPool, createPostgresStorage } from '../../src/backends/postgres/index.js'
import { createPgPool } from '../../src/backends/postgres/node.js'
import type { DataStorage } from '../../src/core/types.js'
import { createStorage } from '../../src/node.js'

export type StoreSpec =
  | { kind: 'local'; baseDir: string; gcGraceSeconds: number }
  | {
      kind: 's3'
      bucket: string
      endpoint: string
      region: string
      accessKeyId: string
      secretAccessKey: string
      gcGraceSeconds: number
    }
  | { kind: 'pg'; url: string; schema: string }
  | { kind: 'neon'; url: string; schema: string; relayPort: number }
  | { kind: 'mongo'; url: string; database: string }

export type StoreKind = StoreSpec['kind']
export const STORE_KINDS: StoreKind[] = ['local', 's3', 'pg', 'neon', 'mongo']

/** Compaction as soon as a partition has more than one file; archives kept (retention 0 = never deleted). */
const FILE_ROTATION = { enabled: true, strategy: 'count_based', max_files: 1, archive_retention_days: 0 }

export function openStorage(spec: StoreSpec): DataStorage {
  switch (spec.kind) {
    case 'local':
      return createStorage(
        {
          storage: {
            default_backend: 'local_parquet',
            local_parquet: { base_dir: spec.baseDir },
            gc_grace_period_seconds: spec.gcGraceSeconds,
            file_rotation: FILE_ROTATION,
            metadata_logging: { enabled: false },
          },
        },
        {},
      )
    case 's3':
      return createStorage(
        {
          storage: {
            default_backend: 's3_parquet',
            s3_parquet: {
              bucket: spec.bucket,
              endpoint: spec.endpoint,
              region: spec.region,
              force_path_style: true,
              access_key_id: spec.accessKeyId,
              secret_access_key: spec.secretAccessKey,
            },
            gc_grace_period_seconds: spec.gcGraceSeconds,
            file_rotation: FILE_ROTATION,
            metadata_logging: { enabled: false },
          },
        },
        {},
      )
    case 'pg':
      return createPostgresStorage({
        pool: createPgPool(spec.url, { max: 4, connectionTimeoutMillis: 5_000 }),
        schema: spec.schema,
        ownsPool: true,
      })
    case 'neon':
      return createPostgresStorage({
        pool: createNeonPool(spec.url, {
          max: 4,
          webSocketConstructor: ws,
          wsProxy: (host, port) => `127.0.0.1:${spec.relayPort}/v1?address=${host}:${port}`,
          useSecureWebSocket: false,
          pipelineConnect: false,
        }),
        schema: spec.schema,
        ownsPool: true,
      })
    case 'mongo':
      return createMongoStorage({
        client: () =>
          new MongoClient(spec.url, { directConnection: true, serverSelectionTimeoutMS: 5_000, serverMonitoringMode: 'poll' }),
        db: spec.database,
        closeClient: true,
      })
  }
}

/** The stores whose `maintain()` compacts files and whose `gc()` removes them (the Parquet lakes). */
export const isLake = (kind: StoreKind): boolean => kind === 'local' || kind === 's3'
