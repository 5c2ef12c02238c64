/**
 * The smoke steps (test/helpers/runtime-smoke.ts) and their CLI (scripts/smoke.ts) against the
 * compiled Node server (`node bin/friday.js serve`, from dist/) over a local lake with an admin
 * token: every step passes, the CLI prints a line per step and exits 0; and the steps can fail:
 * a wrong expected backend fails healthz, a wrong token fails with 401s (exit 1), a dataset that
 * holds rows is refused and left as it was, a missing URL or a bad prefix is a usage error (exit 2).
 */

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { childEnv, freePort, ROOT, type Running, start, stop } from './helpers/runtime-process.js'
import { runSmoke, SMOKE_STEPS, type SmokeResult } from './helpers/runtime-smoke.js'

const TOKEN = randomBytes(24).toString('hex')
const STEP_NAMES = [
  'healthz',
  'auth',
  'ingest NDJSON and CSV',
  'read back JSON and Parquet',
  '4xx: bad rows refused, nothing stored',
  'training-set .npy',
  'maintenance run',
  'cleanup',
]

let running: Running | undefined
let dir: string | undefined

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'friday-smoke-'))
  const port = await freePort()
  running = await start(process.execPath, [join(ROOT, 'bin', 'friday.js'), 'serve'], {
    cwd: ROOT,
    env: childEnv({ DATA_DIR: join(dir, 'data'), API_TOKENS: `${TOKEN}=admin`, PORT: String(port), NO_COLOR: '1' }),
    port,
    timeoutMs: 60_000,
  })
}, 90_000)

