/**
 * One ObjectStore conformance suite, run against the local filesystem store and the S3 store
 * (against a real radosgw); backend-specific checks follow each.
 */

import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { PreconditionFailedError, StorageError, StoreCapabilityError } from '../src/core/errors.js'
import { createS3Store } from '../src/stores/s3-store.js'
import { assertConditionalWrites, probeConditionalWrites } from '../src/stores/self-test.js'
import type { ObjectStore } from '../src/stores/types.js'
import { createTestBucketStore, requireS3OrSkip, s3TestClient } from './helpers/s3.js'

interface Harness {
  store: ObjectStore
  cleanup: () => Promise<void>
}

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (s: string) => enc.encode(s)
const text = (b: Uint8Array) => dec.decode(b)

let seq = 0
const uniq = (label: string) => `${label}-${Date.now().toString(36)}-${seq++}`

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries.map(String)
}

function storeSuite(name: string, create: () => Promise<Harness>, skip = false) {
  describe.skipIf(skip)(`ObjectStore conformance: ${name}`, () => {
    let h: Harness
    let store: ObjectStore
    beforeAll(async () => {
      h = await create()
      store = h.store
      await store.ensureContainer()
      await store.ensureContainer() // idempotent
    })
    afterAll(async () => {
      await h?.cleanup()
    })

    it('round-trips put/get/head and overwrites', async () => {
      const key = `${uniq('rt')}/a/b/obj.bin`
      const body = new Uint8Array(300).map((_, i) => (i * 7) % 256)
      const { etag } = await store.put(key, body, { contentType: 'application/octet-stream' })
      expect(etag).toBeTruthy()
      expect(etag).not.toMatch(/^"|"$/)
      const got = await store.get(key)
      expect(got).not.toBeNull()
      expect(got!.body).toEqual(body)
      expect(got!.size).toBe(300)
      expect(got!.etag).toBe(etag)
      expect(got!.key).toBe(key)
      expect(got!.lastModified).toBeInstanceOf(Date)
      const info = await store.head(key)
      expect(info).toMatchObject({ key, size: 300, etag })
      expect((await store.head(key))!.etag).toBe(etag) // stable while unchanged

      const { etag: etag2 } = await store.put(key, bytes('replaced'))
      expect(etag2).not.toBe(etag)
      expect(text((await store.get(key))!.body)).toBe('replaced')
    })

    it('reads byte ranges and suffix ranges', async () => {
      const key = `${uniq('range')}/obj.txt`
      await store.put(key, bytes('0123456789abcdef'))
      const mid = await store.get(key, { offset: 3, length: 4 })
      expect(text(mid!.body)).toBe('3456')
      expect(mid!.size).toBe(16) // size of the whole object
      expect(text((await store.get(key, { suffix: 5 }))!.body)).toBe('bcdef')
      expect(text((await store.get(key, { offset: 10, length: 100 }))!.body)).toBe('abcdef') // clipped at the end
      expect(text((await store.get(key, { suffix: 100 }))!.body)).toBe('0123456789abcdef')
      expect((await store.get(key, { offset: 2, length: 0 }))!.body.length).toBe(0)
      await expect(store.get(key, { offset: 16, length: 4 })).rejects.toMatchObject({ status: 416 })
    })

    it('returns null for missing keys', async () => {
      const key = `${uniq('missing')}/nope.bin`
      expect(await store.get(key)).toBeNull()
      expect(await store.get(key, { suffix: 8 })).toBeNull()
      expect(await store.head(key)).toBeNull()
    })

    it("ifNoneMatch '*' creates exclusively", async () => {
      const key = `${uniq('excl')}/manifest.json`
      await store.put(key, bytes('v1'), { ifNoneMatch: '*' })
      await expect(store.put(key, bytes('v2'), { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailedError)
      expect(text((await store.get(key))!.body)).toBe('v1')
    })

    it("exactly one of 20 concurrent ifNoneMatch '*' creators wins", async () => {
      const key = `${uniq('race')}/manifest.json`
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => store.put(key, bytes(`writer-${i}`), { ifNoneMatch: '*' })),
      )
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
      const lost = results.filter((r) => r.status === 'rejected')
      expect(won).toHaveLength(1)
      for (const r of lost) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PreconditionFailedError)
      expect(text((await store.get(key))!.body)).toBe(`writer-${won[0]}`)
    })

    it('lists with prefix, delimiter and startAfter', async () => {
      const root = uniq('list')
      const keys = [
        'ds/_meta.json',
        'ds/symbol=A/date=2024-01-01/part.parquet',
        'ds/symbol=A/date=2024-01-02/part.parquet',
        'ds/symbol=A/date=2024-01-03/part.parquet',
        'ds/symbol=AB/date=2024-01-01/part.parquet',
        'ds/symbol=B/date=2024-01-01/part.parquet',
        'ds/symbol=B/date=2024-01-01/part2.parquet',
      ].map((k) => `${root}/${k}`)
      await Promise.all(keys.map((k, i) => store.put(k, bytes(`x${i}`))))

      const all = await store.list(`${root}/`)
      expect(all.objects.map((o) => o.key)).toEqual([...keys].sort())
      expect(all.prefixes).toEqual([])
      expect(all.objects[0]).toMatchObject({ size: 2 })
      expect(all.objects[0].etag).toBe((await store.head(all.objects[0].key))!.etag)

      const top = await store.list(`${root}/ds/`, { delimiter: '/' })
      expect(top.objects.map((o) => o.key)).toEqual([`${root}/ds/_meta.json`])
      expect(top.prefixes).toEqual([`${root}/ds/symbol=A/`, `${root}/ds/symbol=AB/`, `${root}/ds/symbol=B/`])

      // A prefix may end mid-name.
      const midName = await store.list(`${root}/ds/symbol=A`, { delimiter: '/' })
      expect(midName.prefixes).toEqual([`${root}/ds/symbol=A/`, `${root}/ds/symbol=AB/`])
      expect(midName.objects).toEqual([])
      const midNameDeep = await store.list(`${root}/ds/symbol=A`)
      expect(midNameDeep.objects).toHaveLength(4)

      const dates = await store.list(`${root}/ds/symbol=A/`, { delimiter: '/' })
      expect(dates.prefixes).toEqual(['01', '02', '03'].map((d) => `${root}/ds/symbol=A/date=2024-01-${d}/`))

      const after = await store.list(`${root}/ds/symbol=A/`, { startAfter: `${root}/ds/symbol=A/date=2024-01-01/part.parquet` })
      expect(after.objects.map((o) => o.key)).toEqual(keys.slice(2, 4))

      const afterDelim = await store.list(`${root}/ds/symbol=A/`, {
        delimiter: '/',
        startAfter: `${root}/ds/symbol=A/date=2024-01-01/part.parquet`,
      })
      expect(afterDelim.prefixes).toEqual(['02', '03'].map((d) => `${root}/ds/symbol=A/date=2024-01-${d}/`))

      const files = await store.list(`${root}/ds/symbol=B/date=2024-01-01/`, { delimiter: '/' })
      expect(files.objects.map((o) => o.key)).toEqual(keys.slice(5))

      expect(await store.list(`${root}/nothing/`)).toEqual({ objects: [], prefixes: [] })
      expect(await store.list(`${uniq('nothing')}/`, { delimiter: '/' })).toEqual({ objects: [], prefixes: [] })
    })

    it('deletes several keys, ignoring missing ones', async () => {
      const root = uniq('del')
      const keys = ['a/1', 'a/2', 'b/3'].map((k) => `${root}/${k}`)
      await Promise.all(keys.map((k) => store.put(k, bytes(k))))
      await store.put(`${root}/keep`, bytes('keep'))
      await store.delete([...keys, `${root}/never-existed`, `${root}/a/nope`])
      for (const k of keys) expect(await store.head(k)).toBeNull()
      expect((await store.list(`${root}/`)).objects.map((o) => o.key)).toEqual([`${root}/keep`])
      await store.delete([])
      await store.delete(keys) // again: all missing
    })

    it('counts requests', async () => {
      const before = store.stats()
      const key = `${uniq('stats')}/obj`
      await store.put(key, bytes('12345'))
      await store.get(key)
      await store.head(key)
      await store.list(`${key}/`)
      await store.delete([key])
      const after = store.stats()
      expect(after.put - before.put).toBe(1)
      expect(after.get - before.get).toBe(1)
      expect(after.head - before.head).toBe(1)
      expect(after.list - before.list).toBe(1)
      expect(after.delete - before.delete).toBe(1)
      expect(after.bytesWritten - before.bytesWritten).toBe(5)
      expect(after.bytesRead - before.bytesRead).toBe(5)
    })

    it('self-test reports enforced conditional writes', async () => {
      const probe = await probeConditionalWrites(store, `${uniq('selftest')}/probe`)
      expect(probe.ifNoneMatch).toBe(true)
      expect(probe.ifMatch).toBe(store.capabilities.ifMatch)
      expect(probe.details).toMatch(/rejected: enforced/)
      await expect(assertConditionalWrites(store)).resolves.toMatchObject({ ifNoneMatch: true })
      // Probe keys are cleaned up.
      expect((await store.list('_friday/')).objects).toEqual([])
    })

    it('self-test rejects a store that ignores ifNoneMatch', async () => {
      // No real server here ignores conditional writes, so this wraps the real store in one that drops them.
      const careless: ObjectStore = {
        ...store,
        put: (key, body, opts) => store.put(key, body, { ...opts, ifNoneMatch: undefined }),
      }
      const probe = await probeConditionalWrites(careless)
      expect(probe.ifNoneMatch).toBe(false)
      expect(probe.details).toMatch(/accepted: not enforced/)
      const err = await assertConditionalWrites(careless).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreCapabilityError)
      expect((err as Error).message).toContain(`store ${store.location} ignores conditional writes (If-None-Match: *)`)
      expect((err as Error).message).toContain('require_conditional_writes=false')
    })

    it('ifMatch compare-and-swap (where supported)', async () => {
      const key = `${uniq('cas')}/counter`
      const { etag } = await store.put(key, bytes('0'))
      if (!store.capabilities.ifMatch) {
        await expect(store.put(key, bytes('1'), { ifMatch: etag })).rejects.toBeInstanceOf(StoreCapabilityError)
        expect(text((await store.get(key))!.body)).toBe('0')
        return
      }
      await expect(store.put(key, bytes('1'), { ifMatch: 'not-the-etag' })).rejects.toBeInstanceOf(PreconditionFailedError)
      expect(text((await store.get(key))!.body)).toBe('0')
      const { etag: etag1 } = await store.put(key, bytes('1'), { ifMatch: etag })
      expect(text((await store.get(key))!.body)).toBe('1')
      await expect(store.put(key, bytes('2'), { ifMatch: etag })).rejects.toBeInstanceOf(PreconditionFailedError)
      // A quoted etag (as HTTP/the SDK spell it) works too.
      await store.put(key, bytes('2'), { ifMatch: `"${etag1}"` })
      // ifMatch on a missing key is a lost race.
      await expect(store.put(`${key}-missing`, bytes('x'), { ifMatch: etag1 })).rejects.toBeInstanceOf(PreconditionFailedError)
    })

    it('20 concurrent read-modify-write increments lose no update (where ifMatch is supported)', async () => {
      const key = `${uniq('counter')}/value`
      await store.put(key, bytes('0'))
      if (!store.capabilities.ifMatch) {
        await expect(store.put(key, bytes('1'), { ifMatch: 'x' })).rejects.toBeInstanceOf(StoreCapabilityError)
        return
      }
      let conflicts = 0
      const increment = async () => {
        for (let attempt = 0; attempt < 500; attempt++) {
          const cur = (await store.get(key))!
          try {
            await store.put(key, bytes(String(Number(text(cur.body)) + 1)), { ifMatch: cur.etag })
            return
          } catch (err) {
            if (!(err instanceof PreconditionFailedError)) throw err
            conflicts++
            await new Promise((r) => setTimeout(r, Math.random() * 20))
          }
        }
        throw new Error('increment gave up')
      }
      await Promise.all(Array.from({ length: 20 }, increment))
      expect(text((await store.get(key))!.body)).toBe('20')
      expect(conflicts).toBeGreaterThan(0) // the race really happened
    })
  })
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
