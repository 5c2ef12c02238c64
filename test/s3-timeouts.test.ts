/**
 * Every request of the S3 store is bounded in time (issue 11: a write hung 151 s with no error).
 * The store talks to tiny local HTTP servers on 127.0.0.1 that misbehave the way a stuck store or
 * network does: one accepts requests and never answers, one sends the headers and then stalls the
 * body. Each store call must reject with a `StoreError` naming the timeout, and leave no socket
 * open. These servers are fakes on purpose: a real S3 server cannot be made to hang on demand.
 * The last test runs the manifest log over a proxy to the real radosgw that stores a PUT and then
 * never answers it: the timed-out write is ambiguous, and the log learns by re-reading that it landed.
 */

import { createServer, request, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { S3Client } from '@aws-sdk/client-s3'
import { FetchHttpHandler } from '@smithy/fetch-http-handler'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../src/config/load.js'
import { StorageError, StoreError } from '../src/core/errors.js'
import { ManifestLog } from '../src/lake/manifest-log.js'
import { createStorage } from '../src/node.js'
import { abortSafeFetch } from '../src/stores/abort-safe-fetch.js'
import { createS3Store, type S3StoreOptions } from '../src/stores/s3-store.js'
import type { ObjectStore } from '../src/stores/types.js'
import { createTestBucketStore, requireS3OrSkip } from './helpers/s3.js'

const TIMEOUT_MS = 300
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' }

type Behaviour = 'silent' | 'stall-body'

// a full garbage collection on demand (what `node --expose-gc` gives as `gc`)
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

/** A server whose every request hangs: no answer at all, or headers and a part of the body. */
interface HangingServer {
  endpoint: string
  /** Requests it received (method and path). */
  requests: string[]
  /** Called on each request, after it was read. */
  onRequest?: () => void
  /** Connections still open. */
  open(): number
  close(): Promise<void>
}

async function hangingServer(behaviour: Behaviour): Promise<HangingServer> {
  const sockets = new Set<Socket>()
  const requests: string[] = []
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    req.resume() // take the request body, answer nothing (or not all of it)
    if (behaviour === 'stall-body') {
      res.writeHead(200, { 'content-type': 'application/xml', 'content-length': '1000' })
      res.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    }
    hanging.onRequest?.()
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const hanging: HangingServer = {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    open: () => sockets.size,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return hanging
}

/** Polls `condition` until it holds; fails with `what` after `ms`. */
async function eventually(what: string, condition: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms
  while (!condition()) {
    if (Date.now() > until) throw new Error(`still not true after ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const OPS: Record<string, (store: ObjectStore) => Promise<unknown>> = {
  get: (store) => store.get('a/b.parquet'),
  put: (store) => store.put('a/b.json', new TextEncoder().encode('{"version":1}'), { ifNoneMatch: '*' }),
  head: (store) => store.head('a/b.parquet'),
  list: (store) => store.list('a/'),
  delete: (store) => store.delete(['a/b.parquet', 'a/c.parquet']),
}

/** Runs `op`, expects the store's timeout error, and that the client closed every socket. */
async function expectTimeout(server: HangingServer, store: ObjectStore, op: string, closeWithinMs = 5_000): Promise<StoreError> {
  const t0 = performance.now()
  const err = await OPS[op](store).then(
    () => {
      throw new Error(`${op} resolved against a server that never answers`)
    },
    (e: unknown) => e,
  )
  const elapsed = performance.now() - t0
  expect(err).toBeInstanceOf(StoreError)
  const e = err as StoreError
  expect(e.code).toBe('store_error')
  expect(e.message).toMatch(new RegExp(`^s3 ${op} of .* timed out`))
  expect(e.details).toMatchObject({ op, bucket: 'timeouts', timeoutMs: TIMEOUT_MS })
  if (op === 'put') {
    // the request went out, no answer came back: the write may have landed
    expect(e.details?.outcome).toBe('unknown')
    expect(e.message).toContain('may or may not have been stored')
  } else if (op === 'delete') {
    // likewise a delete: the server may have carried it out
    expect(e.details?.outcome).toBe('unknown')
    expect(e.message).toContain('may or may not have been carried out')
  } else expect(e.details?.outcome).toBeUndefined()
  // it gave up because of the deadline, not earlier for some other reason
  expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 5)
  expect(server.requests.length).toBeGreaterThan(0)
  await eventually(`the ${op} request's socket is closed`, () => server.open() === 0, closeWithinMs)
  return e
}

describe.each(['silent', 'stall-body'] as const)('S3 store against a server that %s', (behaviour) => {
  let server: HangingServer
  const stores: ObjectStore[] = []
  beforeAll(async () => {
    server = await hangingServer(behaviour)
  })
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close()
    server.requests.length = 0
    server.onRequest = undefined
  })
  afterAll(async () => {
    await server?.close()
  })

  const store = (extra: Partial<S3StoreOptions> = {}) => {
    const s = createS3Store({
      bucket: 'timeouts',
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: CREDENTIALS,
      requestTimeoutMs: TIMEOUT_MS,
      ...extra,
    })
    stores.push(s)
    return s
  }

  // HEAD has no body: headers alone complete it, so only a silent server can make it hang
  const ops = behaviour === 'silent' ? Object.keys(OPS) : Object.keys(OPS).filter((op) => op !== 'head')

  it.each(ops)('%s rejects with a timeout StoreError and leaves no socket open', async (op) => {
    await expectTimeout(server, store(), op)
  })

  it.each(ops)('%s times out with a client passed in (no handler timeouts: the AbortSignal alone)', async (op) => {
    const client = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: CREDENTIALS,
    })
    try {
      await expectTimeout(server, store({ client }), op)
    } finally {
      client.destroy()
    }
  })

  it.each(ops)('%s times out over the fetch-based handler the SDK uses on Workers', async (op) => {
    // configured as the store configures the handler it builds on Workers. On Node a garbage
    // collection while the request is in flight cuts the plain handler's abort off from undici's
    // fetch (the request then stays open after the timeout): collect right when the request
    // arrives, and again while it hangs, to show that abortSafeFetch keeps the abort working
    server.onRequest = () => {
      collectGarbage()
      setTimeout(collectGarbage, TIMEOUT_MS / 2)
    }
    const client = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: CREDENTIALS,
      requestHandler: new FetchHttpHandler({ customFetch: abortSafeFetch }),
    })
    try {
      // undici (Node's fetch) closes the aborted connection at once, but may hold a spare idle
      // one until its keep-alive timeout (4 s)
      await expectTimeout(server, store({ client }), op, 15_000)
    } finally {
      client.destroy()
    }
  })
})

