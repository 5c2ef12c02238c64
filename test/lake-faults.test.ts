/**
 * Regression tests of issue 11 (no acknowledged write lost, overwritten or half-visible) on the
 * lake: each injects one fault at the exact point where the store broke its promise, through a
 * fault-injecting wrapper around a REAL store (local disk: chain manifests; radosgw: CAS
 * manifests), and checks the rows, `verify()` and the error the caller got.
 */

import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { CommitInDoubtError, DuplicateKeyError, StoreError } from '../src/core/errors.js'
import { DEFAULT_ROTATION } from '../src/core/rotation-policy.js'
import { createApp } from '../src/http/app.js'
import { createLakeStorage } from '../src/lake/lake-storage.js'
import type { LakeOptions } from '../src/lake/options.js'
import { createS3Store } from '../src/stores/s3-store.js'
import type { ObjectStore } from '../src/stores/types.js'
import { rejection, rowsOf, uniqueDataset } from './conformance/storage.case.js'
import { faultyStore, isDataKey, isManifestKey } from './helpers/faulty-store.js'
import { deleteTestBucket, requireS3OrSkip, s3TestClient } from './helpers/s3.js'

const s3 = await requireS3OrSkip()
const dirs: string[] = []
const buckets: string[] = []

afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  if (s3) for (const b of buckets) await deleteTestBucket(s3, b)
})

interface Kind {
  name: string
  make(): ObjectStore
  skip: boolean
}