afterAll(async () => {
  await stop(running)
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** `node --import tsx scripts/smoke.ts ...args` with `env`: exit code and output. */
function smokeCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'smoke.ts'), ...args], {
      cwd: ROOT,
      env: childEnv({ FRIDAY_TOKEN: '', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const rowsOf = async (ds: string): Promise<unknown[]> => {
  const res = await fetch(`${running!.url}/v1/datasets/${ds}/rows?format=json`, { headers: { authorization: `Bearer ${TOKEN}` } })
  expect(res.status).toBe(200)
  return res.json()
}

describe('runSmoke against the compiled Node server', () => {
  let prefix: string

  it('passes every step, in order, and leaves no rows behind', async () => {
    prefix = `smoke_t${randomBytes(4).toString('hex')}`
    const seen: string[] = []
    const results = await runSmoke(
      { url: `${running!.url}/`, token: TOKEN, backend: 'local_parquet', dataset: prefix },
      (name, ok) => seen.push(`${name}:${ok}`),
    )
    expect(
      results.filter((r) => !r.ok),
      JSON.stringify(results, null, 2),
    ).toEqual([])
    expect(results.map((r) => r.name)).toEqual(STEP_NAMES)
    expect(SMOKE_STEPS.map((s) => s.name)).toEqual(STEP_NAMES)
    expect(seen).toEqual(STEP_NAMES.map((n) => `${n}:true`))
    const note = (name: string) => results.find((r) => r.name === name)?.note
    expect(note('healthz')).toBe('backend local_parquet')
    expect(note('maintenance run')).toMatch(/^compacted symbol=AAPL\/date=2024-01-02: size_based: /)
    expect(note('cleanup')).toBe(`${prefix}: 4 rows deleted; ${prefix}_train: 240 rows deleted`)
    expect(await rowsOf(prefix)).toEqual([])
    expect(await rowsOf(`${prefix}_train`)).toEqual([])
  }, 120_000)

  it('fails healthz with a clear message when the server runs another backend, and runs nothing after it but cleanup', async () => {
    const results = await runSmoke({ url: running!.url, token: TOKEN, backend: 's3_parquet' })
    expect(results[0]).toMatchObject({
      name: 'healthz',
      ok: false,
      error: "GET /healthz: expected backend 's3_parquet', the server runs 'local_parquet'",
    })
    for (const r of results.slice(1, -1))
      expect(r).toMatchObject({ ok: false, skipped: true, error: "not run: step 'healthz' failed" })
    expect(results.at(-1)).toEqual<SmokeResult>({ name: 'cleanup', ok: true, ms: expect.any(Number), note: 'nothing written' })
  }, 60_000)

  it('refuses a dataset that holds rows, and cleanup leaves it as it was', async () => {
    const ds = `kept_${randomBytes(4).toString('hex')}`
    const row = { symbol: 'KEEP', timestamp: '2024-01-02T14:30:00.000Z', close: 1.25, volume: 10 }
    const put = await fetch(`${running!.url}/v1/datasets/${ds}/rows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify([row]),
    })
    expect(put.status).toBe(200)
    const results = await runSmoke({ url: running!.url, token: TOKEN, dataset: ds })
    expect(results[1]).toMatchObject({ name: 'auth', ok: false })
    expect(results[1].error).toMatch(new RegExp(`^dataset '${ds}' holds 1 rows before the writes without a valid token: `))
    expect(results.at(-1)).toMatchObject({ name: 'cleanup', ok: true, note: 'nothing written' })
    expect(await rowsOf(ds)).toEqual([row])
  }, 60_000)

  it('scripts/smoke.ts prints a line per step and exits 0; the token from FRIDAY_TOKEN; a prefix emptied by a run may be reused', async () => {
    const { code, stdout, stderr } = await smokeCli([running!.url, '--backend', 'local_parquet', '--dataset', prefix], {
      FRIDAY_TOKEN: TOKEN,
    })
    expect(code, stdout + stderr).toBe(0)
    const lines = stdout.trim().split('\n')
    expect(lines[0]).toBe(`smoke: ${running!.url} (datasets ${prefix}, ${prefix}_train)`)
    expect(lines.slice(1, -1).map((l) => /^✓ (.+?) \(\d+ ms\)/.exec(l)?.[1])).toEqual(STEP_NAMES)
    expect(lines[1]).toMatch(/^✓ healthz \(\d+ ms\): backend local_parquet$/)
    expect(lines.at(-1)).toBe('smoke: 8 of 8 steps passed')
  }, 120_000)

  it('scripts/smoke.ts with a wrong token fails the auth step with the 401 and exits 1', async () => {
    const { code, stdout } = await smokeCli([running!.url, '--token', randomBytes(24).toString('hex')])
    expect(code, stdout).toBe(1)
    const lines = stdout.trim().split('\n')
    expect(lines[1]).toMatch(/^✓ healthz \(\d+ ms\): backend local_parquet$/)
    expect(lines[2]).toMatch(
      /^✗ auth \(\d+ ms\): GET \/v1\/datasets\/smoke_[0-9a-f]{8} before the writes without a valid token .*got 401: .*unknown bearer token/,
    )
    for (const name of STEP_NAMES.slice(2, -1)) expect(lines).toContain(`- ${name}: not run: step 'auth' failed`)
    expect(lines.at(-2)).toMatch(/^✓ cleanup \(\d+ ms\): nothing written$/)
    expect(lines.at(-1)).toBe('smoke: 2 of 8 steps passed')
  }, 60_000)

  it('scripts/smoke.ts: no URL, two URLs or a bad dataset prefix is a usage error (exit 2)', async () => {
    const none = await smokeCli([])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/^smoke: no URL given\n\nusage: npx tsx scripts\/smoke.ts <url>/)
    const two = await smokeCli(['http://127.0.0.1:1', 'http://127.0.0.1:2'])
    expect(two.code).toBe(2)
    expect(two.stderr).toMatch(/^smoke: one URL expected, got http:\/\/127.0.0.1:1 http:\/\/127.0.0.1:2\n/)
    const bad = await smokeCli([running!.url, '--dataset', '../x'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^smoke: dataset: expected 1-58 letters, digits, '_' or '-' .* got "\.\.\/x"\n/)
    expect(bad.stdout).toBe('')
    const unknown = await smokeCli([running!.url, '--tokn', 'x'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/^smoke: Unknown option '--tokn'/)
  }, 60_000)
})

describe('runSmoke against the compiled Node server with an open API (no API_TOKENS)', () => {
  let open: Running | undefined
  let openDir: string | undefined

  beforeAll(async () => {
    openDir = await mkdtemp(join(tmpdir(), 'friday-smoke-open-'))
    const port = await freePort()
    open = await start(process.execPath, [join(ROOT, 'bin', 'friday.js'), 'serve'], {
      cwd: ROOT,
      env: childEnv({ DATA_DIR: join(openDir, 'data'), PORT: String(port), NO_COLOR: '1' }),
      port,
      timeoutMs: 60_000,
    })
  }, 90_000)

  afterAll(async () => {
    await stop(open)
    if (openDir) await rm(openDir, { recursive: true, force: true })
  })

  it('passes every step without a token; the auth step says there was nothing to check', async () => {
    const results = await runSmoke({ url: open!.url, backend: 'local_parquet' })
    expect(
      results.filter((r) => !r.ok),
      JSON.stringify(results, null, 2),
    ).toEqual([])
    expect(results[1]).toMatchObject({ name: 'auth', ok: true, note: 'no token given: the API is open, nothing to check' })
  }, 120_000)

  it('with a token, fails the auth step when a write without one is stored, and cleanup deletes what it stored', async () => {
    const results = await runSmoke({ url: open!.url, token: randomBytes(24).toString('hex'), dataset: 'smoke_open' })
    expect(results[1]).toMatchObject({ name: 'auth', ok: false })
    expect(results[1].error).toMatch(/^POST \/v1\/datasets\/smoke_open\/rows without a token: expected status 401, got 200: /)
    expect(results.at(-1)).toMatchObject({ name: 'cleanup', ok: true, note: 'smoke_open: 3 rows deleted' })
    const res = await fetch(`${open!.url}/v1/datasets/smoke_open/rows?format=json`)
    expect(await res.json()).toEqual([])
  }, 60_000)
})