describe('S3 store timeout options', () => {
  it('storage.s3_parquet.request_timeout_ms reaches the store', async () => {
    const server = await hangingServer('silent')
    const storage = createStorage(
      {
        storage: {
          default_backend: 's3_parquet',
          s3_parquet: {
            bucket: 'timeouts',
            endpoint: server.endpoint,
            force_path_style: true,
            access_key_id: 'test',
            secret_access_key: 'test',
            request_timeout_ms: TIMEOUT_MS,
            connect_timeout_ms: 100,
          },
        },
      },
      {},
    )
    try {
      const err = await storage.listDatasets().catch((e: unknown) => e)
      // the first request checks the bucket: its timeout says the store is unavailable
      expect(err).toBeInstanceOf(StorageError)
      expect(err).toMatchObject({ status: 503, code: 'store_unavailable', details: { timeoutMs: TIMEOUT_MS } })
      expect((err as StorageError).message).toMatch(
        /^cannot access bucket 'timeouts' .*: timed out, no complete answer within 300 ms$/,
      )
    } finally {
      await storage.close()
      await server.close()
    }
  })

  it('the config refuses a timeout that is not a positive integer of ms', () => {
    for (const bad of [0, -5, 1.5]) {
      expect(() => parseConfig({ storage: { s3_parquet: { request_timeout_ms: bad } } }, {})).toThrow(
        /storage\.s3_parquet\.request_timeout_ms: expected an integer number of ms from 1 to 3600000, got /,
      )
    }
    expect(() => parseConfig({ storage: { s3_parquet: { connect_timeout_ms: 'soon' } } }, {})).toThrow(
      /storage\.s3_parquet\.connect_timeout_ms: expected number, got 'soon'/,
    )
  })

  it('refuses a timeout that is not a positive number of ms', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createS3Store({ bucket: 'timeouts', requestTimeoutMs: bad })).toThrow(/requestTimeoutMs must be a positive/)
      expect(() => createS3Store({ bucket: 'timeouts', connectTimeoutMs: bad })).toThrow(/connectTimeoutMs must be a positive/)
    }
  })
})

const s3 = await requireS3OrSkip()

describe.skipIf(!s3)('a timed-out PUT is ambiguous: the manifest log re-reads (radosgw behind a proxy)', () => {
  let direct: Awaited<ReturnType<typeof createTestBucketStore>>
  let proxy: Server
  let proxyUrl: string
  /** PUTs the proxy forwarded and whose answer it then kept from the client. */
  let swallowed = 0
  let swallowPuts = false
  const sockets = new Set<Socket>()

  beforeAll(async () => {
    direct = await createTestBucketStore('timeouts')
    const target = new URL(s3!.endpoint)
    proxy = createServer((req, res) => {
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          if (swallowPuts && req.method === 'PUT') {
            // the store has the object now; its answer never reaches the client
            up.resume()
            up.on('end', () => swallowed++)
            return
          }
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        },
      )
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    })
    proxy.on('connection', (socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => proxy?.close(() => resolve()))
    await direct?.cleanup()
  })

  it('a commit whose PUT landed but timed out is recognised as committed', async () => {
    const store = createS3Store({
      bucket: direct.bucket,
      endpoint: proxyUrl,
      forcePathStyle: true,
      region: s3!.region,
      credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
      requestTimeoutMs: 2_000,
    })
    try {
      const base = `manifests/${crypto.randomUUID()}`
      const body = new TextEncoder().encode('{"version":1,"commitId":"probe"}')
      swallowPuts = true
      const err = await store.put(`${base}.probe`, body).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreError)
      expect((err as StoreError).details).toMatchObject({ op: 'put', outcome: 'unknown', timeoutMs: 2_000 })
      expect(await direct.store.head(`${base}.probe`)).not.toBeNull() // it did land

      const log = new ManifestLog(store, 'cas')
      const committed = await log.commit(base, { version: 1, commitId: 'c-1' }, { kind: 'cas', etag: null, version: 0 })
      swallowPuts = false
      expect(swallowed).toBe(2)
      expect(committed).toBe(true)
      const { doc } = await new ManifestLog(direct.store, 'cas').load<{ version: number; commitId: string }>(base)
      expect(doc).toMatchObject({ version: 1, commitId: 'c-1' })
    } finally {
      swallowPuts = false
      await store.close()
    }
  })
})
