/**
 * What each runtime entry does beyond the runtime matrix's smoke steps (test/runtime-matrix.test.ts
 * runs those on every runtime and backend):
 * - the Worker bundle (`wrangler deploy --dry-run`, by the devDependency wrangler and by the
 *   current one that scripts/runtimes.sh pins): no `node:*` import, no Node-only module of ours,
 *   under the free plan's 3 MB compressed;
 * - the Worker under workerd (`wrangler dev` of the devDependency wrangler, data in radosgw):
 *   its operation log reaches the bucket after the response (`ctx.waitUntil`);
 * - the Bun and Node entries on a fresh local lake without API tokens: the banner (URL, open API,
 *   curl example), a JSON write read back as JSON and CSV, and the refusal to listen on a
 *   non-loopback address without tokens.
 * Under CI nothing skips: a missing wrangler, bun or S3 server fails. Elsewhere a runtime whose
 * tool is missing skips and says why. Deno: test/runtime-deno.test.ts (same helpers).
 */

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { bundleWorker, WRANGLERS } from './helpers/runtime-matrix.js'
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
  wranglerDevArgs,
} from './helpers/runtime-process.js'
import { createTestBucketStore, s3TestConfig } from './helpers/s3.js'

const TOKEN = `smoke-${crypto.randomUUID()}`
const DATASET = 'bars_1m'

const ROWS = [
  { symbol: 'AAPL', timestamp: '2024-01-02T14:30:00.000Z', close: 187.3, volume: 120300 },
  { symbol: 'AAPL', timestamp: '2024-01-02T14:31:00.000Z', close: 187.45, volume: 98100 },
  { symbol: 'MSFT', timestamp: '2024-01-02T14:30:00.000Z', close: 370.1, volume: 51000 },
]
const CSV_LINES = [
  'symbol,timestamp,close,volume',
  'AAPL,2024-01-02T14:30:00.000Z,187.3,120300',
  'AAPL,2024-01-02T14:31:00.000Z,187.45,98100',
  'MSFT,2024-01-02T14:30:00.000Z,370.1,51000',
]

const s3 = await s3TestConfig()
const noWrangler = missingBinary('wrangler')
const missing = {
  worker: noWrangler ?? (s3 ? null : 'no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)'),
  bun: missingBinary('bun'),
  node: null,
}

/** `describe` that, outside CI, skips (saying why) when its runtime's tool is missing. */
function describeRuntime(name: keyof typeof missing, title: string, body: () => void): void {
  describeWithTool(missing[name], title, body)
}

/** The smoke checks every runtime passes; `auth` is sent with every request but /healthz. */
function smokeTests(server: () => Running, auth: Record<string, string>): void {
  it('answers GET /healthz', async () => {
    const res = await fetch(`${server().url}/healthz`)
    expect(res.status, await res.clone().text()).toBe(200)
    expect(await res.json()).toMatchObject({ ok: true })
  })

  it('stores rows POSTed as JSON and returns them as JSON and CSV', async () => {
    const { url } = server()
    const t0 = performance.now()
    const post = await fetch(`${url}/v1/datasets/${DATASET}/rows`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(ROWS),
    })
    expect(post.status, await post.clone().text()).toBe(200)
    expect(await post.json()).toMatchObject({ rowsWritten: 3 })

    const json = await fetch(`${url}/v1/datasets/${DATASET}/rows?format=json`, { headers: auth })
    expect(json.status).toBe(200)
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await json.json()).toEqual(ROWS)

    const csv = await fetch(`${url}/v1/datasets/${DATASET}/rows?symbols=AAPL,MSFT&format=csv`, { headers: auth })
    expect(csv.status).toBe(200)
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/)
    expect((await csv.text()).trim().split(/\r?\n/)).toEqual(CSV_LINES)
    console.log(`  ${server().url}: write + 2 reads in ${Math.round(performance.now() - t0)} ms`)
  })
}

/** Cloudflare's Worker size limit on the free plan (compressed): 3 MB. */
const FREE_PLAN_WORKER_BYTES = 3_000_000

