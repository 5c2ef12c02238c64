/**
 * Access control and HTTP hardening (issue 12 items 10 and 12), in-process over a real local lake
 * plus the real Node server: the open local server answers only loopback `Host`s and no foreign
 * `Origin` and refuses CORS; weak tokens are refused at startup; failed authentication is slowed
 * and limited per address; `/healthz` and backend failures say nothing about hosts, buckets or
 * SQL to a stranger; every response has `nosniff` and `no-store`; `?__proto__=` is a 400; CSV
 * formula escaping is opt-in.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { wrapDbError } from '../src/backends/postgres/session.js'
import { ConfigError, StorageError } from '../src/core/errors.js'
import type { DataStorage } from '../src/core/types.js'
import { FailureLimiter } from '../src/http/auth.js'
import { checkDeployment, httpOptionsFromEnv } from '../src/http/config.js'
import { createApp } from '../src/http/index.js'
import { prepareServer, type RunningServer, startNodeServer } from '../src/server/node-server.js'
import { json, localLake, postJson, type TestLake, testApp } from './helpers/http.js'

const ROW = { symbol: 'AAPL', timestamp: '2024-01-02T14:30:00Z', close: 187.3 }
const STRONG = 'f3a9c1d27be84e05a6d9'
const tokens = [{ token: STRONG, scopes: ['admin' as const] }]
const bearer = { authorization: `Bearer ${STRONG}` }

let lake: TestLake
let storage: DataStorage

beforeAll(async () => {
  lake = await localLake()
  storage = lake.storage
  await storage.write('bars', [ROW])
})
afterAll(async () => {
  await lake?.cleanup()
})

/** Runs `fn` with console.error captured (returned as text). */
async function capturingErrors<T>(fn: () => Promise<T>): Promise<{ result: T; logged: string }> {
  const lines: string[] = []
  const original = console.error
  console.error = (...args: unknown[]) =>
    lines.push(args.map((a) => (a instanceof Error ? `${a.message} ${a.cause ?? ''}` : String(a))).join(' '))
  try {
    return { result: await fn(), logged: lines.join('\n') }
  } finally {
    console.error = original
  }
}

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('open local mode (no tokens): browsers are kept out', () => {
  it('refuses a DNS-rebinding Host (403 JSON) on reads, writes, deletes and maintenance; nothing is written', async () => {
    const app = testApp(storage)
    const evil = { host: 'rebind.evil.example' }
    const calls: [string, RequestInit][] = [
      ['/v1/datasets', { headers: evil }],
      ['/healthz', { headers: evil }],
      [
        '/v1/datasets/rebound/rows',
        { method: 'POST', headers: { ...evil, 'content-type': 'application/json' }, body: JSON.stringify([ROW]) },
      ],
      ['/v1/datasets/bars/rows?all=true', { method: 'DELETE', headers: evil }],
      ['/v1/maintenance/run', { method: 'POST', headers: evil }],
      ['/v1/datasets', { headers: { host: 'localhost.evil.example' } }],
      ['/v1/datasets', { headers: { host: '127.0.0.1.nip.io' } }],
    ]
    for (const [path, init] of calls) {
      const res = await app.request(path, init)
      const body = await json(res)
      expect(res.status, `${init.method ?? 'GET'} ${path}`).toBe(403)
      expect(body.error.code).toBe('forbidden')
      expect(body.error.message).toMatch(/Host .* is not served/)
    }
    expect(await storage.listDatasets()).toEqual(['bars'])
    expect((await storage.read('bars')).length).toBe(1)
    // the loopback names are served
    for (const host of ['localhost', '127.0.0.1', '[::1]', 'LOCALHOST:8787']) {
      expect((await app.request('/v1/datasets', { headers: { host } })).status, host).toBe(200)
    }
  })

  it('refuses a cross-site text/plain POST (foreign Origin) and a null Origin; a same-origin one passes', async () => {
    const app = testApp(storage)
    for (const origin of ['https://evil.example', 'null', 'http://localhost.evil.example', 'https://localhost']) {
      const res = await app.request('/v1/datasets/crosssite/rows', {
        method: 'POST',
        headers: { origin, 'content-type': 'text/plain' },
        body: JSON.stringify([ROW]),
      })
      const body = await json(res)
      expect(res.status, origin).toBe(403)
      expect(body.error.message).toMatch(/cross-origin request .* refused/)
      const del = await app.request('/v1/datasets/bars/rows?all=true', { method: 'DELETE', headers: { origin } })
      expect(del.status, origin).toBe(403)
      const maint = await app.request('/v1/maintenance/run', { method: 'POST', headers: { origin } })
      expect(maint.status, origin).toBe(403)
    }
    expect(await storage.listDatasets()).toEqual(['bars'])
    expect((await storage.read('bars')).length).toBe(1)
    const same = await app.request('/v1/datasets', { headers: { origin: 'http://localhost' } })
    expect(same.status).toBe(200)
  })

  it("checks the server's port and the configured extra host names", async () => {
    const app = createApp({ storage, openWrites: true, port: 8787, allowedHosts: ['friday.internal'] })
    const status = async (host: string, origin?: string) =>
      (await app.request('/v1/datasets', { headers: { host, ...(origin ? { origin } : {}) } })).status
    expect(await status('localhost:8787')).toBe(200)
    expect(await status('[::1]:8787')).toBe(200)
    expect(await status('friday.internal:8787')).toBe(200)
    expect(await status('localhost:9999')).toBe(403)
    expect(await status('localhost')).toBe(403) // port 80
    expect(await status('other.internal:8787')).toBe(403)
    expect(await status('localhost:8787', 'http://localhost:8787')).toBe(200)
    expect(await status('localhost:8787', 'http://localhost:3000')).toBe(403) // another local app's page
  })

  it('with tokens the Host and Origin checks are off (a public server has its own names)', async () => {
    const app = createApp({ storage, tokens })
    const res = await app.request('/v1/datasets', {
      headers: { host: 'api.example.com', origin: 'https://x.example', ...bearer },
    })
    expect(res.status).toBe(200)
  })

  it('refuses to start with CORS enabled and no tokens: a ConfigError naming CORS_ORIGINS', () => {
    for (const origins of ['*', 'https://app.example.com']) {
      const err = configErrorOf(() =>
        prepareServer({
          env: { CORS_ORIGINS: origins },
          config: { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: join(tmpdir(), 'never-created') } } },
        }),
      )
      expect(err.message).toMatch(/CORS_ORIGINS/)
      expect((err.details as { issues: { path: string }[] }).issues[0].path).toBe('CORS_ORIGINS')
    }
    expect(configErrorOf(() => createApp({ storage, openWrites: true, cors: { origins: ['*'] } })).message).toMatch(
      /CORS_ORIGINS/,
    )
    // with a strong token, CORS is fine
    expect(() => checkDeployment(httpOptionsFromEnv({ CORS_ORIGINS: '*', API_TOKENS: `${STRONG}=read` }), 'local')).not.toThrow()
  })
})

