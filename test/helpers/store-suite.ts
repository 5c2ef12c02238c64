/**
 * The ObjectStore conformance suite: the same behavioural tests against every store (local
 * filesystem and S3 in test/stores.test.ts, the R2 binding in test/r2-binding-store.test.ts).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PreconditionFailedError, StoreCapabilityError } from '../../src/core/errors.js'
import { assertConditionalWrites, probeConditionalWrites } from '../../src/stores/self-test.js'
import type { ObjectStore } from '../../src/stores/types.js'

export interface Harness {
  store: ObjectStore
  cleanup: () => Promise<void>
}

const enc = new TextEncoder()
const dec = new TextDecoder()
const bytes = (s: string) => enc.encode(s)
const text = (b: Uint8Array) => dec.decode(b)

let seq = 0
const uniq = (label: string) => `${label}-${Date.now().toString(36)}-${seq++}`

export function storeSuite(name: string, create: () => Promise<Harness>, skip = false) {
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
