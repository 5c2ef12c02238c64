/**
 * The servers and fault injectors behind each store of the chaos harness: a temp dir (local), a
 * fresh bucket behind the HTTP fault proxy (s3), a throwaway PostgreSQL cluster behind the TCP
 * fault proxy, restarted now and then (pg; neon adds the WebSocket relay), CongoDB behind the TCP
 * fault proxy (mongo). Each says how children reach it (with faults) and how the final check
 * reaches it (without).
 */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalFsStore } from '../../src/backends/node/local-fs-store.js'
import { createS3Store } from '../../src/stores/s3-store.js'
import type { ObjectStore } from '../../src/stores/types.js'
import { requireMongoOrSkip } from '../helpers/mongo.js'
import { deleteTestBucket, s3TestConfig } from '../helpers/s3.js'
import { startWsRelay } from '../helpers/ws-relay.js'
import { startHttpFaultProxy } from './http-fault-proxy.js'
import type { StoreKind, StoreSpec } from './open-storage.js'
import { startPgCluster } from './pg-cluster.js'
import { startTcpFaultProxy, type TcpFaultProxy } from './tcp-fault-proxy.js'

export interface FaultAction {
  name: string
  weight: number
  /** Run at least this often (ms), whatever the dice say. */
  everyMs?: number
  run(r: () => number): void
}

export interface StoreEnv {
  kind: StoreKind
  /** How the chaos processes reach the store (through the fault proxies). */
  spec: StoreSpec
  /** How the final check reaches it (no proxy). */
  direct: StoreSpec
  /** Granularity of atomicity the backend promises to readers (see checker.ts). */
  atomicity: 'partition' | 'none'
  /** Faults the scheduler triggers now and then (besides the HTTP proxy's per-request faults). */
  actions: FaultAction[]
  faultCounts(): Record<string, number>
  /** Stops injecting faults (and waits for a restart in progress). */
  quiesce(): Promise<void>
  /** Lake stores: the object store, opened directly. */
  objectStore?(): ObjectStore
  cleanup(): Promise<void>
}

export type EnvResult = StoreEnv | { skip: string }

function absent(what: string): { skip: string } {
  if (process.env.CI) throw new Error(`chaos: ${what} (CI must provide every server)`)
  return { skip: what }
}

function tcpActions(proxy: TcpFaultProxy): FaultAction[] {
  return [
    { name: 'tcp-cut', weight: 3, run: (r) => proxy.cut(r) },
    { name: 'tcp-stall', weight: 2, run: (r) => proxy.stall(r, 200 + r() * 2_300) },
    { name: 'tcp-half-open', weight: 1, run: (r) => proxy.halfOpen(r, 1_000 + r() * 4_000) },
  ]
}

