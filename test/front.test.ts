/**
 * The core's front (`createDataStorage`) on its own: every call's arguments are checked once, in
 * front of the driver, with the errors the backends gave before the split; the retrieval
 * defaults, the maintenance fallback and the read cache / op log composition live there too.
 *
 * The driver here is a FAKE (an in-memory recorder, `FakeDriver`): this tests the front's own
 * logic, which no real backend can isolate. The same checks on every real backend are covered by
 * the conformance suite (test/conformance/storage.case.ts), which reaches each through its front.
 */

import { describe, expect, it } from 'vitest'
import { frontOptionsFromConfig } from '../src/config/factory.js'
import { parseConfig } from '../src/config/load.js'
import { DEFAULT_SCAN_BATCH } from '../src/core/checks.js'
import type { DriverGc, DriverRead, DriverScan, DriverWrite, StorageDriver } from '../src/core/driver.js'
import type { TimeSymbolFilter } from '../src/core/filter.js'
import { createDataStorage, type StorageLayer } from '../src/core/front.js'
import { emptyTable, KEY_SCHEMA } from '../src/core/table.js'
import { parseTimeUs } from '../src/core/time.js'
import type {
  DataStorage,
  GcReport,
  InputColumns,
  InputRow,
  MaintenanceOptions,
  MaintenanceReport,
  Table,
  VerifyReport,
  WriteResult,
} from '../src/core/types.js'
import { expectValidation } from './conformance/storage.case.js'

const REPORT: MaintenanceReport = {
  backend: 'fake',
  dryRun: false,
  startedAt: '2024-01-01T00:00:00.000Z',
  durationMs: 0,
  datasets: [],
  totals: {
    partitionsCompacted: 0,
    filesMerged: 0,
    filesWritten: 0,
    bytesBefore: 0,
    bytesAfter: 0,
    archivesWritten: 0,
    archivesRemoved: 0,
    rowsExpired: 0,
    orphansRemoved: 0,
    partitionsRepaired: 0,
    partitionsSkipped: 0,
  },
}

/** A fake driver: records each call and its (already checked) arguments; stores nothing. */
class FakeDriver implements StorageDriver {
  readonly backend = 'fake'
  readonly calls: { method: string; args: unknown[] }[] = []
  /** A member the contract does not name (like the lake's `store`): reaches callers unchanged. */
  readonly extra = 'driver-only'

  private note(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args })
  }
  async write(dataset: string, data: InputRow[] | InputColumns | Table, request: DriverWrite): Promise<WriteResult> {
    this.note('write', dataset, data, request)
    return { rowsWritten: 0, partitions: [] }
  }
  async read(dataset: string, request: DriverRead): Promise<Table> {
    this.note('read', dataset, request)
    return emptyTable(KEY_SCHEMA)
  }
  async *scan(dataset: string, request: DriverScan): AsyncIterable<Table> {
    this.note('scan', dataset, request)
    yield emptyTable(KEY_SCHEMA)
  }
  async delete(dataset: string, filter: TimeSymbolFilter) {
    this.note('delete', dataset, filter)
    return { rowsDeleted: 0, partitions: [] }
  }
  async listDatasets() {
    this.note('listDatasets')
    return []
  }
  async describe(dataset: string) {
    this.note('describe', dataset)
    return null
  }
  async listPartitions(dataset: string, filter: TimeSymbolFilter) {
    this.note('listPartitions', dataset, filter)
    return []
  }
  async getManifest(dataset: string, partition: Record<string, string> | string) {
    this.note('getManifest', dataset, partition)
    return null
  }
  async verify(dataset: string | undefined): Promise<VerifyReport> {
    this.note('verify', dataset)
    return { ok: true, datasets: 0, partitions: 0, files: 0, bytes: 0, problems: [] }
  }
  async gc(request: DriverGc): Promise<GcReport> {
    this.note('gc', request)
    return { filesDeleted: 0, bytesDeleted: 0, keys: [] }
  }
  requestStats() {
    return { get: 0, put: 0, head: 0, list: 0, delete: 0, bytesRead: 0, bytesWritten: 0 }
  }
  async close() {
    this.note('close')
  }
}

/** The fake with its own `maintain`. */
class FakeMaintainingDriver extends FakeDriver {
  async maintain(options: MaintenanceOptions): Promise<MaintenanceReport> {
    this.calls.push({ method: 'maintain', args: [options] })
    return { ...REPORT, backend: 'fake-own' }
  }
}

async function drain(it: AsyncIterable<Table>): Promise<Table[]> {
  const out: Table[] = []
  for await (const t of it) out.push(t)
  return out
}

const BAD_NAMES = ['a/b', '..', '../etc', 'a\u0000b', 'tab\tname', '', 42]

