/**
 * The ObjectStore conformance suite (test/helpers/store-suite.ts), run against the local
 * filesystem store and the S3 store (against a real radosgw); backend-specific checks follow each.
 */

import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { PreconditionFailedError, StorageError } from '../src/core/errors.js'
import { createS3Store } from '../src/stores/s3-store.js'
import { createTestBucketStore, requireS3OrSkip, s3TestClient } from './helpers/s3.js'
import { storeSuite } from './helpers/store-suite.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (s: string) => enc.encode(s)
const text = (b: Uint8Array) => dec.decode(b)

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries.map(String)
}

// ---------------------------------------------------------------- local filesystem

let localDir = ''
storeSuite('local filesystem', async () => {
  localDir = await mkdtemp(join(tmpdir(), 'friday-store-'))
  return {
    store: createLocalFsStore({ baseDir: join(localDir, 'lake') }),
    cleanup: () => rm(localDir, { recursive: true, force: true }),
  }
})

describe('local filesystem store extras', () => {
  let dir: string
  let store: ReturnType<typeof createLocalFsStore>
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-store-x-'))
    store = createLocalFsStore({ baseDir: join(dir, 'base'), fileMode: 0o640 })
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('declares ifNoneMatch but not ifMatch, and a file:// location', () => {
    expect(store.capabilities).toEqual({ ifNoneMatch: true, ifMatch: false })
    expect(store.location).toBe(`file://${join(dir, 'base')}`)
  })

  it('rejects keys that could escape the base directory', async () => {
    const bad = ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a/', '', 'a\\b', 'a\u0000b', 'a/\nb', 'a/./b', 'a/.tmp-x']
    for (const key of bad) {
      const err = await store.put(key, bytes('x')).catch((e: unknown) => e)
      expect(err, key).toBeInstanceOf(StorageError)
      expect((err as StorageError).status, key).toBe(400)
      await expect(store.get(key), key).rejects.toMatchObject({ status: 400 })
      await expect(store.head(key), key).rejects.toMatchObject({ status: 400 })
      await expect(store.delete([key]), key).rejects.toMatchObject({ status: 400 })
    }
    await expect(store.list('../')).rejects.toMatchObject({ status: 400 })
    expect(await allFiles(dir)).not.toContain('x')
  })

  it('leaves no temp files behind, and list ignores them', async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.put(`tmpcheck/f${i}`, bytes(`${i}`))))
    await Promise.all(
      Array.from({ length: 10 }, () => store.put('tmpcheck/excl', bytes('e'), { ifNoneMatch: '*' }).catch(() => {})),
    )
    const names = await allFiles(join(dir, 'base'))
    // temp files live in <base>/.tmp-friday/ only (never in a data directory), and none is left
    expect(names.filter((n) => n.includes('.tmp-'))).toEqual(['.tmp-friday'])
    expect(names.filter((n) => n.startsWith('tmpcheck/'))).toHaveLength(11)

    await writeFile(join(dir, 'base', 'tmpcheck', '.tmp-abandoned'), 'half a file')
    const listed = await store.list('tmpcheck/')
    expect(listed.objects).toHaveLength(11)
    expect(listed.objects.some((o) => o.key.includes('.tmp-'))).toBe(false)
    expect((await store.list('tmpcheck/', { delimiter: '/' })).objects).toHaveLength(11)
  })

  it('a fresh store removes temp files a killed process left over an hour ago, and only those', async () => {
    const base = join(dir, 'sweep')
    const first = createLocalFsStore({ baseDir: base })
    await first.put('k', bytes('1'))
    await first.close()
    const old = join(base, '.tmp-friday', '.tmp-killed-long-ago')
    const recent = join(base, '.tmp-friday', '.tmp-killed-just-now')
    await writeFile(old, 'half a file')
    await writeFile(recent, 'half a file')
    const past = new Date(Date.now() - 2 * 60 * 60 * 1000)
    await utimes(old, past, past)
    const second = createLocalFsStore({ baseDir: base })
    await second.put('k2', bytes('2'))
    await second.close()
    expect((await readdir(join(base, '.tmp-friday'))).sort()).toEqual(['.tmp-killed-just-now'])
    expect((await allFiles(base)).filter((n) => !n.startsWith('.tmp-friday')).sort()).toEqual(['k', 'k2'])
  })

  it('gives files fileMode', async () => {
    await store.put('mode/f', bytes('m'))
    expect((await stat(join(dir, 'base', 'mode', 'f'))).mode & 0o777).toBe(0o640)
  })

  it('removes emptied parent directories up to the base directory', async () => {
    await store.put('prune/a/b/c/file', bytes('x'))
    await store.put('prune/a/keep', bytes('y'))
    await store.delete(['prune/a/b/c/file'])
    expect(await allFiles(join(dir, 'base', 'prune'))).toEqual(['a', 'a/keep'])
    await store.delete(['prune/a/keep'])
    await expect(stat(join(dir, 'base', 'prune'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect((await stat(join(dir, 'base'))).isDirectory()).toBe(true)
  })

  it('survives puts racing with deletes that prune directories', async () => {
    const ops: Promise<unknown>[] = []
    for (let i = 0; i < 50; i++) {
      ops.push(store.put(`churn/d/k${i}`, bytes('x')))
      ops.push(store.delete([`churn/d/k${i - 1}`]))
    }
    await Promise.all(ops)
    expect(await store.head('churn/d/k49')).not.toBeNull()
  })

  it('fails after close', async () => {
    const s = createLocalFsStore({ baseDir: join(dir, 'closing') })
    await s.close()
    await expect(s.get('a')).rejects.toMatchObject({ code: 'closed' })
  })
})

// ---------------------------------------------------------------- S3 (radosgw)

const s3 = await requireS3OrSkip()

storeSuite('s3 (radosgw)', () => createTestBucketStore('conf'), !s3)

describe.skipIf(!s3)('s3 store extras', () => {
  let h: Awaited<ReturnType<typeof createTestBucketStore>>
  beforeAll(async () => {
    h = await createTestBucketStore('extra')
  })
  afterAll(() => h?.cleanup())

  it('paginates listings past 1000 keys', async () => {
    const n = 1100
    const keys = Array.from({ length: n }, (_, i) => `page/k${String(i).padStart(5, '0')}`)
    let next = 0
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < keys.length) {
          const k = keys[next++]
          await h.store.put(k, bytes(k))
        }
      }),
    )
    const before = h.store.stats().list
    const listed = await h.store.list('page/')
    expect(listed.objects.map((o) => o.key)).toEqual(keys)
    expect(h.store.stats().list - before).toBeGreaterThanOrEqual(2)
    const after = await h.store.list('page/', { startAfter: 'page/k01049' })
    expect(after.objects.map((o) => o.key)).toEqual(keys.slice(1050))

    const deletesBefore = h.store.stats().delete
    await h.store.delete(keys)
    expect(h.store.stats().delete - deletesBefore).toBe(2) // two DeleteObjects batches
    expect((await h.store.list('page/')).objects).toEqual([])
  })

  it('reports lost races answered with HTTP 500 as PreconditionFailedError, even without SDK retries', async () => {
    // radosgw answers some lost conditional races with 500; with the SDK's retries off they reach the store's re-check.
    const client = s3TestClient(s3!, { maxAttempts: 1 })
    const store = createS3Store({ bucket: h.bucket, client })
    try {
      for (let round = 0; round < 5; round++) {
        const key = `race500/${round}`
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => store.put(key, bytes(`w${i}`), { ifNoneMatch: '*' })),
        )
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailedError)
      }
    } finally {
      client.destroy()
    }
  })

  it('keeps keys under its prefix and strips it from listings', async () => {
    const inner = createS3Store({ bucket: h.bucket, client: h.client, prefix: '/tenant/one/' })
    expect(inner.location).toBe(`s3://${h.bucket}/tenant/one`)
    await inner.put('ds/symbol=A/x', bytes('x'))
    expect(await h.store.head('tenant/one/ds/symbol=A/x')).not.toBeNull()
    const listed = await inner.list('ds/', { delimiter: '/' })
    expect(listed.prefixes).toEqual(['ds/symbol=A/'])
    expect((await inner.list('')).objects.map((o) => o.key)).toEqual(['ds/symbol=A/x'])
    await inner.delete(['ds/symbol=A/x'])
    expect(await h.store.head('tenant/one/ds/symbol=A/x')).toBeNull()
  })

  it('ensureContainer fails on a missing bucket unless createBucket is set', async () => {
    const missing = `friday-missing-${Date.now().toString(36)}`
    const store = createS3Store({ bucket: missing, client: h.client })
    const err = await store.ensureContainer().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StorageError)
    expect((err as StorageError).status).toBe(503)
    expect((err as Error).message).toContain(missing)
  })

  it('builds its own client lazily from endpoint and credentials', async () => {
    const store = createS3Store({
      bucket: h.bucket,
      endpoint: s3!.endpoint,
      region: s3!.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
    })
    await store.put('own-client/x', bytes('hello'))
    expect(text((await store.get('own-client/x'))!.body)).toBe('hello')
    await store.close()
    await expect(store.get('own-client/x')).rejects.toMatchObject({ code: 'closed' })
  })
})
