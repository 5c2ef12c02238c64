/**
 * Fault injection on the MongoDB backend (issue 11, findings 15-17), against the same server as
 * test/mongodb.test.ts. Faults are injected deterministically, never by timing:
 * - a failing command: the client handed to the storage is wrapped so that the k-th mutating
 *   command throws before it reaches the server. Nothing of the storage runs after that throw
 *   (no clean-up), so the database is left as a process killed at that point leaves it; every
 *   k is tried in turn;
 * - a dropped reply: a TCP relay in front of the server forwards a write command, lets the
 *   server execute it and closes the connection instead of returning the reply (the write landed,
 *   the client cannot know).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Collection, Db, MongoClient } from 'mongodb'
import { MongoClient as Client } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMongoStorage, mongodbFactory } from '../src/backends/mongodb/index.js'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { parseConfig } from '../src/config/load.js'
import { decompress } from '../src/core/archive-codec.js'
import { CommitInDoubtError, DuplicateKeyError, ValidationError } from '../src/core/errors.js'
import { createDataStorage } from '../src/core/front.js'
import { DEFAULT_ROTATION, type RotationPolicy } from '../src/core/rotation-policy.js'
import type { DataStorage, InputRow, MaintenanceOptions, MaintenanceReport } from '../src/core/types.js'
import { maintainRows } from '../src/maintenance/db-retention.js'
import { decodeParquet } from '../src/parquet/index.js'
import type { ObjectStore } from '../src/stores/types.js'
import { MS_PER_DAY, rejection, rowsOf, tms, uniqueDataset, us } from './conformance/storage.case.js'
import { requireMongoOrSkip } from './helpers/mongo.js'

const server = await requireMongoOrSkip()
const dbName = `friday_faults_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`
let client: MongoClient | undefined

beforeAll(async () => {
  if (server) client = server.client()
})
afterAll(async () => {
  if (client) {
    await client
      .db(dbName)
      .dropDatabase()
      .catch(() => undefined)
    await client.close()
  }
  await server?.stop()
})

const MUTATING = new Set([
  'bulkWrite',
  'insertOne',
  'insertMany',
  'updateOne',
  'updateMany',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'findOneAndUpdate',
  'findOneAndReplace',
  'findOneAndDelete',
])

/** Called before every mutating command the storage sends; throwing fails that command. */
type Hook = (collection: string, method: string) => void | Promise<void>

/** `real` with every collection's mutating methods passing through `hook` first (a test double: see the file doc). */
function hookedClient(real: MongoClient, hook: () => Hook | null): MongoClient {
  const wrapCollection = (col: Collection): Collection =>
    new Proxy(col, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target)
        if (typeof v !== 'function') return v
        if (typeof prop === 'string' && MUTATING.has(prop)) {
          return async (...args: unknown[]) => {
            await hook()?.(target.collectionName, prop)
            return (v as (...a: unknown[]) => unknown).apply(target, args)
          }
        }
        return v.bind(target)
      },
    })
  const wrapDb = (db: Db): Db =>
    new Proxy(db, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target)
        if (prop === 'collection') return (...args: Parameters<Db['collection']>) => wrapCollection(target.collection(...args))
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
  return new Proxy(real, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target)
      if (prop === 'db') return (...args: Parameters<MongoClient['db']>) => wrapDb(target.db(...args))
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
}

class InjectedCrash extends Error {}

function storageOn(c: MongoClient): DataStorage {
  return createMongoStorage({ client: () => c, db: dbName, closeClient: false })
}

type Row = { symbol: string; timestamp: number; close: number }
const key = (symbol: string, tUs: number) => `${symbol}@${tUs}`

/** Every stored row of a dataset, straight from the collection: key -> close. */
async function stored(ds: string): Promise<Map<string, number>> {
  const docs = await client!.db(dbName).collection(`ds_${ds}`).find({}).toArray()
  return new Map(docs.map((d) => [key(d.symbol, d.t), d.v.close as number]))
}