describe('createDataStorage: bad arguments never reach the driver', () => {
  const cases: [string, string, (s: DataStorage) => Promise<unknown>][] = [
    ...BAD_NAMES.flatMap((name): [string, string, (s: DataStorage) => Promise<unknown>][] => [
      [`write to dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.write(name as string, [])],
      [`read of dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.read(name as string)],
      [`scan of dataset ${JSON.stringify(name)}`, 'dataset', (s) => drain(s.scan(name as string))],
      [`delete in dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.delete(name as string)],
      [`describe of dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.describe(name as string)],
      [`listPartitions of dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.listPartitions(name as string)],
      [`getManifest of dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.getManifest(name as string, 'symbol=A')],
      [`verify of dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.verify(name as string)],
      [`gc of dataset ${JSON.stringify(name)}`, 'dataset', (s) => s.gc({ dataset: name as string })],
    ]),
    ['write mode "merge"', 'mode', (s) => s.write('ds', [], { mode: 'merge' as never })],
    ['write mode null', 'mode', (s) => s.write('ds', [], { mode: null as never })],
    ['time unit "min"', 'timeUnit', (s) => s.write('ds', [], { timeUnit: 'min' as never })],
    ['time unit 1000', 'timeUnit', (s) => s.write('ds', [], { timeUnit: 1000 as never })],
    ['limit -1', 'limit', (s) => s.read('ds', { limit: -1 })],
    ['limit NaN', 'limit', (s) => s.read('ds', { limit: Number.NaN })],
    ['limit "x"', 'limit', (s) => s.read('ds', { limit: 'x' as never })],
    ['scan limit -1', 'limit', (s) => drain(s.scan('ds', { limit: -1 }))],
    ['batchSize 0', 'batchSize', (s) => drain(s.scan('ds', { batchSize: 0 }))],
    ['batchSize NaN', 'batchSize', (s) => drain(s.scan('ds', { batchSize: Number.NaN }))],
    ['batchSize "10"', 'batchSize', (s) => drain(s.scan('ds', { batchSize: '10' as never }))],
    ['start after end (read)', 'end', (s) => s.read('ds', { start: '2024-01-02', end: '2024-01-01' })],
    ['start after end (delete)', 'end', (s) => s.delete('ds', { start: 2_000, end: 1_000 })],
    ['start after end (listPartitions)', 'end', (s) => s.listPartitions('ds', { start: 2_000, end: 1_000 })],
    ['unparsable start', 'start', (s) => s.read('ds', { start: 'yesterday' })],
    ['unparsable end (delete)', 'end', (s) => s.delete('ds', { end: 'soon' })],
    ['symbols not an array', 'symbols', (s) => s.read('ds', { symbols: 'AAPL' as never })],
    ['columns not an array', 'columns', (s) => s.read('ds', { columns: 'close' as never })],
    ['columns with a number', 'columns', (s) => drain(s.scan('ds', { columns: [1] as never }))],
    ['gc graceMs -1', 'graceMs', (s) => s.gc({ graceMs: -1 })],
    ['gc graceMs "1h"', 'graceMs', (s) => s.gc({ graceMs: '1h' as never })],
    ['gc dryRun "yes"', 'dryRun', (s) => s.gc({ dryRun: 'yes' as never })],
  ]
  for (const [name, field, call] of cases) {
    it(`${name}: ValidationError on '${field}', the driver is not called`, async () => {
      const driver = new FakeDriver()
      const storage = createDataStorage(driver)
      await expectValidation(call(storage), undefined, field)
      expect(driver.calls).toEqual([])
    })
  }

  it('maintain and the archive calls check the dataset name too', async () => {
    const driver = new FakeMaintainingDriver()
    const storage = createDataStorage(driver)
    await expectValidation(storage.maintain({ dataset: '../x' }), undefined, 'dataset')
    expect(driver.calls).toEqual([])
  })

  it('a check that fails is a rejected promise, not a throw at the call', async () => {
    const storage = createDataStorage(new FakeDriver())
    let p: Promise<unknown> | undefined
    expect(() => {
      p = storage.read('a/b')
    }).not.toThrow()
    await expectValidation(p!, undefined, 'dataset')
  })
})

describe('createDataStorage: the driver receives checked, normalized arguments', () => {
  it('read: a parsed filter, whole-row limit, the column list', async () => {
    const driver = new FakeDriver()
    const storage = createDataStorage(driver)
    await storage.read('bars', { symbols: ['AAPL'], start: '2024-01-01T00:00:00Z', limit: 2.7, columns: ['close'] })
    expect(driver.calls).toEqual([
      {
        method: 'read',
        args: [
          'bars',
          {
            filter: { symbols: new Set(['AAPL']), start: parseTimeUs('2024-01-01T00:00:00Z'), end: Number.POSITIVE_INFINITY },
            columns: ['close'],
            limit: 2,
          },
        ],
      },
    ])
  })

  it('read without options: every row, no limit, all columns; equal bounds are an empty range, not an error', async () => {
    const driver = new FakeDriver()
    const storage = createDataStorage(driver)
    await storage.read('bars')
    await storage.read('bars', { start: 5, end: 5 })
    expect(driver.calls[0].args[1]).toEqual({
      filter: { symbols: null, start: Number.NEGATIVE_INFINITY, end: Number.POSITIVE_INFINITY },
      columns: undefined,
      limit: Number.POSITIVE_INFINITY,
    })
    expect((driver.calls[1].args[1] as DriverRead).filter).toMatchObject({ start: 5_000, end: 5_000 })
  })

  it('write: mode upsert by default, the time unit as given; gc: dryRun false by default', async () => {
    const driver = new FakeDriver()
    const storage = createDataStorage(driver)
    const rows = [{ symbol: 'A', timestamp: 1 }]
    await storage.write('bars', rows)
    await storage.write('bars', rows, { mode: 'append', timeUnit: 'ns' })
    await storage.gc()
    await storage.gc({ dataset: 'bars', graceMs: 0, dryRun: true })
    expect(driver.calls.map((c) => c.args.slice(-1)[0])).toEqual([
      { mode: 'upsert', timeUnit: undefined },
      { mode: 'append', timeUnit: 'ns' },
      { dataset: undefined, graceMs: undefined, dryRun: false },
      { dataset: 'bars', graceMs: 0, dryRun: true },
    ])
    expect(driver.calls[0].args[1]).toBe(rows) // the input itself: the driver converts and normalizes it
  })

  it("members the contract does not name reach the driver's own", () => {
    const driver = new FakeDriver()
    const storage = createDataStorage(driver)
    expect(storage.extra).toBe('driver-only')
    expect(storage.backend).toBe('fake')
  })
})

describe('createDataStorage: retrieval defaults', () => {
  it('a scan naming no batchSize gets retrieval.batchSize; one that names it keeps it', async () => {
    const driver = new FakeDriver()
    const storage = createDataStorage(driver, { retrieval: { batchSize: 123, concurrency: 2 } })
    expect(storage.retrieval).toEqual({ batchSize: 123, concurrency: 2 })
    await drain(storage.scan('bars'))
    await drain(storage.scan('bars', { batchSize: 7.9 }))
    expect(driver.calls.map((c) => (c.args[1] as DriverScan).batchSize)).toEqual([123, 7])
  })

  it(`without retrieval defaults: ${DEFAULT_SCAN_BATCH}-row batches, and no storage.retrieval`, async () => {
    const driver = new FakeDriver()
    const storage = createDataStorage(driver)
    expect(storage.retrieval).toBeUndefined()
    await drain(storage.scan('bars'))
    expect((driver.calls[0].args[1] as DriverScan).batchSize).toBe(DEFAULT_SCAN_BATCH)
  })
})

describe('createDataStorage: maintain', () => {
  it('a driver without maintain and no fallback: no maintain (the capability is absent, not a stub)', () => {
    const storage = createDataStorage(new FakeDriver())
    expect(storage.maintain).toBeUndefined()
    expect('maintain' in storage).toBe(false)
  })

  it('a driver without maintain gets the fallback, called with the checked storage and checked options', async () => {
    const driver = new FakeDriver()
    const seen: { storage: DataStorage; options: MaintenanceOptions }[] = []
    const storage = createDataStorage(driver, {
      maintain: async (s, options) => {
        seen.push({ storage: s, options })
        return REPORT
      },
    })
    expect(await storage.maintain!({ dataset: 'bars', dryRun: true })).toBe(REPORT)
    expect(seen[0].options).toEqual({ dataset: 'bars', dryRun: true })
    // the storage the fallback works through checks its calls like any other
    await expectValidation(seen[0].storage.read('a/b'), undefined, 'dataset')
    expect(driver.calls).toEqual([])
  })

  it('a driver with its own maintain keeps it; the fallback is not called', async () => {
    const driver = new FakeMaintainingDriver()
    let fallbackCalls = 0
    const storage = createDataStorage(driver, {
      maintain: async () => {
        fallbackCalls++
        return REPORT
      },
    })
    expect((await storage.maintain({})).backend).toBe('fake-own')
    expect(fallbackCalls).toBe(0)
    expect(driver.calls).toEqual([{ method: 'maintain', args: [{}] }])
  })
})

describe('createDataStorage: the read cache and the op log are composed once, op log outside', () => {
  it('each layer is applied once: the cache over the checked storage, the op log over the cache', async () => {
    const driver = new FakeDriver()
    const order: string[] = []
    let checked: DataStorage | undefined
    let cached: DataStorage | undefined
    const readCache: StorageLayer = (s) => {
      order.push('readCache')
      checked = s
      cached = { ...bindAll(s), backend: 'cached' }
      return cached
    }
    const opLog: StorageLayer = (s) => {
      order.push('opLog')
      expect(s).toBe(cached)
      return { ...bindAll(s), backend: 'logged' }
    }
    const storage = createDataStorage(driver, { readCache, opLog })
    expect(order).toEqual(['readCache', 'opLog'])
    expect(storage.backend).toBe('logged')
    // what the cache wraps is the checked storage, not the bare driver
    await expectValidation(checked!.read('..'), undefined, 'dataset')
    expect(driver.calls).toEqual([])
  })

  it('from a config: storage.readCache and storage.oplog are set, and a call through both is checked once', async () => {
    const config = parseConfig(
      { storage: { read_cache: { enabled: true }, metadata_logging: { enabled: true, log_operations: true } } },
      {},
    )
    const driver = new FakeDriver()
    const storage = createDataStorage(driver, frontOptionsFromConfig(config, { oplog: { printFailures: false } }))
    try {
      expect(storage.readCache).toBeDefined()
      expect(storage.oplog).toBeDefined()
      await expectValidation(storage.read('a/b'), undefined, 'dataset')
      expect(driver.calls).toEqual([])
      await storage.read('bars', { symbols: ['A'] })
      // the cache asked for the partitions (none), then read from the checked storage
      expect(driver.calls.map((c) => c.method)).toEqual(['listPartitions', 'read'])
      const records = await storage.oplog!.query({ limit: 10 })
      expect(records.map((r) => `${r.op}:${r.error?.code ?? 'ok'}`).sort()).toEqual(['read:ok', 'read:validation_error'])
    } finally {
      await storage.close()
    }
  })
})

/** The fake with a `snapshot`: records its checked filter, and its read's checked request. */
class FakeSnapshotDriver extends FakeDriver {
  async snapshot(dataset: string, filter: TimeSymbolFilter) {
    this.calls.push({ method: 'snapshot', args: [dataset, filter] })
    const info = { values: { symbol: 'A' }, path: 'symbol=A', version: 7, rows: 1, bytes: 1, files: 1 }
    return {
      partitions: [{ ...info, firstTimestamp: null, lastTimestamp: null }],
      read: async (request: DriverRead) => {
        this.calls.push({ method: 'snapshot.read', args: [request] })
        return null
      },
    }
  }
}

describe('createDataStorage: snapshot', () => {
  it('a driver without snapshot: none (the read cache lists, then reads)', () => {
    const storage = createDataStorage(new FakeDriver())
    expect(storage.snapshot).toBeUndefined()
    expect('snapshot' in storage).toBe(false)
  })

  it("passes the driver's snapshot through, checking the dataset, the filter and each read's options", async () => {
    const driver = new FakeSnapshotDriver()
    const storage = createDataStorage(driver)
    await expectValidation(storage.snapshot('a/b'), undefined, 'dataset')
    await expectValidation(storage.snapshot('bars', { start: 2000, end: 1000 }), undefined, 'end')
    expect(driver.calls).toEqual([])

    const snap = await storage.snapshot('bars', { symbols: ['A'], start: 1000 })
    expect(snap.partitions.map((p) => [p.path, p.version])).toEqual([['symbol=A', 7]])
    expect(driver.calls[0].args).toEqual(['bars', { symbols: new Set(['A']), start: 1_000_000, end: Number.POSITIVE_INFINITY }])
    await expectValidation(snap.read({ limit: -1 }), undefined, 'limit')
    await expectValidation(snap.read({ columns: 'close' as unknown as string[] }), undefined, 'columns')
    expect(driver.calls).toHaveLength(1)
    expect(await snap.read({ end: 5000, columns: ['close'] })).toBeNull()
    expect(driver.calls[1]).toEqual({
      method: 'snapshot.read',
      args: [
        {
          filter: { symbols: null, start: Number.NEGATIVE_INFINITY, end: 5_000_000 },
          columns: ['close'],
          limit: Number.POSITIVE_INFINITY,
        },
      ],
    })
  })
})

/** The members of a storage (own and inherited, through a Proxy too), bound to it, as a plain object. */
function bindAll(s: DataStorage): DataStorage {
  const names = [
    'write',
    'read',
    'scan',
    'delete',
    'listDatasets',
    'describe',
    'listPartitions',
    'getManifest',
    'verify',
    'gc',
    'requestStats',
    'close',
  ] as const
  const out: Record<string, unknown> = { backend: s.backend }
  for (const n of names) out[n] = (s[n] as (...a: unknown[]) => unknown).bind(s)
  return out as unknown as DataStorage
}