/** One HTTP/1.1 request with exactly these headers (fetch would not let a test set Host). */
function rawRequest(
  url: string,
  options: { method?: string; path: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { hostname, port, method: options.method ?? 'GET', path: options.path, headers: options.headers },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

describe('the real Node server without tokens', () => {
  let dir: string
  let server: RunningServer
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-security-'))
    server = await startNodeServer({
      port: 0,
      config: { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } },
      env: {},
      log: () => {},
    })
  })
  afterAll(async () => {
    await server?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('serves its own host and port, refuses a rebinding Host, another port and a cross-site POST', async () => {
    const port = new URL(server.url).port
    const body = JSON.stringify([ROW])
    const post = (headers: Record<string, string>) =>
      rawRequest(server.url, {
        method: 'POST',
        path: '/v1/datasets/bars/rows',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      })
    const rebound = await post({ host: `rebind.evil.example:${port}` })
    expect(rebound.status).toBe(403)
    expect(JSON.parse(rebound.body).error.code).toBe('forbidden')
    expect((await post({ host: `127.0.0.1:${Number(port) === 65535 ? 1 : Number(port) + 1}` })).status).toBe(403)
    const crossSite = await post({ host: `127.0.0.1:${port}`, origin: 'https://evil.example', 'content-type': 'text/plain' })
    expect(crossSite.status).toBe(403)
    const listed = await rawRequest(server.url, { path: '/v1/datasets', headers: { host: `localhost:${port}` } })
    expect(JSON.parse(listed.body)).toEqual({ datasets: [] }) // nothing was written
    const ok = await post({ host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` })
    expect(ok.status, ok.body).toBe(200)
    expect(ok.headers['x-content-type-options']).toBe('nosniff')
    expect(ok.headers['cache-control']).toBe('no-store')
  })
})

describe('tokens', () => {
  it('refuses weak tokens at startup with a ConfigError naming the entry, before binding 0.0.0.0', () => {
    for (const value of ['a=admin', 'short-token=read', 'aaaaaaaaaaaaaaaaaaaa=read', `${STRONG}=read,abc=write`]) {
      const err = configErrorOf(() => prepareServer({ host: '0.0.0.0', port: 0, env: { API_TOKENS: value } }))
      expect(err.message, value).toMatch(/API_TOKENS\[\d\].*too weak/)
      expect(err.message).not.toContain('aaaaaaaaaaaa') // the token is masked
    }
    expect(() => checkDeployment(httpOptionsFromEnv({ API_TOKENS: `${STRONG}=read` }), 'local')).not.toThrow()
    expect(() => checkDeployment(httpOptionsFromEnv({ API_TOKENS: `${STRONG}=read` }), 'worker')).not.toThrow()
  })

  it('slows every failed authentication and answers 429 after the limit, per client address', async () => {
    const app = createApp({
      storage,
      tokens,
      clientAddress: (c) => c.req.header('x-test-client'),
      authFailures: { delayMs: 200, limit: 3, windowMs: 60_000 },
    })
    const get = (client: string, token: string) =>
      app.request('/v1/datasets', { headers: { 'x-test-client': client, authorization: `Bearer ${token}` } })
    const t0 = performance.now()
    const first = await get('10.0.0.1', 'guess-0')
    expect(first.status).toBe(401)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(180) // a lower bound: holds on any machine
    expect((await get('10.0.0.1', 'guess-1')).status).toBe(401)
    expect((await get('10.0.0.1', 'guess-2')).status).toBe(401)
    const limited = await get('10.0.0.1', STRONG) // even the right token, until the window ends
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/)
    expect((await json(limited)).error.code).toBe('too_many_requests')
    expect((await get('10.0.0.2', STRONG)).status).toBe(200) // another address is not affected
    // a valid token is not slowed
    const t1 = performance.now()
    expect((await get('10.0.0.3', STRONG)).status).toBe(200)
    expect(performance.now() - t1).toBeLessThan(10_000)
  })

  it('the real Node server limits failures by the socket address (429 after 20 failures, even for the right token)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'friday-security-auth-'))
    const server = await startNodeServer({
      port: 0,
      config: { storage: { default_backend: 'local_parquet', local_parquet: { base_dir: dir } } },
      env: { API_TOKENS: `${STRONG}=read` },
      log: () => {},
    })
    try {
      const get = (token: string) => fetch(`${server.url}/v1/datasets`, { headers: { authorization: `Bearer ${token}` } })
      const ok = await get(STRONG)
      expect(ok.status).toBe(200)
      await ok.body?.cancel()
      // in parallel: the 250 ms delays overlap
      const failures = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`wrong-token-number-${i}`)))
      expect(failures.map((r) => r.status)).toEqual(Array(20).fill(401))
      for (const r of failures) await r.body?.cancel()
      const limited = await get(STRONG)
      expect(limited.status).toBe(429)
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
      await limited.body?.cancel()
    } finally {
      await server.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('keeps the failure table bounded and forgets an address after its window', () => {
    let now = 0
    const limiter = new FailureLimiter({ delayMs: 0, limit: 2, windowMs: 1000, maxClients: 100 }, () => now)
    for (let i = 0; i < 5000; i++) limiter.fail(`10.1.${i >> 8}.${i & 255}`)
    expect(limiter.size).toBe(100)
    limiter.fail('a')
    limiter.fail('a')
    expect(limiter.blockedFor('a')).toBe(1)
    now = 1001
    expect(limiter.blockedFor('a')).toBe(0)
  })
})

describe('configuration', () => {
  it('httpOptionsFromEnv reads ALLOWED_HOSTS, PUBLIC_READS and the training limits, naming a bad variable', () => {
    expect(
      httpOptionsFromEnv({
        ALLOWED_HOSTS: 'Friday.Internal, 10.0.0.5',
        PUBLIC_READS: 'true',
        TRAINING_MAX_LOOKBACK: '512',
        TRAINING_MAX_SYMBOLS: '100',
        TRAINING_MAX_BYTES: '1000000',
        TRAINING_CACHE_BYTES: '0',
        TRAINING_CACHE_TTL_MS: '60000',
      }),
    ).toEqual({
      tokens: [],
      allowedHosts: ['friday.internal', '10.0.0.5'],
      publicReads: true,
      training: { maxLookback: 512, maxSymbols: 100, maxBytes: 1_000_000, cacheBytes: 0, cacheTtlMs: 60_000 },
    })
    expect(httpOptionsFromEnv({ PUBLIC_READS: 'false' }).publicReads).toBe(false)
    const bad: [Record<string, string>, RegExp][] = [
      [{ ALLOWED_HOSTS: 'http://friday.internal' }, /ALLOWED_HOSTS.*host names/],
      [{ ALLOWED_HOSTS: 'friday.internal:8787' }, /ALLOWED_HOSTS/],
      [{ PUBLIC_READS: 'yes' }, /PUBLIC_READS.*true or false/],
      [{ TRAINING_MAX_LOOKBACK: '0' }, /TRAINING_MAX_LOOKBACK.*at least 1/],
      [{ TRAINING_MAX_SYMBOLS: 'many' }, /TRAINING_MAX_SYMBOLS.*positive integer/],
      [{ TRAINING_CACHE_BYTES: '-1' }, /TRAINING_CACHE_BYTES/],
    ]
    for (const [env, message] of bad) {
      const err = configErrorOf(() => httpOptionsFromEnv(env))
      expect(err.message, JSON.stringify(env)).toMatch(message)
    }
  })
})

describe('what a stranger learns from failures', () => {
  const leaky = new StorageError(502, 'store_error', "bucket 'secret-bucket' prefix 'team/prod/' not found")
  const failing = () => Object.create(storage, { listDatasets: { value: async () => Promise.reject(leaky) } }) as DataStorage

  it('/healthz names only the error code without a valid token, the details with one', async () => {
    const app = createApp({ storage: failing(), tokens })
    const { result: anon } = await capturingErrors(async () => json(await app.request('/healthz')))
    expect(anon.error.code).toBe('unhealthy')
    expect(anon.error.message).toBe('backend local_parquet check failed: store_error')
    const { result: wrong } = await capturingErrors(async () =>
      json(await app.request('/healthz', { headers: { authorization: 'Bearer not-a-valid-token-at-all' } })),
    )
    expect(JSON.stringify(wrong)).not.toContain('secret-bucket')
    const { result: authed } = await capturingErrors(async () => json(await app.request('/healthz', { headers: bearer })))
    expect(authed.error.message).toContain('secret-bucket')
    // a Worker serving public reads without tokens: generic too
    const worker = createApp({ storage: failing(), publicReads: true })
    const { result: pub } = await capturingErrors(async () => json(await worker.request('/healthz')))
    expect(JSON.stringify(pub)).not.toContain('secret-bucket')
  })

  it('a database error is answered with a generic message, its SQLSTATE and a ref; the driver text is logged', async () => {
    // a real driver error where PostgreSQL runs, else one shaped like it
    let driverError: unknown = Object.assign(new Error('relation "friday_secret_table" does not exist'), { code: '42P01' })
    const url = process.env.DATABASE_URL
    if (url) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
      try {
        await client.connect()
        await client.query('SELECT * FROM friday_secret_table')
      } catch (err) {
        if ((err as { code?: string }).code === '42P01') driverError = err
      } finally {
        await client.end().catch(() => {})
      }
    }
    const wrapped = wrapDbError(driverError)
    const broken = Object.create(storage, { listDatasets: { value: async () => Promise.reject(wrapped) } }) as DataStorage
    const app = createApp({ storage: broken, tokens })
    const { result: res, logged } = await capturingErrors(async () => app.request('/v1/datasets', { headers: bearer }))
    const body = await json(res)
    expect(res.status).toBe(502)
    expect(body.error.code).toBe('store_error')
    expect(body.error.message).toMatch(/^the storage backend failed \(ref [0-9a-f]{8}; the server log has the details\)$/)
    expect(body.error.details).toEqual({ sqlstate: '42P01', ref: expect.stringMatching(/^[0-9a-f]{8}$/) })
    expect(JSON.stringify(body)).not.toContain('friday_secret_table')
    expect(logged).toContain(`ref ${body.error.details.ref}`)
    expect(logged).toContain('friday_secret_table')
  })
})

describe('responses and parameters', () => {
  it('every response carries X-Content-Type-Options: nosniff and Cache-Control: no-store', async () => {
    const app = testApp(storage)
    const authed = createApp({ storage, tokens })
    const responses = [
      await app.request('/healthz'),
      await app.request('/v1/datasets'),
      await app.request('/v1/datasets/bars/rows?format=csv'),
      await app.request('/v1/datasets/bars/rows?format=parquet'),
      await app.request('/v1/nothing-here'),
      await app.request('/v1/datasets', { method: 'DELETE' }),
      await app.request('/v1/datasets?bad=1'),
      await authed.request('/v1/datasets'),
      await postJson(app, '/v1/datasets/bars/rows', [ROW]),
    ]
    for (const res of responses) {
      expect(res.headers.get('x-content-type-options'), res.url).toBe('nosniff')
      expect(res.headers.get('cache-control'), res.url).toBe('no-store')
      await res.body?.cancel()
    }
  })

  it('?__proto__= and ?constructor= are unknown parameters (400) like any other', async () => {
    const app = testApp(storage)
    for (const path of [
      '/v1/datasets?__proto__=x',
      '/v1/datasets/bars/rows?__proto__=x',
      '/v1/datasets?constructor=x',
      '/v1/oplog?__proto__=1',
    ]) {
      const res = await app.request(path)
      const body = await json(res)
      expect(res.status, path).toBe(400)
      expect(body.error.message, path).toMatch(/unknown query parameter/)
    }
  })

  it('CSV writes formula-like values as stored; csv_escape_formulas=true prefixes them with a quote', async () => {
    const app = testApp(storage)
    const notes = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2', '@SUM(A1)', '\tx', 'plain', 'a=b']
    const rows = notes.map((note, i) => ({ symbol: 'NOTE', timestamp: new Date(Date.UTC(2024, 0, 2, 0, i)).toISOString(), note }))
    expect((await postJson(app, '/v1/datasets/notes/rows', rows)).status).toBe(200)
    const plain = await (await app.request('/v1/datasets/notes/rows?format=csv')).text()
    expect(plain).toContain('=HYPERLINK(')
    expect(plain).not.toContain("'=HYPERLINK(")
    const escaped = await (await app.request('/v1/datasets/notes/rows?format=csv&csv_escape_formulas=true')).text()
    for (const v of ["'=HYPERLINK(", "'+1+1", "'-2", "'@SUM(A1)", "'\tx"]) expect(escaped, v).toContain(v)
    expect(escaped).toMatch(/,plain\r?\n/)
    expect(escaped).toMatch(/,a=b\r?\n/)
    expect(escaped).not.toContain("'plain")
    const wrongFormat = await app.request('/v1/datasets/notes/rows?format=json&csv_escape_formulas=true')
    expect(wrongFormat.status).toBe(400)
    expect((await json(wrongFormat)).error.details.issues[0].field).toBe('csv_escape_formulas')
    // the stored values are untouched
    expect((await storage.read('notes')).columns.note.values).toEqual(notes)
  })
})