describe.skipIf(!server)('mongodb faults: replace interrupted at every step (finding 15)', () => {
  // AAPL: 500 rows on day 0 and 500 on day 1; MSFT: 40 rows on day 0 (outside the replace)
  const old: Row[] = [
    ...[0, 1].flatMap((d) =>
      Array.from({ length: 500 }, (_, m) => ({ symbol: 'AAPL', timestamp: tms(d, m), close: d * 1000 + m })),
    ),
    ...Array.from({ length: 40 }, (_, m) => ({ symbol: 'MSFT', timestamp: tms(0, m), close: -m })),
  ]
  // the replace: AAPL minutes 100-469 of both days, every even minute with a new value and a new
  // key half a minute after every minute (1,110 keys: two row batches); the odd minutes in the
  // range, day 0's minutes 470-499 and day 1's minutes 0-99 are not in the batch and go
  const batch: Row[] = [0, 1].flatMap((d) =>
    Array.from({ length: 370 }, (_, i) => 100 + i).flatMap((m) => [
      ...(m % 2 === 0 ? [{ symbol: 'AAPL', timestamp: tms(d, m), close: 50_000 + d * 1000 + m }] : []),
      { symbol: 'AAPL', timestamp: tms(d, m) + 30_000, close: 70_000 + d * 1000 + m },
    ]),
  )
  const lo = us(batch.reduce((a, r) => Math.min(a, r.timestamp), Number.POSITIVE_INFINITY))
  const hi = us(batch.reduce((a, r) => Math.max(a, r.timestamp), Number.NEGATIVE_INFINITY))
  const oldByKey = new Map(old.map((r) => [key(r.symbol, us(r.timestamp)), r.close]))
  const newByKey = new Map(batch.map((r) => [key(r.symbol, us(r.timestamp)), r.close]))
  const inRange = (k: string) => k.startsWith('AAPL@') && Number(k.slice(5)) >= lo && Number(k.slice(5)) <= hi

  it('each key keeps its old or its new value, the range is never empty, describe counts what is stored', async () => {
    let crashPoints = 0
    for (let k = 1; ; k++) {
      const ds = uniqueDataset('replcrash')
      const plain = storageOn(client!)
      await plain.write(ds, old, { mode: 'append' })
      await plain.close()

      let commands = 0
      const emptyRangeSeen: string[] = []
      const raw = client!.db(dbName).collection(`ds_${ds}`)
      const hook: Hook = async (collection, method) => {
        // what a reader sees just before this command: the replaced range must never be empty
        const inRangeNow = await raw.countDocuments({ symbol: 'AAPL', t: { $gte: lo, $lte: hi } })
        if (inRangeNow === 0) emptyRangeSeen.push(`${method} on ${collection}`)
        commands++
        if (commands === k) throw new InjectedCrash(`injected crash before ${method} on ${collection}`)
      }
      let armed = true
      const faulty = storageOn(hookedClient(client!, () => (armed ? hook : null)))
      const outcome = await faulty.write(ds, batch, { mode: 'replace' }).then(
        () => 'completed' as const,
        (err: unknown) => err,
      )
      armed = false
      await faulty.close()
      expect(emptyRangeSeen, `crash point ${k}`).toEqual([])
      if (outcome === 'completed') {
        expect(commands).toBeLessThan(k)
        break
      }
      crashPoints++
      expect((outcome as Error).message).toMatch(/injected crash/)

      // every key: its old value, its new value, or (only if it had no old one / is not in the batch) absent
      const now = await stored(ds)
      for (const [kk, v] of oldByKey) {
        const got = now.get(kk)
        if (!inRange(kk)) expect(got, `${kk} outside the range, crash point ${k}`).toBe(v)
        else if (newByKey.has(kk)) expect([v, newByKey.get(kk)], `${kk} in the batch, crash point ${k}`).toContain(got)
        else if (got !== undefined) expect(got, `${kk} replaced away, crash point ${k}`).toBe(v)
      }
      for (const [kk, v] of newByKey) {
        const got = now.get(kk)
        if (!oldByKey.has(kk) && got !== undefined) expect(got, `${kk} new, crash point ${k}`).toBe(v)
      }
      for (const kk of now.keys()) expect(oldByKey.has(kk) || newByKey.has(kk), `${kk} unexpected`).toBe(true)

      // the caller is told the outcome is unknown
      expect(outcome).toBeInstanceOf(CommitInDoubtError)
      expect((outcome as Error).message).toMatch(/may or may not have been applied/)
      expect((outcome as CommitInDoubtError).details).toMatchObject({ outcome: 'unknown', mode: 'replace' })

      // the catalog counts what is stored, crash or not
      const check = storageOn(client!)
      try {
        expect((await check.describe(ds))?.rows, `describe after crash point ${k}`).toBe(now.size)
        const parts = await check.listPartitions(ds)
        expect(parts.reduce((s, p) => s + p.rows, 0)).toBe(now.size)
        for (const p of parts) expect((await check.getManifest(ds, p.path))?.rows).toBe(p.rows)

        // re-sending the replace finishes it
        await check.write(ds, batch, { mode: 'replace' })
        const after = await stored(ds)
        const expected = new Map([...[...oldByKey].filter(([kk]) => !inRange(kk)), ...newByKey])
        expect(after).toEqual(expected)
        expect((await check.describe(ds))?.rows).toBe(expected.size)
        expect((await check.verify(ds)).problems).toEqual([])
      } finally {
        await check.close()
      }
    }
    // intents, two row batches, the range scan's deletes, the commits: several points were hit
    expect(crashPoints).toBeGreaterThanOrEqual(5)
  }, 240_000)
})

