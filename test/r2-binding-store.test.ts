/**
 * The R2 binding store against workerd's own R2 simulation (Miniflare: `getR2Bucket` hands out
 * a proxy of a real `R2Bucket` binding): the ObjectStore conformance suite, the conditional-write
 * self-test (old Miniflare versions had etag conditions reversed; the suite proves create-if-absent
 * and compare-and-swap win and lose when they should), and the S3 Parquet lake on the binding:
 * the storage conformance suite, exact read-back, concurrent writers, the self-test on first write.
 */

import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PreconditionFailedError, type StorageError } from '../src/core/errors.js'
import type { DataStorage } from '../src/core/types.js'
import { createStorage } from '../src/index.js'
import { createR2BindingStore, type R2BucketBinding } from '../src/stores/r2-binding-store.js'
import { probeConditionalWrites } from '../src/stores/self-test.js'
import type { ObjectStore } from '../src/stores/types.js'
import { bars, expectedBars, rowsOf, sortRows, testStorage, uniqueDataset } from './conformance/storage.case.js'
import { storeSuite } from './helpers/store-suite.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

/** One workerd with one R2 bucket per binding name; stopped after the file. */
const mf = new Miniflare({ modules: true, script: 'export default {}', r2Buckets: ['R2_BUCKET', 'LAKE'] })
afterAll(() => mf.dispose())

async function binding(name: 'R2_BUCKET' | 'LAKE'): Promise<R2BucketBinding> {
  // Miniflare types the proxy with its own copy of the workers types; it is the real binding
  return (await mf.getR2Bucket(name)) as unknown as R2BucketBinding
}

storeSuite('r2 binding (workerd via Miniflare)', async () => ({
  store: createR2BindingStore({ bucket: await binding('R2_BUCKET') }),
  cleanup: async () => {},
}))

describe('r2 binding store extras', () => {
  let bucket: R2BucketBinding
  let store: ObjectStore
  beforeAll(async () => {
    bucket = await binding('R2_BUCKET')
    store = createR2BindingStore({ bucket, bindingName: 'R2_BUCKET' })
  })

  it('declares both conditions and an r2:// location', () => {
    expect(store.capabilities).toEqual({ ifNoneMatch: true, ifMatch: true })
    expect(store.location).toBe('r2://R2_BUCKET')
  })

  it('maps a failed onlyIf (R2 answers null) to PreconditionFailedError and writes nothing', async () => {
    const key = `extras-cond-${crypto.randomUUID()}`
    const first = await store.put(key, enc.encode('first'), { ifNoneMatch: '*' })
    const lost = await store.put(key, enc.encode('second'), { ifNoneMatch: '*' }).catch((e: unknown) => e)
    expect(lost).toBeInstanceOf(PreconditionFailedError)
    expect((lost as StorageError).status).toBe(412)
    const wrong = await store.put(key, enc.encode('third'), { ifMatch: 'f'.repeat(32) }).catch((e: unknown) => e)
    expect(wrong).toBeInstanceOf(PreconditionFailedError)
    // what the binding itself holds: still the first write
    const raw = await bucket.get(key)
    expect(dec.decode(new Uint8Array(await raw!.arrayBuffer()))).toBe('first')
    expect(raw!.etag).toBe(first.etag)
  })

  it('self-test: both winning and losing cases of create-if-absent and compare-and-swap', async () => {
    const probe = await probeConditionalWrites(store, 'extras-probe')
    expect(probe).toEqual({
      ifNoneMatch: true,
      ifMatch: true,
      details:
        "second create with ifNoneMatch '*' was rejected: enforced; ifMatch with a wrong etag was rejected; " +
        'ifMatch with the current etag was accepted',
    })
  })

  it('pages through listings past 1000 keys and deletes them in batches of 1000', async () => {
    const keys = Array.from({ length: 1100 }, (_, i) => `page/k${String(i).padStart(5, '0')}`)
    for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => store.put(k, enc.encode(k))))
    const lists = store.stats().list
    expect((await store.list('page/')).objects.map((o) => o.key)).toEqual(keys)
    expect(store.stats().list - lists).toBeGreaterThanOrEqual(2)
    expect((await store.list('page/', { startAfter: 'page/k01049' })).objects.map((o) => o.key)).toEqual(keys.slice(1050))
    const deletes = store.stats().delete
    await store.delete(keys)
    expect(store.stats().delete - deletes).toBe(2)
    expect((await store.list('page/')).objects).toEqual([])
  })

  it('keeps keys under its prefix and strips it from listings', async () => {
    const inner = createR2BindingStore({ bucket, prefix: '/tenant/one/' })
    expect(inner.location).toBe('r2://R2_BUCKET/tenant/one')
    await inner.put('ds/symbol=A/x', enc.encode('x'))
    expect(await store.head('tenant/one/ds/symbol=A/x')).not.toBeNull()
    expect((await inner.list('ds/', { delimiter: '/' })).prefixes).toEqual(['ds/symbol=A/'])
    expect((await inner.list('')).objects.map((o) => o.key)).toEqual(['ds/symbol=A/x'])
    await inner.delete(['ds/symbol=A/x'])
    expect(await store.head('tenant/one/ds/symbol=A/x')).toBeNull()
  })

  it('refuses a write past its deadline without sending it', async () => {
    const puts = store.stats().put
    const err = await store.put('deadline/x', enc.encode('x'), { deadline: Date.now() - 1 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'deadline_passed' })
    expect(store.stats().put).toBe(puts)
    expect(await store.head('deadline/x')).toBeNull()
  })

  it('fails after close, and refuses something that is not a binding', async () => {
    const s = createR2BindingStore({ bucket })
    await s.close()
    await expect(s.get('a')).rejects.toMatchObject({ code: 'closed' })
    expect(() => createR2BindingStore({ bucket: 'R2_BUCKET' as unknown as R2BucketBinding })).toThrow(/R2 bucket binding/)
  })
})

