/**
 * Deno smoke tests: the real entry (functions/deno.ts, `Deno.serve` over the compiled package in
 * dist/) runs as a child process under the pinned Deno from node_modules, with the permissions of
 * deno.json's `start` task (no -A), on a free port of 127.0.0.1:
 * - over a local lake in a temp DATA_DIR (the task's `data` swapped for it), API open on loopback;
 * - over S3 (radosgw, a fresh bucket) with API tokens, no write permission at all, and
 *   `--unstable-cron` with MAINTENANCE_CRON every minute: the Deno.cron job runs maintenance.
 * Both: /healthz, rows written as NDJSON and CSV, read back as JSON and Parquet, a bad batch
 * refused with 400 and nothing written, and the files found under DATA_DIR / in the bucket.
 * Plus `deno task test` (test/deno/), Deno's own in-process test. Under CI a missing deno or S3
 * server fails; elsewhere the case skips and says why.
 */

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  BIN,
  childEnv,
  describeWithTool,
  freePort,
  missingBinary,
  ROOT,
  type Running,
  s3LakeEnv,
  start,
  stop,
} from './helpers/runtime-process.js'
import { SMOKE_DATASET as DATASET, ingestSmokeTests } from './helpers/runtime-smoke.js'
import { createTestBucketStore, s3TestConfig } from './helpers/s3.js'

const TOKEN = `smoke-${crypto.randomUUID()}`
const DENO = join(BIN, 'deno')

const s3 = await s3TestConfig()
const noDeno = missingBinary('deno')
const noS3 = noDeno ?? (s3 ? null : 'no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)')

/** deno.json's tasks. */
async function denoTasks(): Promise<Record<string, string>> {
  return (JSON.parse(await readFile(join(ROOT, 'deno.json'), 'utf8')) as { tasks: Record<string, string> }).tasks
}

/**
 * The `start` task's arguments after `deno`, with the `data` directory of its --allow-read and
 * --allow-write swapped for `dataDir` (the task serves ./data, the default DATA_DIR), or with
 * --allow-write dropped and `data` removed from --allow-read when `dataDir` is null.
 */
async function startArgs(dataDir: string | null): Promise<string[]> {
  const [exe, ...args] = (await denoTasks()).start.split(/\s+/)
  expect(exe).toBe('./node_modules/.bin/deno')
  expect(args.filter((a) => /^(-A|--allow-all)$/.test(a) || /^--allow-(read|write)$/.test(a))).toEqual([])
  const out: string[] = []
  for (const arg of args) {
    const m = /^(--allow-(?:read|write))=(.*)$/.exec(arg)
    if (!m) {
      out.push(arg)
      continue
    }
    const paths = m[2].split(',')
    expect(paths).toContain('data')
    if (dataDir) out.push(`${m[1]}=${paths.map((p) => (p === 'data' ? dataDir : p)).join(',')}`)
    else if (m[1] === '--allow-read') out.push(`${m[1]}=${paths.filter((p) => p !== 'data').join(',')}`)
  }
  return out
}