/** The bytes a command document starts with: `{ <command>: "<collection>"`, as BSON. */
function commandMarker(command: string, collection: string): Buffer {
  const len = Buffer.alloc(4)
  len.writeInt32LE(Buffer.byteLength(collection) + 1)
  return Buffer.concat([Buffer.from([0x02]), Buffer.from(`${command}\0`), len, Buffer.from(`${collection}\0`)])
}

/**
 * A TCP relay to `target`. `dropReplies(n, marker)`: the next `n` client messages containing
 * `marker` reach the server, and the connection that sent each is closed before the server's
 * reply gets back.
 */
async function startRelay(
  target: URL,
): Promise<{ url: string; dropReplies(n: number, marker: Buffer): void; close(): Promise<void> }> {
  let drops = 0
  let marker: Buffer = Buffer.alloc(0)
  const sockets = new Set<Socket>()
  const srv: Server = createServer((down) => {
    const up = createConnection({ host: target.hostname, port: Number(target.port) })
    sockets.add(down).add(up)
    let dropReply = false
    const kill = () => {
      down.destroy()
      up.destroy()
    }
    down.on('data', (b: Buffer) => {
      if (drops > 0 && marker.length && b.includes(marker)) {
        drops--
        dropReply = true
      }
      up.write(b)
    })
    up.on('data', (b: Buffer) => {
      if (dropReply) return kill()
      down.write(b)
    })
    for (const s of [down, up]) {
      s.on('error', kill)
      s.on('close', () => {
        sockets.delete(s)
        kill()
      })
    }
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  return {
    url: `mongodb://127.0.0.1:${port}/`,
    dropReplies(n, m) {
      drops = n
      marker = m
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        srv.close(() => resolve())
      }),
  }
}

describe.skipIf(!server)('mongodb faults: in-doubt writes and append retries (finding 16)', () => {
  const rows = (n: number, close = (m: number) => m): InputRow[] =>
    Array.from({ length: n }, (_, m) => ({ symbol: 'AAPL', timestamp: tms(0, m), close: close(m) }))

  it('a reply lost after the append landed: the error says it may have been written; the retry succeeds', async () => {
    const relay = await startRelay(new URL(server!.url))
    const viaRelay = new Client(relay.url, {
      directConnection: true,
      serverMonitoringMode: 'poll',
      serverSelectionTimeoutMS: 5_000,
    })
    const storage = storageOn(viaRelay)
    const ds = uniqueDataset('indoubt')
    try {
      await storage.write(ds, rows(1)) // creates the dataset and the collection
      // the insert and the driver's own retry of it both lose their reply
      relay.dropReplies(2, commandMarker('insert', `ds_${ds}`))
      const batch = rows(50).slice(1)
      const err = await rejection(storage.write(ds, batch, { mode: 'append' }))
      expect(err).toBeInstanceOf(CommitInDoubtError)
      expect(err.status).toBe(503)
      expect(err.code).toBe('commit_in_doubt')
      expect(err.message).toMatch(
        new RegExp(`^the commit of 'append of 49 row\\(s\\) into dataset ${ds}' may or may not have been applied: `),
      )
      expect(err.details).toMatchObject({ dataset: ds, mode: 'append', rows: 49, outcome: 'unknown' })
      // it did land
      expect((await stored(ds)).size).toBe(50)

      // the retry of the same append is idempotent
      expect((await storage.write(ds, batch, { mode: 'append' })).rowsWritten).toBe(49)
      expect(rowsOf(await storage.read(ds)).map((r) => r.close)).toEqual(rows(50).map((r) => r.close))
      expect((await storage.describe(ds))?.rows).toBe(50)
    } finally {
      await storage.close()
      await viaRelay.close()
      await relay.close()
    }
  }, 60_000)

  it('append: keys holding the same values are idempotent, a key with other values is a 409 naming it', async () => {
    const storage = storageOn(client!)
    const ds = uniqueDataset('appidem')
    try {
      await storage.write(ds, rows(5), { mode: 'append' })
      // same rows again, plus two new keys: succeeds
      const more = [
        ...rows(5),
        { symbol: 'AAPL', timestamp: tms(0, 5), close: 5 },
        { symbol: 'AAPL', timestamp: tms(0, 6), close: 6 },
      ]
      expect((await storage.write(ds, more, { mode: 'append' })).rowsWritten).toBe(7)
      expect((await storage.read(ds)).length).toBe(7)
      // one key with another value: nothing of the batch is written
      const clash = [{ symbol: 'AAPL', timestamp: tms(0, 9), close: 9 }, ...rows(7, (m) => (m === 3 ? 333 : m))]
      const err = await rejection(storage.write(ds, clash, { mode: 'append' }))
      expect(err).toBeInstanceOf(DuplicateKeyError)
      expect(err.status).toBe(409)
      expect(err.details).toMatchObject({ total: 1, keys: [{ symbol: 'AAPL', timestamp: new Date(tms(0, 3)).toISOString() }] })
      expect(rowsOf(await storage.read(ds)).map((r) => r.close)).toEqual([0, 1, 2, 3, 4, 5, 6])
      expect((await storage.describe(ds))?.rows).toBe(7)
      // a value missing (null) where the stored row has one is a difference too
      const nulls = await rejection(
        storage.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, 0), close: null }], { mode: 'append' }),
      )
      expect(nulls).toBeInstanceOf(DuplicateKeyError)
    } finally {
      await storage.close()
    }
  })

  it('ill-formed strings (lone surrogates) are refused with a 400 naming row and field, nothing written', async () => {
    const storage = storageOn(client!)
    const ds = uniqueDataset('surrogates')
    try {
      const err = await rejection(
        storage.write(ds, [
          { symbol: 'X\uD800', timestamp: tms(0, 0), close: 1 },
          { symbol: 'X\uDFFF', timestamp: tms(0, 0), close: 2 },
        ]),
      )
      expect(err).toBeInstanceOf(ValidationError)
      expect(err.status).toBe(400)
      expect((err as ValidationError).issues.map((i) => [i.row, i.field])).toEqual([
        [0, 'symbol'],
        [1, 'symbol'],
      ])
      expect(err.message).toMatch(/row 0, field 'symbol'/)
      expect(await storage.describe(ds)).toBeNull()

      const inValue = await rejection(
        storage.write(ds, [
          { symbol: 'X', timestamp: tms(0, 0), note: 'ok' },
          { symbol: 'X', timestamp: tms(0, 1), note: 'bad\uDC00' },
        ]),
      )
      expect(inValue).toBeInstanceOf(ValidationError)
      expect((inValue as ValidationError).issues.map((i) => [i.row, i.field])).toEqual([[1, 'note']])
      expect(await storage.describe(ds)).toBeNull()

      // well-formed pairs are fine and stay distinct
      const ok = await storage.write(ds, [
        { symbol: 'X\uD83D\uDE00', timestamp: tms(0, 0), close: 1 },
        { symbol: 'X\uD83D\uDE01', timestamp: tms(0, 0), close: 2 },
      ])
      expect(ok.rowsWritten).toBe(2)
      expect((await stored(ds)).size).toBe(2)
      expect(rowsOf(await storage.read(ds)).map((r) => r.symbol)).toEqual(['X\uD83D\uDE00', 'X\uD83D\uDE01'])
    } finally {
      await storage.close()
    }
  })
})