const KINDS: Kind[] = [
  {
    name: 'local disk (chain manifests)',
    skip: false,
    make() {
      const dir = mkdtempSync(join(tmpdir(), 'friday-faults-'))
      dirs.push(dir)
      return createLocalFsStore({ baseDir: dir })
    },
  },
  {
    name: 'S3 on radosgw (CAS manifests)',
    skip: !s3,
    make() {
      const bucket = `faults-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
      buckets.push(bucket)
      return createS3Store({ bucket, client: s3TestClient(s3!), createBucket: true })
    },
  },
]

const lake = (store: ObjectStore, extra: Partial<LakeOptions> = {}) => createLakeStorage({ backend: 'test', store, ...extra })
const at = (minute: number, day = 2) => Date.UTC(2024, 0, day, 0, minute)
const bar = (symbol: string, minute: number, close: number, extra: Record<string, unknown> = {}) => ({
  symbol,
  timestamp: at(minute),
  close,
  ...extra,
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** Every manifest names only files that exist, with their checksums. */
async function expectHealthy(store: ObjectStore, ds: string): Promise<void> {
  const report = await lake(store).verify(ds)
  expect(report.problems).toEqual([])
  expect(report.ok).toBe(true)
}

const manifestOf = (symbol: string) => (k: string) => isManifestKey(k) && k.includes(`/symbol=${symbol}/`)
const dataOf = (symbol: string) => (k: string) => isDataKey(k) && k.includes(`/symbol=${symbol}/`)

for (const kind of KINDS) {
  describe.skipIf(kind.skip)(`lake under injected faults: ${kind.name}`, () => {
    it('1. a commit whose answer is lost and whose re-read fails is in doubt: nothing is deleted, the landed rows read back', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('lost')
      const w = lake(fs)
      await w.write(ds, [bar('AAPL', 0, 1)])
      fs.inject({
        op: 'put',
        match: isManifestKey,
        action: 'fail-after',
        // from now on every read of the manifest fails too
        fn: () => void fs.inject({ op: 'get', match: isManifestKey, action: 'fail-before', times: 10_000 }),
      })
      const err = await rejection(w.write(ds, [bar('AAPL', 1, 2)]))
      expect(err).toBeInstanceOf(CommitInDoubtError)
      expect(err.status).toBe(503)
      expect(err.details.written).toMatchObject({ committed: [], inDoubt: ['symbol=AAPL/date=2024-01-02'] })
      expect(err.message).toMatch(/may or may not have been/)
      fs.clear()
      expect(rowsOf(await lake(inner).read(ds)).map((r) => r.close)).toEqual([1, 2]) // the put landed
      await expectHealthy(inner, ds)
    })

    it('1. a lost answer after which other writers committed on top is recognized as committed (prior commit ids)', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('ontop')
      const w = lake(fs)
      const other = lake(inner)
      await w.write(ds, [bar('AAPL', 0, 1)])
      fs.inject({
        op: 'put',
        match: isManifestKey,
        action: 'fail-after',
        fn: async () => {
          for (let i = 10; i < 13; i++) await other.write(ds, [bar('AAPL', i, i)])
        },
      })
      const res = await w.write(ds, [bar('AAPL', 1, 2)])
      expect(res.rowsWritten).toBe(1)
      const rows = rowsOf(await lake(inner).read(ds))
      expect(rows.map((r) => r.close)).toEqual([1, 2, 10, 11, 12])
      await expectHealthy(inner, ds)
    })

    it('1. compaction: a lost answer with a writer on top keeps the compacted file', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('compactlost')
      const policy = { ...DEFAULT_ROTATION, enabled: true, strategy: 'count_based' as const, maxFiles: 2 }
      const m = lake(fs, { rotation: policy })
      const other = lake(inner)
      for (let i = 0; i < 3; i++) await other.write(ds, [bar('AAPL', i, i)])
      fs.inject({
        op: 'put',
        match: isManifestKey,
        action: 'fail-after',
        fn: () => other.write(ds, [bar('AAPL', 20, 20)]).then(() => undefined),
      })
      const report = await m.maintain({ dataset: ds })
      expect(report.datasets[0].errors).toEqual([])
      expect(report.datasets[0].compacted).toHaveLength(1)
      expect(rowsOf(await lake(inner).read(ds)).map((r) => r.close)).toEqual([0, 1, 2, 20])
      await expectHealthy(inner, ds)
    })

    it('2. a write that fails in one partition returns only after the others settled, and says what they committed', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('owned')
      const w = lake(fs, { concurrency: 4 })
      await w.write(ds, [bar('AAPL', 0, 1), bar('MSFT', 0, 1)])
      const gate = fs.inject({ op: 'put', match: manifestOf('MSFT'), action: 'gate' })
      // AAPL's data file fails once MSFT's commit is in flight
      const failing = {
        op: 'put' as const,
        match: dataOf('AAPL'),
        action: 'hook' as const,
        fn: async () => {
          await gate.reached
          throw new StoreError('injected fault: put of the AAPL file')
        },
      }
      fs.inject(failing)
      let settled = false
      const p = w.write(ds, [bar('AAPL', 1, 2), bar('MSFT', 1, 2)]).finally(() => {
        settled = true
      })
      p.catch(() => undefined)
      await gate.reached
      await until(() => fs.fired(failing) > 0, 'the AAPL failure')
      await sleep(100)
      expect(settled).toBe(false) // MSFT's commit is still in flight
      gate.release()
      const err = await rejection(p)
      expect(err).toBeInstanceOf(StoreError)
      expect(err.details.written).toEqual({
        committed: ['symbol=MSFT/date=2024-01-02'],
        rowsCommitted: 1,
        inDoubt: [],
        notWritten: ['symbol=AAPL/date=2024-01-02'],
      })
      expect(err.message).toMatch(/1 row\(s\) in 1 partition\(s\) were committed \(symbol=MSFT\/date=2024-01-02\)/)
      const calls = fs.calls.length
      await sleep(200)
      expect(fs.calls.length).toBe(calls) // nothing of the call still runs
      fs.clear()
      expect(rowsOf(await lake(inner).read(ds)).map((r) => `${r.symbol}=${r.close}`)).toEqual(['AAPL=1', 'MSFT=1', 'MSFT=2'])
      await expectHealthy(inner, ds)
    })

    it('2. over HTTP the failed write answers what was committed, with no store text', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('httpwritten')
      const w = lake(fs, { concurrency: 1 })
      await w.write(ds, [bar('AAPL', 0, 0), bar('MSFT', 0, 0)])
      fs.inject({ op: 'put', match: dataOf('MSFT'), action: 'fail-before', times: 10_000 })
      const app = createApp({ storage: w, openWrites: true })
      const res = await app.request(`http://localhost/v1/datasets/${ds}/rows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([
          { symbol: 'AAPL', timestamp: new Date(at(1)).toISOString(), close: 1 },
          { symbol: 'MSFT', timestamp: new Date(at(1)).toISOString(), close: 1 },
        ]),
      })
      expect(res.status).toBe(502)
      const body = (await res.json()) as { error: { code: string; message: string; details: Record<string, unknown> } }
      expect(body.error.code).toBe('store_error')
      expect(body.error.details.written).toEqual({
        committed: ['symbol=AAPL/date=2024-01-02'],
        rowsCommitted: 1,
        inDoubt: [],
        notWritten: ['symbol=MSFT/date=2024-01-02'],
      })
      expect(body.error.message).toMatch(/1 row\(s\) in 1 partition\(s\) were committed/)
      expect(body.error.message).not.toMatch(/injected/)
    })

    it('2. after a partition fails no other partition of the call starts', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('nostart')
      const w = lake(fs, { concurrency: 1 })
      await w.write(ds, [bar('AAPL', 0, 0)])
      fs.inject({ op: 'put', match: dataOf('AAPL'), action: 'fail-before', times: 10_000 })
      const err = await rejection(w.write(ds, [bar('AAPL', 1, 1), bar('GOOG', 1, 1), bar('MSFT', 1, 1)]))
      expect(err.details.written.committed).toEqual([])
      expect(err.details.written.notWritten).toHaveLength(3)
      expect(err.message).toMatch(/nothing was written/)
      await sleep(100)
      expect(fs.calls.filter((c) => c.key.includes('symbol=GOOG') || c.key.includes('symbol=MSFT'))).toEqual([])
      expect(rowsOf(await lake(inner).read(ds)).map((r) => r.symbol)).toEqual(['AAPL'])
    })

    it('3. a writer with a stale dataset schema keeps the columns another writer added', async () => {
      const inner = kind.make()
      const ds = uniqueDataset('stale')
      const x = lake(inner)
      const y = lake(inner)
      await x.write(ds, [bar('AAPL', 0, 0)]) // x caches the schema without `extra`
      await y.write(ds, [bar('AAPL', 1, 1, { extra: 7 }), bar('AAPL', 3, 3, { extra: 9 })])
      await x.write(ds, [bar('AAPL', 2, 2)]) // rewrites y's file [1, 3] with x's old schema
      const rows = rowsOf(await lake(inner).read(ds))
      expect(rows.map((r) => [r.close, r.extra])).toEqual([
        [0, null],
        [1, 7],
        [2, null],
        [3, 9],
      ])
      await expectHealthy(inner, ds)
    })

    it('4. a prefetched partition that fails while an earlier one loads is no unhandled rejection', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('prefetch')
      const w = lake(fs)
      await w.write(ds, [bar('AAPL', 0, 0), bar('GOOG', 0, 0), bar('MSFT', 0, 0)])
      const unhandled: unknown[] = []
      const onUnhandled = (reason: unknown) => unhandled.push(reason)
      process.on('unhandledRejection', onUnhandled)
      try {
        for (const run of [
          async () => {
            for await (const _ of w.scan(ds, { batchSize: 1 })) {
              // drain
            }
          },
          () => w.read(ds, { limit: 10 }),
        ]) {
          const gate = fs.inject({ op: 'get', match: dataOf('AAPL'), action: 'gate' })
          const failing = { op: 'get' as const, match: manifestOf('GOOG'), action: 'fail-before' as const, times: 10_000 }
          fs.inject(failing)
          const p = run()
          p.catch(() => undefined)
          await gate.reached
          await until(() => fs.fired(failing) > 0, 'the GOOG failure')
          await sleep(50) // an unhandled rejection would be reported by now
          gate.release()
          const err = await rejection(p)
          expect(err.message).toMatch(/injected fault: get/)
          fs.clear()
        }
        await sleep(20)
        expect(unhandled).toEqual([])
      } finally {
        process.off('unhandledRejection', onUnhandled)
      }
    })

    it('5. two maintain() runs of one owner: the run taken over cannot commit over the files the other deleted', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('twoowners')
      const policy = { ...DEFAULT_ROTATION, enabled: true, strategy: 'count_based' as const, maxFiles: 2 }
      for (let i = 0; i < 3; i++) await lake(inner).write(ds, [bar('AAPL', i, i)])
      const a = lake(fs, { rotation: policy })
      const b = lake(inner, { rotation: { ...policy, enabled: false } }) // resumes journals only
      const gate = fs.inject({ op: 'put', match: isManifestKey, action: 'gate' })
      const runA = a.maintain({ dataset: ds, owner: 'job' })
      await gate.reached // A wrote its compacted file and journal; its commit is in flight
      const rb = await b.maintain({ dataset: ds, owner: 'job' })
      expect(rb.datasets[0].skipped).toBeNull()
      gate.release()
      const ra = await runA
      expect(ra.datasets[0].compacted).toEqual([])
      expect(ra.datasets[0].errors.map((e) => e.message).join()).toMatch(/lost its lease/)
      expect(rowsOf(await lake(inner).read(ds)).map((r) => r.close)).toEqual([0, 1, 2])
      await expectHealthy(inner, ds)
      const gc = await lake(inner).gc({ dataset: ds, graceMs: 0 })
      expect(gc.keys.filter(isDataKey)).toEqual([]) // B already removed A's files
      await expectHealthy(inner, ds)
    })

    it('5. a run that stalled past its lease does not commit once another run holds it', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('stalled')
      const policy = { ...DEFAULT_ROTATION, enabled: true, strategy: 'count_based' as const, maxFiles: 2 }
      for (let i = 0; i < 3; i++) await lake(inner).write(ds, [bar('AAPL', i, i)])
      const before = (await lake(inner).getManifest(ds, 'symbol=AAPL/date=2024-01-02'))!.version
      const a = lake(fs, { rotation: policy })
      const gate = fs.inject({ op: 'put', match: isDataKey, action: 'gate' })
      const runA = a.maintain({ dataset: ds, owner: 'a', leaseTtlMs: 300 })
      await gate.reached
      await sleep(400) // A's lease expires while it stalls
      const rb = await lake(inner, { rotation: { ...policy, enabled: false } }).maintain({ dataset: ds, owner: 'b' })
      expect(rb.datasets[0].skipped).toBeNull()
      gate.release()
      const ra = await runA
      expect(ra.datasets[0].compacted).toEqual([])
      expect(ra.datasets[0].errors.map((e) => e.message).join()).toMatch(/lost its lease/)
      expect((await lake(inner).getManifest(ds, 'symbol=AAPL/date=2024-01-02'))!.version).toBe(before)
      await expectHealthy(inner, ds)
    })

    it('6. a commit delayed past its deadline does not land; gc may collect its file meanwhile', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('deadline')
      const grace = 1000
      const w = lake(fs, { gcGraceMs: grace })
      await w.write(ds, [bar('AAPL', 0, 0)])
      const gate = fs.inject({ op: 'put', match: isManifestKey, action: 'gate' })
      const p = w.write(ds, [bar('AAPL', 1, 1)])
      await gate.reached
      await sleep(grace + 300)
      const gc = await lake(inner).gc({ dataset: ds, graceMs: grace })
      expect(gc.filesDeleted).toBe(1) // the stalled writer's first file
      gate.release()
      await p
      expect(rowsOf(await lake(inner).read(ds)).map((r) => r.close)).toEqual([0, 1])
      await expectHealthy(inner, ds)
    })

    it('7. an append refused after another partition committed says exactly what was committed', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('append409')
      const w = lake(fs, { concurrency: 1 })
      const other = lake(inner)
      await w.write(ds, [bar('AAPL', 0, 0), bar('MSFT', 0, 0)])
      fs.inject({
        op: 'put',
        match: manifestOf('AAPL'),
        action: 'hook',
        when: 'after',
        fn: () => other.write(ds, [bar('MSFT', 5, 99)]).then(() => undefined),
      })
      const err = await rejection(w.write(ds, [bar('AAPL', 5, 1), bar('MSFT', 5, 2)], { mode: 'append' }))
      expect(err).toBeInstanceOf(DuplicateKeyError)
      expect(err.status).toBe(409)
      expect(err.details.written).toEqual({
        committed: ['symbol=AAPL/date=2024-01-02'],
        rowsCommitted: 1,
        inDoubt: [],
        notWritten: ['symbol=MSFT/date=2024-01-02'],
      })
      expect(err.message).toMatch(/1 row\(s\) in 1 partition\(s\) were committed/)
      expect(rowsOf(await lake(inner).read(ds)).map((r) => `${r.symbol}=${r.close}`)).toEqual([
        'AAPL=0',
        'AAPL=1',
        'MSFT=0',
        'MSFT=99',
      ])
    })

    it('9. a refused append stores nothing, not even its new column', async () => {
      const inner = kind.make()
      const ds = uniqueDataset('appschema')
      const w = lake(inner)
      await w.write(ds, [bar('AAPL', 0, 0)])
      const err = await rejection(w.write(ds, [bar('AAPL', 0, 5, { extra: 1 })], { mode: 'append' }))
      expect(err).toBeInstanceOf(DuplicateKeyError)
      expect(err.message).toMatch(/nothing was written/)
      expect((await lake(inner).describe(ds))!.schema.map((c) => c.name)).toEqual(['symbol', 'timestamp', 'close'])
    })

    it('9. an append whose pre-check meets a file replaced meanwhile checks again instead of failing', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('appvanish')
      const w = lake(fs)
      await w.write(ds, [bar('AAPL', 0, 0), bar('AAPL', 10, 10)])
      fs.inject({ op: 'get', match: isDataKey, action: 'missing' })
      await w.write(ds, [bar('AAPL', 5, 5)], { mode: 'append' })
      expect(rowsOf(await lake(inner).read(ds)).map((r) => r.close)).toEqual([0, 5, 10])
    })

    it('9. an append that repeats stored rows exactly is no conflict (a retried append)', async () => {
      const inner = kind.make()
      const ds = uniqueDataset('appretry')
      const w = lake(inner)
      const batch = [bar('AAPL', 0, 0), bar('AAPL', 1, 1), bar('MSFT', 0, 0)]
      await w.write(ds, batch, { mode: 'append' })
      await w.write(ds, [...batch, bar('MSFT', 1, 1)], { mode: 'append' })
      expect(rowsOf(await lake(inner).read(ds))).toHaveLength(4)
      const err = await rejection(w.write(ds, [bar('AAPL', 1, 2)], { mode: 'append' }))
      expect(err).toBeInstanceOf(DuplicateKeyError)
    })

    it('9. a read retries while the partition keeps being rewritten under it', async () => {
      const inner = kind.make()
      const fs = faultyStore(inner)
      const ds = uniqueDataset('collide')
      const w = lake(fs)
      const other = lake(inner)
      await other.write(ds, [bar('AAPL', 0, -1), bar('AAPL', 5, 5)])
      let n = 0
      fs.inject({
        op: 'get',
        match: isDataKey,
        action: 'hook',
        times: 8,
        fn: async () => {
          await other.write(ds, [bar('AAPL', 0, n++)]) // replaces the file the reader is about to get
        },
      })
      expect(rowsOf(await w.read(ds)).map((r) => r.close)).toEqual([7, 5])
      expect(n).toBe(8)
    })

    if (kind.name.startsWith('local')) {
      it('8. a stale _manifest.json hint plus gc: readers still find the newest version', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'friday-hint-'))
        dirs.push(dir)
        const store = createLocalFsStore({ baseDir: dir })
        const ds = uniqueDataset('hint')
        const w = lake(store)
        for (let i = 0; i < 30; i++) await w.write(ds, [bar('AAPL', i, i)])
        const pdir = join(dir, '_friday', ds, 'symbol=AAPL', 'date=2024-01-02')
        const v = (n: number) => join(pdir, `_manifest.v${String(n).padStart(20, '0')}.json`)
        // a writer paused between committing version 1 and publishing its hint publishes it now
        copyFileSync(v(1), join(pdir, '_manifest.json'))
        const gc = await lake(store).gc({ dataset: ds, graceMs: 0 })
        expect(gc.keys.filter((k) => k.includes('_manifest.v'))).toHaveLength(13)
        expect(readdirSync(pdir).filter((f) => f.startsWith('_manifest.v'))).toHaveLength(17)
        const rows = rowsOf(await lake(store).read(ds))
        expect(rows.map((r) => r.close)).toEqual(Array.from({ length: 30 }, (_, i) => i))
        await expectHealthy(store, ds)
      })

      it('8. the hint is a copy, and a version that contradicts its number is an error, not a spin', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'friday-hint-'))
        dirs.push(dir)
        const store = createLocalFsStore({ baseDir: dir })
        const ds = uniqueDataset('hint2')
        const w = lake(store)
        await w.write(ds, [bar('AAPL', 0, 0)])
        await w.write(ds, [bar('AAPL', 1, 1)])
        const pdir = join(dir, '_friday', ds, 'symbol=AAPL', 'date=2024-01-02')
        const v = (n: number) => join(pdir, `_manifest.v${String(n).padStart(20, '0')}.json`)
        expect(statSync(join(pdir, '_manifest.json')).ino).not.toBe(statSync(v(2)).ino)
        const original = readFileSync(v(2), 'utf8')
        writeFileSync(join(pdir, '_manifest.json'), readFileSync(v(1))) // edited in place
        expect(readFileSync(v(2), 'utf8')).toBe(original)
        // version 3 claiming to be version 2: the old probe looped forever on it
        writeFileSync(v(3), original)
        // in a child process: the old probe spun in microtasks, starving every timer of this one
        const out = execFileSync(
          process.execPath,
          ['--import', 'tsx', 'test/fixtures/read-local-lake.ts', JSON.stringify({ baseDir: dir, dataset: ds })],
          { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' },
        )
        expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
          error: expect.stringMatching(/^StoreError: .*holds version 2/),
        })
      })
    }
  })
}