describeWithTool(noDeno, 'Deno entry (functions/deno.ts) over a local lake, start-task permissions', () => {
  let running: Running | undefined
  let dir: string | undefined

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-deno-'))
    const port = await freePort()
    running = await start(DENO, await startArgs(join(dir, 'data')), {
      cwd: ROOT,
      env: childEnv({ DATA_DIR: join(dir, 'data'), PORT: String(port), NO_COLOR: '1' }),
      port,
      timeoutMs: 60_000,
    })
    console.log(`  Deno (local lake) served /healthz after ${running.startupMs} ms`)
  }, 90_000)

  afterAll(async () => {
    await stop(running)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('prints its URL, that the API is open, and that Deno.cron is not available without --unstable-cron', async () => {
    const deadline = Date.now() + 20_000
    while (!running!.output().includes(`curl ${running!.url}/healthz`) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
    }
    const out = running!.output()
    expect(out).toContain(`Friday API listening on ${running!.url}`)
    expect(out).toMatch(/API is open/)
    expect(out).toContain('maintenance: Deno.cron is not available here')
  })

  ingestSmokeTests(() => running!, {}, 'local_parquet')

  it('wrote the Parquet files under DATA_DIR', () => {
    const manifest = `_manifest.v${'1'.padStart(20, '0')}.json` // the partition's first manifest version
    const partition = join(dir!, 'data', '_friday', DATASET, 'symbol=AAPL', 'date=2024-01-02', manifest)
    expect(existsSync(partition)).toBe(true)
    expect(existsSync(join(dir!, 'data', '_friday', DATASET, 'symbol=NVDA'))).toBe(false)
  })

  it('refuses to listen on a non-loopback address without API tokens', () => {
    const r = spawnSync(DENO, ['run', '--allow-env', '--allow-read', 'functions/deno.ts'], {
      cwd: ROOT,
      env: childEnv({ DATA_DIR: join(dir!, 'other'), HOST: '0.0.0.0', PORT: '0', NO_COLOR: '1' }),
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without API tokens/)
  })

  it('passes `deno task test` (Deno test runner, in-process app and maintenance)', () => {
    const r = spawnSync(DENO, ['task', 'test'], {
      cwd: ROOT,
      env: childEnv({ NO_COLOR: '1' }),
      encoding: 'utf8',
      timeout: 120_000,
    })
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(r.stdout).toMatch(/ok \| 1 passed \| 0 failed/)
  }, 150_000)
})

describeWithTool(noS3, 'Deno entry (functions/deno.ts) over S3, no write permission, Deno.cron maintenance', () => {
  let running: Running | undefined
  let bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined
  const auth = { authorization: `Bearer ${TOKEN}` }

  beforeAll(async () => {
    if (!s3) throw new Error('no S3 endpoint')
    bucket = await createTestBucketStore('runtime-deno')
    const port = await freePort()
    const [run, ...rest] = await startArgs(null)
    running = await start(DENO, [run, '--unstable-cron', ...rest], {
      cwd: ROOT,
      env: childEnv({
        ...s3LakeEnv(s3, bucket.bucket),
        API_TOKENS: `${TOKEN}=read+write`,
        MAINTENANCE_CRON: '* * * * *',
        PORT: String(port),
        NO_COLOR: '1',
      }),
      port,
      timeoutMs: 60_000,
    })
    console.log(`  Deno (S3) served /healthz after ${running.startupMs} ms`)
  }, 90_000)

  afterAll(async () => {
    await stop(running)
    await bucket?.cleanup()
  })

  ingestSmokeTests(() => running!, auth, 's3_parquet')

  it('wrote the Parquet files to the bucket', async () => {
    const listing = await bucket!.client.send(new ListObjectsV2Command({ Bucket: bucket!.bucket, Prefix: `${DATASET}/` }))
    const keys = (listing.Contents ?? []).map((o) => o.Key ?? '')
    expect(keys.filter((k) => /^bars_1m\/symbol=AAPL\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
    expect(keys.filter((k) => /^bars_1m\/symbol=MSFT\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
    expect(keys.filter((k) => k.includes('NVDA'))).toEqual([])
    const meta = await bucket!.client.send(new ListObjectsV2Command({ Bucket: bucket!.bucket, Prefix: `_friday/${DATASET}/` }))
    expect((meta.Contents ?? []).map((o) => o.Key)).toContain('_friday/bars_1m/symbol=AAPL/date=2024-01-02/_manifest.json')
  })

  it('runs maintenance from its Deno.cron job (MAINTENANCE_CRON every minute)', async () => {
    expect(running!.output()).toContain("maintenance: Deno.cron '* * * * *' (UTC)")
    // the job fires at the next minute boundary; wait up to 150 s on a loaded machine
    const summary = /\[cron \* \* \* \* \*\] maintenance \(s3_parquet, 1 dataset/
    const deadline = Date.now() + 150_000
    while (!summary.test(running!.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500))
    expect(running!.output()).toMatch(summary)
    expect(running!.output()).not.toMatch(/\[cron [^\]]*\] maintenance failed/)
  }, 180_000)
})