describe.skipIf(!server)('mongodb faults: row retention races and crashes (finding 17)', () => {
  const policy: RotationPolicy = { ...DEFAULT_ROTATION, rowRetentionMs: 2 * MS_PER_DAY, archiveCodec: 'gzip' }
  // AAPL minutes 0-4 on days 0-3; now = day 3 minute 0, so day 0 expires (and day 1 a day later)
  const ROWS: Row[] = [0, 1, 2, 3].flatMap((d) =>
    Array.from({ length: 5 }, (_, m) => ({ symbol: 'AAPL', timestamp: tms(d, m), close: d * 10 + m })),
  )
  const NOW = tms(3, 0)
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'friday-mongo-retention-'))
  })
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** A storage whose `maintain` archives to `store()`; as createStorage() wires it (maintainRows when the backend has none). */
  function retaining(store: () => ObjectStore): {
    storage: DataStorage
    maintain(o: MaintenanceOptions): Promise<MaintenanceReport>
  } {
    const storage = createMongoStorage({
      client: () => client!,
      db: dbName,
      closeClient: false,
      rotation: policy,
      archiveStore: store,
    })
    const maintain = storage.maintain
      ? (o: MaintenanceOptions) => storage.maintain!(o)
      : (o: MaintenanceOptions) => maintainRows(storage, policy, o, store)
    return { storage, maintain }
  }

  /** A local store under `dir` whose archive puts go through `onPut(put)`. */
  function archiveStore(onPut?: (key: string, put: () => Promise<unknown>) => Promise<void>): () => ObjectStore {
    return () => {
      const real = createLocalFsStore({ baseDir: dir })
      if (!onPut) return real
      return new Proxy(real, {
        get(target, prop) {
          if (prop === 'put')
            return async (key: string, body: Uint8Array) => {
              let result: unknown
              await onPut(key, async () => {
                result = await target.put(key, body)
              })
              return result
            }
          const v = Reflect.get(target, prop, target)
          return typeof v === 'function' ? v.bind(target) : v
        },
      })
    }
  }

  /** Every row in the dataset's archives: `key -> closes` (one entry per archived copy). */
  async function archived(ds: string): Promise<Map<string, number[]>> {
    const store = createLocalFsStore({ baseDir: dir })
    const out = new Map<string, number[]>()
    try {
      const { objects } = await store.list(`_friday/${ds}/_archive/rows/`)
      for (const o of objects) {
        const got = (await store.get(o.key))!
        for (const r of rowsOf(await decodeParquet(await decompress('gzip', got.body, 0)))) {
          const k = key(r.symbol as string, r.timestamp as number)
          out.set(k, [...(out.get(k) ?? []), r.close as number])
        }
      }
    } finally {
      await store.close()
    }
    return out
  }

  it('an expired key upserted between the archive and the delete is never deleted unarchived', async () => {
    const ds = uniqueDataset('retrace')
    let raced = false
    const { storage, maintain } = retaining(
      archiveStore(async (_key, put) => {
        await put()
        if (raced) return
        raced = true
        // another writer, after the archive was stored and before the delete
        await storage.write(ds, [
          { symbol: 'AAPL', timestamp: tms(0, 2), close: 999 },
          { symbol: 'AAPL', timestamp: tms(0, 7), close: 777 },
        ])
      }),
    )
    try {
      await storage.write(ds, ROWS)
      const report = await maintain({ dataset: ds, now: () => NOW })
      expect(report.datasets[0].errors).toEqual([])
      expect(raced).toBe(true)
      // every value acknowledged for an expired key is still stored or in an archive
      const acknowledged: [string, number][] = [
        ...ROWS.filter((r) => r.timestamp < tms(1, 0)).map((r): [string, number] => [key(r.symbol, us(r.timestamp)), r.close]),
        [key('AAPL', us(tms(0, 2))), 999],
        [key('AAPL', us(tms(0, 7))), 777],
      ]
      const now = await stored(ds)
      const arch = await archived(ds)
      for (const [k, v] of acknowledged) {
        expect(now.get(k) === v || (arch.get(k) ?? []).includes(v), `${k} = ${v} kept or archived`).toBe(true)
      }
      // no archive copy twice of one value, and rows not expired are untouched
      for (const [k, vs] of arch) expect(new Set(vs).size, k).toBe(vs.length)
      for (const r of ROWS.filter((r) => r.timestamp >= tms(1, 0))) expect(now.get(key(r.symbol, us(r.timestamp)))).toBe(r.close)
      expect((await storage.describe(ds))?.rows).toBe(now.size)
    } finally {
      await storage.close()
    }
  })

  for (const when of ['before', 'after'] as const) {
    it(`a run killed ${when} storing its archive: the next run archives every expired row exactly once`, async () => {
      const ds = uniqueDataset(`retcrash${when}`)
      const crashing = retaining(
        archiveStore(async (k, put) => {
          if (when === 'after') await put()
          throw new InjectedCrash(`injected crash ${when} storing ${k}`)
        }),
      )
      try {
        await crashing.storage.write(ds, ROWS)
        const first = await crashing.maintain({ dataset: ds, now: () => NOW })
        expect(first.datasets[0].errors.map((e) => e.message)).toEqual([expect.stringMatching(/injected crash/)])
        expect((await stored(ds)).size).toBe(ROWS.length) // nothing deleted yet
        expect((await archived(ds)).size).toBe(when === 'after' ? 5 : 0)
      } finally {
        await crashing.storage.close()
      }

      // the next run, a day later: day 1 expires too
      const next = retaining(archiveStore())
      try {
        const report = await next.maintain({ dataset: ds, now: () => NOW + MS_PER_DAY })
        expect(report.datasets[0].errors).toEqual([])
        expect(report.datasets[0].rowsExpired).toBe(10)
        const arch = await archived(ds)
        const expired = ROWS.filter((r) => r.timestamp < tms(2, 0))
        expect([...arch.keys()].sort()).toEqual(expired.map((r) => key(r.symbol, us(r.timestamp))).sort())
        for (const r of expired) expect(arch.get(key(r.symbol, us(r.timestamp))), 'archived once').toEqual([r.close])
        const kept = ROWS.filter((r) => r.timestamp >= tms(2, 0))
        expect(await stored(ds)).toEqual(new Map(kept.map((r) => [key(r.symbol, us(r.timestamp)), r.close])))
        expect((await next.storage.describe(ds))?.rows).toBe(kept.length)
        expect((await next.storage.verify(ds)).problems).toEqual([])
        // and again: nothing left to do
        expect((await next.maintain({ dataset: ds, now: () => NOW + MS_PER_DAY })).totals.rowsExpired).toBe(0)
      } finally {
        await next.storage.close()
      }
    })
  }
})

