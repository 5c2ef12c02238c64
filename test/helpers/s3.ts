/**
 * Test access to a real S3 server (radosgw from ../shared/tools/s3-server). Under CI a missing
 * server is an error; locally the S3 suites skip and say so.
 */

import { existsSync, readFileSync } from 'node:fs'
import { DeleteBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { createS3Store } from '../../src/stores/s3-store.js'
import type { ObjectStore } from '../../src/stores/types.js'

export interface S3TestConfig {
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
}

const ENV_FILE = '/tmp/s3-rgw/cluster/s3.env'

function parseEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw)
    if (!m) continue
    out[m[1]] = m[2].trim().replace(/^(['"])(.*)\1$/, '$2')
  }
  return out
}

let cached: Promise<S3TestConfig | null> | undefined

/** Endpoint and keys from the environment or the radosgw env file, if the endpoint answers. */
export function s3TestConfig(): Promise<S3TestConfig | null> {
  cached ??= (async () => {
    let env: Record<string, string | undefined> = process.env
    if (!env.AWS_ENDPOINT_URL && existsSync(ENV_FILE)) env = parseEnvFile(ENV_FILE)
    const { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env
    if (!endpoint || !accessKeyId || !secretAccessKey) return null
    try {
      await fetch(endpoint, { signal: AbortSignal.timeout(2000) })
    } catch {
      return null
    }
    return { endpoint, region: env.AWS_REGION || 'us-east-1', accessKeyId, secretAccessKey }
  })()
  return cached
}

/**
 * The S3 config, or null when the suite should skip (after saying so). Throws under CI: the S3
 * suite fails there, it never silently skips.
 */
export async function requireS3OrSkip(): Promise<S3TestConfig | null> {
  const config = await s3TestConfig()
  if (config) return config
  if (process.env.CI) throw new Error('S3 tests cannot run under CI: no S3 endpoint reachable (start-rgw.sh must run first)')
  console.warn('S3 tests skipped: no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)')
  return null
}

export function s3TestClient(config: S3TestConfig, extra: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    ...extra,
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: true,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

/**
 * The `storage.s3_parquet` settings of a lake on the test S3 server in `bucket` (created on first
 * use); spread it and add the rest (`partition_by`, ...).
 */
export function s3ParquetSection(config: S3TestConfig, bucket: string) {
  return {
    bucket,
    endpoint: config.endpoint,
    region: config.region,
    force_path_style: true,
    access_key_id: config.accessKeyId,
    secret_access_key: config.secretAccessKey,
    create_bucket: true,
  }
}

/** Empties and removes a test bucket; a bucket that was never created is fine. */
export async function deleteTestBucket(config: S3TestConfig, bucket: string): Promise<void> {
  const client = s3TestClient(config)
  const store = createS3Store({ bucket, client })
  try {
    const { objects } = await store.list('')
    await store.delete(objects.map((o) => o.key))
    await client.send(new DeleteBucketCommand({ Bucket: bucket }))
  } catch {
    // the bucket was never created: nothing to clean up
  } finally {
    await store.close()
    client.destroy()
  }
}

/** A store on a fresh, uniquely named bucket; `cleanup` empties and removes the bucket. */
export async function createTestBucketStore(
  name = 'test',
): Promise<{ store: ObjectStore; bucket: string; client: S3Client; cleanup: () => Promise<void> }> {
  const config = await s3TestConfig()
  if (!config) throw new Error('createTestBucketStore: no S3 endpoint reachable')
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 20)
  const bucket = `friday-${slug}-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`.replace(/-+/g, '-')
  const client = s3TestClient(config)
  const store = createS3Store({ bucket, client, createBucket: true })
  await store.ensureContainer()
  return {
    store,
    bucket,
    client,
    async cleanup() {
      try {
        const { objects } = await store.list('')
        await store.delete(objects.map((o) => o.key))
        await client.send(new DeleteBucketCommand({ Bucket: bucket }))
      } finally {
        await store.close()
        client.destroy()
      }
    },
  }
}