export async function setupEnv(kind: StoreKind, seed: number, gcGraceSeconds: number, runId: string): Promise<EnvResult> {
  switch (kind) {
    case 'local': {
      const baseDir = mkdtempSync(join(tmpdir(), 'friday-chaos-lake-'))
      const spec: StoreSpec = { kind: 'local', baseDir, gcGraceSeconds }
      return {
        kind,
        spec,
        direct: spec,
        atomicity: 'partition',
        actions: [],
        faultCounts: () => ({}),
        quiesce: async () => undefined,
        objectStore: () => createLocalFsStore({ baseDir }),
        cleanup: async () => rmSync(baseDir, { recursive: true, force: true }),
      }
    }
    case 's3': {
      const config = await s3TestConfig()
      if (!config) return absent('no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)')
      const bucket = `friday-chaos-${runId}`
      const proxy = await startHttpFaultProxy({ target: config.endpoint, rate: 0.12, seed: seed ^ 0x5eed })
      const base = {
        bucket,
        region: config.region,
        accessKeyId: config.accessKeyId,
        secretAccessKey: config.secretAccessKey,
        gcGraceSeconds,
      }
      const direct: StoreSpec = { kind: 's3', endpoint: config.endpoint, ...base }
      // the bucket exists before anyone writes (the lake would not create it)
      const creator = createS3Store({
        bucket,
        endpoint: config.endpoint,
        region: config.region,
        forcePathStyle: true,
        credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
        createBucket: true,
      })
      await creator.ensureContainer()
      await creator.close()
      return {
        kind,
        spec: { kind: 's3', endpoint: proxy.url, ...base },
        direct,
        atomicity: 'partition',
        actions: [],
        faultCounts: () => ({ ...proxy.counts }),
        quiesce: async () => proxy.setEnabled(false),
        objectStore: () =>
          createS3Store({
            bucket,
            endpoint: config.endpoint,
            region: config.region,
            forcePathStyle: true,
            credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
          }),
        cleanup: async () => {
          await proxy.close()
          await deleteTestBucket(config, bucket)
        },
      }
    }
    case 'pg':
    case 'neon': {
      let cluster: Awaited<ReturnType<typeof startPgCluster>>
      try {
        cluster = await startPgCluster()
      } catch (err) {
        return absent(`starting a throwaway PostgreSQL cluster failed: ${(err as Error).message}`)
      }
      if (!cluster) return absent('no PostgreSQL binaries (initdb, pg_ctl) found')
      const pg = cluster
      const proxy = await startTcpFaultProxy({ host: '127.0.0.1', port: pg.port })
      const relay = kind === 'neon' ? await startWsRelay({ target: { host: '127.0.0.1', port: proxy.port } }) : null
      const schema = `chaos_${runId.replace(/-/g, '_')}`
      const counts: Record<string, number> = {}
      let restarting: Promise<void> | null = null
      const restart: FaultAction = {
        name: 'pg-restart',
        weight: 1,
        everyMs: 9_000,
        run: (r) => {
          if (restarting) return
          const mode = r() < 0.7 ? 'fast' : 'immediate'
          counts[`pg-restart-${mode}`] = (counts[`pg-restart-${mode}`] ?? 0) + 1
          restarting = pg
            .restart(mode)
            .catch(() => {
              counts['pg-restart-failed'] = (counts['pg-restart-failed'] ?? 0) + 1
            })
            .finally(() => {
              restarting = null
            })
        },
      }
      const via = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`
      return {
        kind,
        spec: relay ? { kind: 'neon', url: via, schema, relayPort: relay.port } : { kind: 'pg', url: via, schema },
        direct: { kind: 'pg', url: pg.url, schema },
        atomicity: 'partition',
        actions: [...tcpActions(proxy), restart],
        faultCounts: () => ({ ...proxy.counts, ...counts }),
        quiesce: async () => {
          await restarting
        },
        cleanup: async () => {
          await relay?.close()
          await proxy.close()
          await pg.stop()
        },
      }
    }
    case 'mongo': {
      const server = await requireMongoOrSkip()
      if (!server) return absent('no MongoDB server (CongoDB could not be started, MONGODB_URL unreachable)')
      const u = /^mongodb:\/\/([^/:]+):(\d+)(.*)$/.exec(server.url)
      if (!u) {
        await server.stop()
        return absent(`cannot route ${server.url} through the TCP proxy`)
      }
      const proxy = await startTcpFaultProxy({ host: u[1], port: Number(u[2]) })
      const database = `chaos_${runId.replace(/-/g, '_')}`
      return {
        kind,
        spec: { kind: 'mongo', url: `mongodb://127.0.0.1:${proxy.port}${u[3]}`, database },
        direct: { kind: 'mongo', url: server.url, database },
        // the backend documents that a write is not atomic per partition (no multi-document transactions)
        atomicity: 'none',
        actions: tcpActions(proxy),
        faultCounts: () => ({ ...proxy.counts }),
        quiesce: async () => undefined,
        cleanup: async () => {
          await proxy.close()
          await server.stop()
        },
      }
    }
  }
}