describe.skipIf(!server)('mongodb factory: the archive store of row retention is the configured S3 store', () => {
  it('storage.s3_parquet.request_timeout_ms reaches it: a store that never answers fails the step within that limit', async () => {
    // a stand-in for a stuck S3 endpoint (a real one cannot be made to hang on demand): it takes requests and never answers
    const received: string[] = []
    const stuck = createHttpServer((req) => {
      received.push(`${req.method} ${req.url}`)
      req.resume()
    })
    await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve))
    // the factory gives the driver; createStorage would front it the same way
    const storage = createDataStorage(
      mongodbFactory(
        parseConfig(
          {
            storage: {
              mongodb: { database: dbName }, // the client is passed in: no url needed
              s3_parquet: {
                bucket: 'stuck',
                endpoint: `http://127.0.0.1:${(stuck.address() as { port: number }).port}`,
                force_path_style: true,
                access_key_id: 'test',
                secret_access_key: 'test',
                request_timeout_ms: 300,
                connect_timeout_ms: 200,
              },
              file_rotation: { row_retention_days: 1 },
            },
          },
          {},
        ),
        { client: client! },
      ),
    )
    try {
      const ds = uniqueDataset('stuckarch')
      await storage.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, 0), close: 1 }])
      const report = await storage.maintain!({ dataset: ds, now: () => tms(5, 0) })
      expect(received.length).toBeGreaterThan(0) // the archive store is the configured one
      expect(report.datasets[0].errors).toEqual([{ partition: null, message: expect.stringMatching(/within 300 ms/) }])
      expect(report.datasets[0].rowsExpired).toBe(0)
      expect((await storage.read(ds)).length).toBe(1) // not deleted without its archive
    } finally {
      await storage.close()
      stuck.closeAllConnections()
      await new Promise((resolve) => stuck.close(resolve))
    }
  })
})

