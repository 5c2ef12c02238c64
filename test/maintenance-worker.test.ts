/**
 * The Worker's `scheduled` handler under workerd (`wrangler dev --test-scheduled`, the repo's
 * wrangler.toml), against the real S3 server: a cron invocation compacts a partition of many
 * small files and archives them. Skips (saying why) without wrangler or S3, except under CI.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLakeStorage } from '../src/lake/lake-storage.js'
import { tms } from './conformance/storage.case.js'
import { freePort, wranglerDevArgs } from './helpers/runtime-process.js'
import { createTestBucketStore, s3TestConfig } from './helpers/s3.js'

const ROOT = resolve(import.meta.dirname, '..')
const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler')
const s3 = await s3TestConfig()
const reason = !existsSync(WRANGLER) ? 'wrangler not installed' : !s3 ? 'no S3 endpoint reachable' : null
if (reason && process.env.CI) throw new Error(`maintenance worker test cannot run under CI: ${reason}`)
if (reason) console.warn(`maintenance worker test skipped: ${reason}`)

const CONFIG_VARS = /^(STORAGE_BACKEND|DATA_DIR|S3_.*|AWS_.*|API_TOKENS|FILE_ROTATION_.*|FRIDAY_ENV|HOST|PORT)$/

/**
 * Polls `probe` until it gives a value, for at most `ms`; then throws with `context()` (the
 * child's output). What another process does reaches us late (a log line goes through workerd,
 * wrangler and a pipe): never read it once and hope.
 */
async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms: number,
  context: () => string,
): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms. Output so far:\n${context()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Resolves when `child` has exited, or after `ms` (false). */
function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

describe.skipIf(reason !== null)("Worker 'scheduled' handler under workerd, data in S3", () => {
  let child: ChildProcess | undefined
  let log = ''
  let url = ''
  let dir: string | undefined
  let bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined

  beforeAll(async () => {
    bucket = await createTestBucketStore('maint-worker')
    dir = await mkdtemp(join(tmpdir(), 'friday-mworker-'))
    await copyFile(join(ROOT, 'wrangler.toml'), join(dir, 'wrangler.toml'))
    const vars = {
      STORAGE_BACKEND: 's3_parquet',
      S3_BUCKET: bucket.bucket,
      AWS_ENDPOINT_URL: s3!.endpoint,
      AWS_REGION: s3!.region,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: s3!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3!.secretAccessKey,
      API_TOKENS: `ops-${crypto.randomUUID()}=admin`,
      FILE_ROTATION_STRATEGY: 'count_based',
      FILE_ROTATION_MAX_FILES: '2',
    }
    await writeFile(
      join(dir, 'worker.env'),
      Object.entries(vars)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    )
    const [port, inspector] = [await freePort(), await freePort()]
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!CONFIG_VARS.test(k)) env[k] = v
    child = spawn(WRANGLER, wranglerDevArgs(dir, port, inspector, ['--test-scheduled']), {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...env, WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: join(dir, 'logs'), NO_COLOR: '1' },
    })
    child.stdout?.on('data', (d) => (log += d))
    child.stderr?.on('data', (d) => (log += d))
    url = `http://127.0.0.1:${port}`
    const started = child
    await waitFor(
      'wrangler dev answers GET /healthz',
      async () => {
        if (started.exitCode !== null || started.signalCode !== null) throw new Error(`wrangler dev exited:\n${log}`)
        const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
          async (r) => {
            await r.body?.cancel()
            return r.ok
          },
          () => false,
        )
        return ok ? true : undefined
      },
      90_000,
      () => log,
    )
  }, 120_000)

  afterAll(async () => {
    const pid = child?.pid
    if (child && pid !== undefined) {
      const signalGroup = (sig: NodeJS.Signals) => {
        try {
          process.kill(-pid, sig)
        } catch {
          // the group is gone
        }
      }
      // SIGTERM, up to 5 s to exit, then SIGKILL for workerd and any other straggler of the group
      const done = exited(child, 5_000)
      signalGroup('SIGTERM')
      await done
      signalGroup('SIGKILL')
    }
    await bucket?.cleanup()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('a cron invocation compacts the partition and archives the replaced files', async () => {
    const lake = createLakeStorage({ backend: 's3_parquet', store: bucket!.store })
    for (let i = 0; i < 4; i++) await lake.write('bars_1m', [{ symbol: 'AAPL', timestamp: tms(0, i), close: i }])
    const path = 'symbol=AAPL/date=2024-01-02'
    expect((await lake.getManifest('bars_1m', path))!.files).toHaveLength(4)

    const res = await fetch(`${url}/__scheduled?cron=${encodeURIComponent('17 * * * *')}`)
    expect(res.status, `${await res.clone().text()}\n${log}`).toBe(200)

    const m = (await lake.getManifest('bars_1m', path))!
    expect(m.files).toHaveLength(1)
    expect(m.rows).toBe(4)
    const archives = await lake.listArchives('bars_1m')
    expect(archives).toHaveLength(4)
    expect(archives.every((a) => a.codec === 'gzip' && a.reason === 'compaction')).toBe(true)
    // the handler's console.log reaches wrangler's stdout after the response: wait for the line
    const summary =
      /\[cron 17 \* \* \* \*\] maintenance \(s3_parquet, \d+ datasets?, \d+ ms\): compacted 1 partition, 4 files -> 1/
    const line = await waitFor(
      'the cron summary line in the wrangler log',
      () => summary.exec(log)?.[0],
      30_000,
      () => log,
    )
    expect(line).toMatch(/compacted 1 partition, 4 files -> 1$/)
  })
})