// ---------------------------------------------------------------- the lake on the binding

function r2Lake(bucket: R2BucketBinding, prefix?: string): DataStorage {
  // no S3_BUCKET, endpoint or keys: the binding replaces the S3 API
  return createStorage(
    { storage: { default_backend: 's3_parquet', read_cache: { enabled: false }, s3_parquet: { prefix } } },
    {},
    { r2Bucket: bucket, r2BindingName: 'LAKE' },
  )
}

testStorage({ name: 's3_parquet on an R2 binding (workerd via Miniflare)', create: async () => r2Lake(await binding('LAKE')) })

describe('S3 Parquet lake on an R2 binding', () => {
  let bucket: R2BucketBinding
  beforeAll(async () => {
    bucket = await binding('LAKE')
  })

  it('runs the conditional-write self-test before its first write, then writes and reads back exactly', async () => {
    // the real binding, with a record of the puts sent through it
    const puts: { key: string; onlyIf?: Record<string, string> }[] = []
    const recorded: R2BucketBinding = {
      head: (k) => bucket.head(k),
      get: (k, o) => bucket.get(k, o),
      delete: (k) => bucket.delete(k),
      list: (o) => bucket.list(o),
      put: (key, value, options) => {
        puts.push({ key, ...(options?.onlyIf ? { onlyIf: options.onlyIf } : {}) })
        return bucket.put(key, value, options)
      },
    }
    const storage = r2Lake(recorded, 'exact')
    try {
      const ds = uniqueDataset('r2exact')
      const rows = bars(['AAPL', 'MSFT', 'EUR/USD'], [0, 1], 30)
      expect(await storage.write(ds, rows)).toMatchObject({ rowsWritten: rows.length })
      // first the probe: create, losing create, losing and winning compare-and-swap, on one key
      const probe = puts.slice(0, 4)
      expect(probe.map((p) => p.key.replace(/probe-.*$/, 'probe-*'))).toEqual(Array(4).fill('exact/_friday/_selftest/probe-*'))
      expect(new Set(probe.map((p) => p.key)).size).toBe(1)
      expect(probe.map((p) => p.onlyIf)).toEqual([
        { etagDoesNotMatch: '*' },
        { etagDoesNotMatch: '*' },
        { etagMatches: 'friday-selftest-wrong-etag' },
        { etagMatches: expect.stringMatching(/^[0-9a-f]{32}$/) },
      ])
      expect(puts.slice(4).some((p) => p.key.startsWith(`exact/${ds}/`))).toBe(true)
      expect(sortRows(rowsOf(await storage.read(ds)))).toEqual(expectedBars(rows))
      // the lake's objects are in the bucket, under the prefix; the probe left nothing
      const listed = await bucket.list({ prefix: `exact/${ds}/` })
      expect(listed.objects.filter((o) => o.key.endsWith('.parquet')).length).toBeGreaterThanOrEqual(6)
      expect((await bucket.list({ prefix: 'exact/_friday/_selftest' })).objects).toEqual([])
    } finally {
      await storage.close()
    }
  })

  it('four writers on their own storages append to the same partitions and lose nothing', async () => {
    const ds = uniqueDataset('r2writers')
    const writers = Array.from({ length: 4 }, () => r2Lake(bucket, 'writers'))
    try {
      const batches = writers.map((_, w) =>
        bars(['AAPL', 'MSFT'], [0], 40).filter((r) => Math.floor(((r.timestamp as number) / 60_000) % 4) === w),
      )
      expect(batches.map((b) => b.length)).toEqual([20, 20, 20, 20])
      const results = await Promise.all(writers.map((s, w) => s.write(ds, batches[w])))
      expect(results.map((r) => r.rowsWritten)).toEqual([20, 20, 20, 20])
      const reader = r2Lake(bucket, 'writers')
      try {
        expect(sortRows(rowsOf(await reader.read(ds)))).toEqual(expectedBars(batches.flat()))
      } finally {
        await reader.close()
      }
    } finally {
      await Promise.all(writers.map((s) => s.close()))
    }
  })
})

describe('Worker entry (functions/worker.ts) and the R2_BUCKET name', () => {
  it('refuses a variable named R2_BUCKET (not a binding) with a config error, and keeps nothing', async () => {
    const worker = (await import('../functions/worker.js')).default
    type Bindings = Parameters<typeof worker.fetch>[1]
    const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as never
    const misconfigured = { R2_BUCKET: 'market-data' } as unknown as Bindings
    const res = await worker.fetch(new Request('http://worker/healthz'), misconfigured, ctx)
    expect(res.status).toBe(500)
    const body = (await res.json()) as { error: { code: string; message: string } }
    expect(body.error).toMatchObject({
      code: 'config_error',
      message: 'R2_BUCKET must be an R2 bucket binding ([[r2_buckets]] in wrangler.toml), not a variable',
    })
    // nothing was cached: the next request with a real binding is served
    const ok = await worker.fetch(
      new Request('http://worker/healthz'),
      { R2_BUCKET: await binding('LAKE') } as unknown as Bindings,
      ctx,
    )
    expect(ok.status, await ok.clone().text()).toBe(200)
  })
})