describe.skipIf(!server)('mongodb faults: a writer killed between its rows and its metadata commit', () => {
  const batch = (close: number): Row[] =>
    [0, 1].flatMap((d) => Array.from({ length: 30 }, (_, m) => ({ symbol: 'AAPL', timestamp: tms(d, m), close: close + m })))

  it('verify() reports it; gc() and maintain() settle partitions whose intent is older than the grace, dryRun commits nothing', async () => {
    let repairedSome = 0
    for (let k = 1; ; k++) {
      const ds = uniqueDataset('deadwriter')
      const plain = storageOn(client!)
      await plain.write(ds, batch(0), { mode: 'append' })
      await plain.close()

      let commands = 0
      let armed = true
      const faulty = storageOn(
        hookedClient(client!, () =>
          armed
            ? (collection, method) => {
                if (++commands === k) throw new InjectedCrash(`injected crash before ${method} on ${collection}`)
              }
            : null,
        ),
      )
      const outcome = await faulty.write(ds, [...batch(1000), { symbol: 'MSFT', timestamp: tms(2, 0), close: 1 }]).then(
        () => 'completed' as const,
        (err: unknown) => err,
      )
      armed = false
      await faulty.close()
      if (outcome === 'completed') break
      expect((outcome as Error).message).toMatch(/injected crash/)

      const rowsNow = (await stored(ds)).size
      const young = createMongoStorage({ client: () => client!, db: dbName, closeClient: false }) // grace: one hour
      const aged = createMongoStorage({ client: () => client!, db: dbName, closeClient: false, gcGraceMs: 0 })
      try {
        const before = await young.verify(ds)
        // an intent younger than the grace may belong to a running writer: left alone
        expect((await young.gc({ dataset: ds })).keys).toEqual([])
        expect((await young.maintain!({ dataset: ds })).totals.partitionsRepaired).toBe(0)
        expect((await young.verify(ds)).problems).toEqual(before.problems)
        const dry = await young.gc({ dataset: ds, graceMs: 0, dryRun: true })
        expect((await young.verify(ds)).problems).toEqual(before.problems)
        if (before.ok) continue // the crash came before any row or after the last commit
        repairedSome++
        expect(dry.keys.length, `crash point ${k}: ${JSON.stringify(before.problems)}`).toBeGreaterThan(0)
        for (const p of before.problems) if (p.partition !== '*') expect(dry.keys).toContain(`${ds}/${p.partition}`)
        // settled: by gc with grace 0, or by maintain() of a storage whose gc grace is 0
        if (k % 2) {
          expect((await young.gc({ dataset: ds, graceMs: 0 })).keys).toEqual(dry.keys)
        } else {
          const rep = await aged.maintain!({ dataset: ds })
          expect(rep.totals.partitionsRepaired).toBe(dry.keys.length)
          expect(rep.datasets[0].errors).toEqual([])
        }
        expect((await young.verify(ds)).problems, `crash point ${k}`).toEqual([])
        expect((await young.describe(ds))?.rows).toBe(rowsNow)
        expect((await young.gc({ dataset: ds, graceMs: 0 })).keys).toEqual([])
      } finally {
        await young.close()
        await aged.close()
      }
    }
    expect(repairedSome).toBeGreaterThanOrEqual(2)
  }, 240_000)

  it('gc() refuses a negative grace', async () => {
    const s = storageOn(client!)
    try {
      await expect(s.gc({ graceMs: -1 })).rejects.toBeInstanceOf(ValidationError)
    } finally {
      await s.close()
    }
  })
})

