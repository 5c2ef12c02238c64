/**
 * One smoke test per runtime: the real entry point runs as a child process on a free port of
 * 127.0.0.1 and is driven over HTTP (POST rows as JSON, GET them back as JSON and CSV, /healthz).
 * - Worker: `wrangler dev` (local workerd) on functions/worker.ts with the repo's wrangler.toml,
 *   its S3 settings pointing at the real S3 server (radosgw) and a fresh bucket; the test then
 *   lists the bucket with the S3 SDK to see the Parquet file. A second run switches on the
 *   `[[r2_buckets]]` example (binding R2_BUCKET, simulated by wrangler) with the S3 endpoint on a
 *   closed port, and reads the simulated bucket with Miniflare to find the files.
 * - Bun: `bun functions/bun.ts`; Node: `node --import tsx functions/node.ts` (local lake in a tmp dir).
 * Under CI nothing skips: a missing wrangler, bun or S3 server fails. Elsewhere a runtime whose
 * tool is missing skips and says why. Deno: test/runtime-deno.test.ts (same helpers).
 */

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { Miniflare } from 'miniflare'
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
  bundle: noWrangler,
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

describeRuntime('bundle', 'Worker bundle (wrangler deploy --dry-run)', () => {
  it('has no node:* import and neither src/node.ts nor src/backends/node/', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-bundle-'))
    try {
      await copyFile(join(ROOT, 'wrangler.toml'), join(dir, 'wrangler.toml'))
      const args = ['deploy', join(ROOT, 'functions', 'worker.ts'), '--config', join(dir, 'wrangler.toml'), '--dry-run']
      const r = spawnSync(join(BIN, 'wrangler'), [...args, '--outdir', join(dir, 'dist')], {
        cwd: dir,
        env: childEnv({ WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: join(dir, 'logs'), NO_COLOR: '1' }),
        encoding: 'utf8',
        timeout: 120_000,
      })
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
      const code = await readFile(join(dir, 'dist', 'worker.js'), 'utf8')
      expect(code.match(/(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["'`]node:[\w/]+["'`]/g) ?? []).toEqual([])
      const { sources } = JSON.parse(await readFile(join(dir, 'dist', 'worker.js.map'), 'utf8')) as { sources: string[] }
      const own = sources.filter((s) => !s.includes('node_modules/'))
      expect(own.some((s) => s.endsWith('/src/index.ts'))).toBe(true)
      expect(own.filter((s) => /\/src\/node\.ts$|\/src\/backends\/node\//.test(s))).toEqual([])
      console.log(`  worker.js: ${(code.length / 1024).toFixed(0)} KiB, ${own.length} project modules`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

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

  smokeTests(() => running!, { authorization: `Bearer ${TOKEN}` })

  it('refuses a write without a token', async () => {
    const res = await fetch(`${running!.url}/v1/datasets/${DATASET}/rows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ROWS),
    })
    expect(res.status).toBe(401)
  })

  it('wrote the Parquet files to the real S3 bucket', async () => {
    const listing = await bucket!.client.send(new ListObjectsV2Command({ Bucket: bucket!.bucket, Prefix: `${DATASET}/` }))
    const keys = (listing.Contents ?? []).map((o) => o.Key ?? '')
    expect(keys.filter((k) => /^bars_1m\/symbol=AAPL\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
    expect(keys.filter((k) => /^bars_1m\/symbol=MSFT\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
    expect(keys).toHaveLength(2) // the dataset's prefix holds only its data files
    const meta = await bucket!.client.send(new ListObjectsV2Command({ Bucket: bucket!.bucket, Prefix: `_friday/${DATASET}/` }))
    expect((meta.Contents ?? []).map((o) => o.Key)).toContain('_friday/bars_1m/symbol=AAPL/date=2024-01-02/_manifest.json')
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

describeRuntime('bundle', 'Worker entry (functions/worker.ts) under workerd via wrangler dev, data in an R2 binding', () => {
  let running: Running | undefined
  let dir: string | undefined

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-worker-r2-'))
    // The repo's wrangler.toml with its commented [[r2_buckets]] example switched on; wrangler dev
    // simulates the bucket in workerd. The S3 endpoint points at a closed port: the lake must not use it.
    const toml = await readFile(join(ROOT, 'wrangler.toml'), 'utf8')
    const r2Toml = toml.replace(/^# (\[\[r2_buckets\]\]|binding = "R2_BUCKET"|bucket_name = .*)$/gm, '$1')
    expect(r2Toml).toMatch(/^\[\[r2_buckets\]\]\nbinding = "R2_BUCKET"\nbucket_name = "market-data"$/m)
    await writeFile(join(dir, 'wrangler.toml'), r2Toml)
    await writeFile(join(dir, 'worker.env'), `AWS_ENDPOINT_URL=http://127.0.0.1:9\nAPI_TOKENS=${TOKEN}=read+write\n`)
    const [port, inspectorPort] = [await freePort(), await freePort()]
    running = await start(join(BIN, 'wrangler'), wranglerDevArgs(dir, port, inspectorPort), {
      cwd: dir,
      env: childEnv({ WRANGLER_SEND_METRICS: 'false', WRANGLER_LOG_PATH: join(dir, 'logs'), NO_COLOR: '1' }),
      port,
      timeoutMs: 90_000,
    })
    console.log(`  workerd (wrangler dev, R2 binding) served /healthz after ${running.startupMs} ms`)
  }, 120_000)

  afterAll(async () => {
    await stop(running)
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  smokeTests(() => running!, { authorization: `Bearer ${TOKEN}` })

  it('wrote the Parquet files and manifests to the R2 bucket', async () => {
    await stop(running) // wrangler writes the simulated bucket to --persist-to; read it with Miniflare
    running = undefined
    const mf = new Miniflare({
      modules: true,
      script: 'export default {}',
      r2Buckets: { R2_BUCKET: 'market-data' },
      r2Persist: join(dir!, 'state', 'v3', 'r2'),
    })
    try {
      const bucket = await mf.getR2Bucket('R2_BUCKET')
      const keys = (await bucket.list({ prefix: `${DATASET}/` })).objects.map((o) => o.key)
      expect(keys.filter((k) => /^bars_1m\/symbol=AAPL\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
      expect(keys.filter((k) => /^bars_1m\/symbol=MSFT\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
      expect(keys).toHaveLength(2)
      const meta = (await bucket.list({ prefix: `_friday/${DATASET}/` })).objects.map((o) => o.key)
      expect(meta).toContain('_friday/bars_1m/symbol=AAPL/date=2024-01-02/_manifest.json')
    } finally {
      await mf.dispose()
    }
  }, 60_000)
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
