/**
 * What the Deno entry does beyond the runtime matrix's smoke steps (test/runtime-matrix.test.ts
 * runs those under Deno over a local lake and over S3): the real entry (functions/deno.ts,
 * `Deno.serve` over the compiled package in dist/) as a child process under the pinned Deno from
 * node_modules, with the permissions of deno.json's `start` task (no -A), on a free port:
 * - over a local lake in a temp DATA_DIR without API tokens: the banner (URL, open API, no
 *   Deno.cron without --unstable-cron), the refusal to listen on 0.0.0.0 without tokens, and
 *   `deno task test` (test/deno/, Deno's own in-process test);
 * - over S3 (radosgw) with no write permission at all and `--unstable-cron` with MAINTENANCE_CRON
 *   every minute: the Deno.cron job runs maintenance.
 * Under CI a missing deno or S3 server fails; elsewhere the case skips and says why.
 */

import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { denoStartArgs } from './helpers/runtime-matrix.js'
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
import { createTestBucketStore, s3TestConfig } from './helpers/s3.js'

const TOKEN = `smoke-${crypto.randomUUID()}`
const DENO = join(BIN, 'deno')

const s3 = await s3TestConfig()
const noDeno = missingBinary('deno')
const noS3 = noDeno ?? (s3 ? null : 'no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)')

describeWithTool(noDeno, 'Deno entry (functions/deno.ts) over a local lake, start-task permissions', () => {
  let running: Running | undefined
  let dir: string | undefined

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-deno-'))
    const port = await freePort()
    running = await start(DENO, await denoStartArgs(join(dir, 'data')), {
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
    const [run, ...rest] = await denoStartArgs(null)
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

  it('stores rows (the dataset the cron job maintains)', async () => {
    const res = await fetch(`${running!.url}/v1/datasets/bars_1m/rows`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify([{ symbol: 'AAPL', timestamp: '2024-01-02T14:30:00.000Z', close: 187.3 }]),
    })
    expect(res.status, await res.clone().text()).toBe(200)
    expect(await res.json()).toMatchObject({ rowsWritten: 1 })
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