describe.skipIf(!server)('mongodb faults: a failed write returns only after all its partition commits settled', () => {
  it('one partition commit fails while another is in flight: write() waits for it before rejecting', async () => {
    const ds = uniqueDataset('settle')
    let commits = 0
    let releaseGate!: () => void
    const gate = new Promise<void>((r) => (releaseGate = r))
    let bothArrived!: () => void
    const arrived = new Promise<void>((r) => (bothArrived = r))
    let firstThrown!: () => void
    const thrown = new Promise<void>((r) => (firstThrown = r))
    let slowCommitDone = false
    let rowsSent = false
    const hook: Hook = async (collection, method) => {
      // markPending's updates come before the rows: count the partition commits after them
      if (collection === `ds_${ds}`) rowsSent = true
      if (!rowsSent || collection !== 'friday_partitions' || (method !== 'updateOne' && method !== 'insertOne')) return
      const n = ++commits
      if (n === 1) {
        await arrived // the other commit is under way
        firstThrown()
        throw new InjectedCrash('injected failure of the first partition commit')
      }
      if (n === 2) {
        bothArrived()
        await gate // held until the test has looked
        slowCommitDone = true
      }
    }
    const s = storageOn(client!)
    await s.write(ds, [{ symbol: 'AAPL', timestamp: tms(0, 0), close: 1 }]) // dataset and first partition exist
    await s.close()
    const faulty = storageOn(hookedClient(client!, () => hook))
    const rowsWritten = faulty.write(ds, [
      { symbol: 'AAPL', timestamp: tms(0, 1), close: 2 },
      { symbol: 'MSFT', timestamp: tms(1, 1), close: 3 },
    ])
    let settled = false
    const outcome = rowsWritten.then(
      () => 'ok',
      (err: unknown) => err,
    )
    void outcome.then(() => (settled = true))
    await thrown
    await new Promise((r) => setTimeout(r, 100)) // with the old Promise.all, the write rejected here
    expect(settled).toBe(false)
    releaseGate()
    const err = await outcome
    expect(slowCommitDone).toBe(true)
    expect((err as Error).message).toMatch(/injected failure/)
    await faulty.close()
  })
})