// the devDependency (Node 20+) and the pinned current wrangler (Node 24)
for (const wrangler of WRANGLERS) {
  describeWithTool(wrangler.missing(), `Worker bundle (${wrangler.title} deploy --dry-run)`, () => {
    it('has no node:* import and neither src/node.ts nor src/backends/node/, and fits the free plan compressed', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'friday-bundle-'))
      try {
        const r = await bundleWorker(wrangler, dir, 120_000)
        expect(r.status, r.output).toBe(0)
        const code = await readFile(join(r.outDir, 'worker.js'), 'utf8')
        expect(code.match(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["'`]node:[\w/]+["'`]/g) ?? []).toEqual([])
        const { sources } = JSON.parse(await readFile(join(r.outDir, 'worker.js.map'), 'utf8')) as { sources: string[] }
        const own = sources.filter((s) => !s.includes('node_modules/'))
        expect(own.some((s) => s.endsWith('/src/index.ts'))).toBe(true)
        expect(own.filter((s) => /\/src\/node\.ts$|\/src\/backends\/node\//.test(s))).toEqual([])
        const gzipped = gzipSync(code, { level: 9 }).length
        expect(gzipped).toBeLessThan(FREE_PLAN_WORKER_BYTES)
        console.log(
          `  ${wrangler.title}: worker.js ${(code.length / 1024).toFixed(0)} KiB, gzip ${(gzipped / 1024).toFixed(0)} KiB, ${own.length} project modules`,
        )
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }, 150_000)
  })
}

describeRuntime('worker', 'Worker entry (functions/worker.ts) under workerd via wrangler dev, data in S3', () => {
  let running: Running | undefined
  let bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined
  let dir: string | undefined

  beforeAll(async () => {
    if (!s3) throw new Error('no S3 endpoint')
    bucket = await createTestBucketStore('runtime-worker')
    dir = await mkdtemp(join(tmpdir(), 'friday-worker-'))
    // The repo's wrangler.toml, verbatim, run from a temp dir so wrangler's .wrangler/ state and
    // build output stay out of the repo; the entry is passed explicitly. The env file overrides
    // its [vars] to point at the test bucket; the secrets would come from `wrangler secret put`.
    await copyFile(join(ROOT, 'wrangler.toml'), join(dir, 'wrangler.toml'))
    const vars = { ...s3LakeEnv(s3, bucket.bucket), API_TOKENS: `${TOKEN}=read+write` }
    await writeFile(
      join(dir, 'worker.env'),
      Object.entries(vars)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    )
    const [port, inspectorPort] = [await freePort(), await freePort()]
    running = await start(join(BIN, 'wrangler'), wranglerDevArgs(dir, port, inspectorPort), {
      cwd: dir,
      env: childEnv({ WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: join(dir, 'logs'), NO_COLOR: '1' }),
      port,
      timeoutMs: 90_000,
    })
    console.log(`  workerd (wrangler dev) served /healthz after ${running.startupMs} ms`)
  }, 120_000)

  afterAll(async () => {
    await stop(running)
    await bucket?.cleanup()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('stores rows POSTed as JSON', async () => {
    const post = await fetch(`${running!.url}/v1/datasets/${DATASET}/rows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(ROWS),
    })
    expect(post.status, await post.clone().text()).toBe(200)
    expect(await post.json()).toMatchObject({ rowsWritten: 3 })
  })

  it('stores its op log in the bucket after the response (ctx.waitUntil), readable at GET /v1/oplog', async () => {
    const res = await fetch(`${running!.url}/v1/oplog?dataset=${DATASET}&op=write`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(res.status, await res.clone().text()).toBe(200)
    const { records } = (await res.json()) as { records: { op: string; rows: number; outcome: string }[] }
    expect(records.map((r) => [r.op, r.rows, r.outcome])).toEqual([['write', 3, 'ok']])
    // the batch lands within the op log's flush interval (5 s) of the request; wait up to 60 s (loaded CI machines)
    let lines: string[] = []
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline && !lines.some((l) => l.includes('"op":"write"'))) {
      const listing = await bucket!.client.send(new ListObjectsV2Command({ Bucket: bucket!.bucket, Prefix: '_oplog/' }))
      lines = []
      for (const o of listing.Contents ?? []) {
        expect(o.Key).toMatch(/^_oplog\/date=\d{4}-\d{2}-\d{2}\/\d{13}-\d{13}-\d+-[0-9A-HJKMNP-TV-Z]{26}\.ndjson$/)
        const got = await bucket!.client.send(new GetObjectCommand({ Bucket: bucket!.bucket, Key: o.Key }))
        lines.push(...(await got.Body!.transformToString()).split('\n').filter(Boolean))
      }
      if (!lines.some((l) => l.includes('"op":"write"'))) await new Promise((r) => setTimeout(r, 250))
    }
    const writes = lines.map((l) => JSON.parse(l)).filter((r) => r.op === 'write' && r.dataset === DATASET)
    expect(writes.map((r) => [r.rows, r.outcome])).toEqual([[3, 'ok']])
  }, 90_000)
})

/** A Node or Bun entry on a fresh local lake, no API tokens (loopback only, writes open). */
function localEntry(name: 'bun' | 'node', title: string, command: () => [string, string[]]): void {
  describeRuntime(name, title, () => {
    let running: Running | undefined
    let dir: string | undefined

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), `friday-${name}-`))
      const port = await freePort()
      const [cmd, args] = command()
      running = await start(cmd, args, {
        cwd: ROOT,
        env: childEnv({ DATA_DIR: join(dir, 'data'), PORT: String(port) }),
        port,
        timeoutMs: 60_000,
      })
      console.log(`  ${title} served /healthz after ${running.startupMs} ms`)
    }, 90_000)

    afterAll(async () => {
      await stop(running)
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it('prints its URL, that the API is open, and a curl example', async () => {
      // /healthz may answer before the banner has come through the pipe: wait for its last line
      const deadline = Date.now() + 20_000
      while (!running!.output().includes(`curl ${running!.url}/healthz`) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
      }
      const out = running!.output()
      expect(out).toContain(running!.url)
      expect(out).toMatch(/API is open/)
      expect(out).toContain(`curl ${running!.url}/healthz`)
    })

    smokeTests(() => running!, {})

    it('wrote the Parquet files under DATA_DIR', () => {
      const manifest = `_manifest.v${'1'.padStart(20, '0')}.json` // the partition's first manifest version
      expect(existsSync(join(dir!, 'data', '_friday', DATASET, 'symbol=AAPL', 'date=2024-01-02', manifest))).toBe(true)
    })

    it('refuses to listen on a non-loopback address without API tokens', () => {
      const [cmd, args] = command()
      const r = spawnSync(cmd, args, {
        cwd: ROOT,
        env: childEnv({ DATA_DIR: join(dir!, 'other'), HOST: '0.0.0.0', PORT: '0' }),
        encoding: 'utf8',
        timeout: 60_000,
      })
      expect(r.status).toBe(1)
      expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without API tokens/)
    })
  })
}

localEntry('bun', 'Bun entry (functions/bun.ts)', () => [join(BIN, 'bun'), ['functions/bun.ts']])
localEntry('node', 'Node entry (functions/node.ts)', () => [process.execPath, ['--import', 'tsx', 'functions/node.ts']])
