/**
 * Codecs are values passed through options, never process-wide state (issue 13, item 1): two
 * encodes or two storages with different codecs in one process do not see each other's; a failed
 * zstd load is forgotten, so the next call loads again. Also: the Thrift enum names of
 * `thrift-ids.ts` are hyparquet's, so the lean footer reader gives hyparquet's shapes.
 */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as zstdWasm from '@bokuweb/zstd-wasm'
import {
  CompressionCodecs,
  ConvertedTypes,
  Encodings,
  FieldRepetitionTypes,
  PageTypes,
  ParquetTypes,
} from 'hyparquet/src/constants.js'
import { snappyUncompress } from 'hyparquet/src/snappy.js'
import { snappyCompress } from 'hyparquet-writer/src/snappy.js'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import type { Table } from '../src/core/types.js'
import { createLakeStorage, type LakeDataStorage } from '../src/lake/lake-storage.js'
import { sha256 } from '../src/lake/manifest.js'
import type { LakeOptions } from '../src/lake/options.js'
import {
  type Compressor,
  decodeParquet,
  encodeParquet,
  jsCodecs,
  loadZstdWasm,
  type ParquetCodecs,
  readParquetMetadata,
  type ZstdCodec,
} from '../src/parquet/index.js'
import * as ids from '../src/parquet/thrift-ids.js'

const T0 = Date.UTC(2024, 0, 2, 14, 30)

function bars(n: number, symbol = 'AAPL', seed = 1): Table {
  const timestamp = new Float64Array(n)
  const close = new Float64Array(n)
  let s = seed
  for (let i = 0; i < n; i++) {
    timestamp[i] = (T0 + i * 60_000) * 1000
    s = (s * 1664525 + 1013904223) >>> 0
    close[i] = Math.round(s / 2 ** 16) / 100
  }
  return {
    length: n,
    schema: [
      { name: 'symbol', type: 'string' },
      { name: 'timestamp', type: 'timestamp' },
      { name: 'close', type: 'float64' },
    ],
    columns: {
      symbol: { type: 'string', values: new Array<string>(n).fill(symbol) },
      timestamp: { type: 'timestamp', values: timestamp },
      close: { type: 'float64', values: close },
    },
  }
}

/** A Snappy codec that counts the pages it compresses (hyparquet-writer's compressor underneath). */
function countingSnappy(): { codecs: ParquetCodecs; pages: () => number } {
  let pages = 0
  const compress: Compressor = (input) => {
    pages++
    return snappyCompress(input)
  }
  return { codecs: { snappy: { compress } }, pages: () => pages }
}

/** Every data page of a file: 2 per string column (dictionary + data), 1 per other column, per row group. */
function pagesOf(table: Table, rowGroups: number): number {
  return table.schema.reduce((n, c) => n + (c.type === 'string' ? 2 : 1), 0) * rowGroups
}

// First in this file: the wasm module is initialized once per process, so the failure must come before any success.
describe('loadZstdWasm', () => {
  it('forgets a failed load: the next call loads the module', async () => {
    let attempts = 0
    const failing = async (): Promise<typeof zstdWasm> => {
      attempts++
      throw new Error('wasm fetch failed')
    }
    await expect(loadZstdWasm(failing)).rejects.toThrow('wasm fetch failed')
    const zstd = await loadZstdWasm()
    expect(attempts).toBe(1)
    const bytes = encodeParquet(bars(500), { compression: 'zstd', codecs: { zstd } })
    expect((await decodeParquet(bytes, { codecs: { zstd } })).columns.close.values).toEqual(bars(500).columns.close.values)
    // loaded: later calls reuse the module (a failing loader is not called again)
    await expect(loadZstdWasm(failing)).resolves.toHaveProperty('compress')
    expect(attempts).toBe(1)
  })
})

describe('codecs are per call, not per process', () => {
  it('two interleaved encodes with different Snappy compressors each use only their own', () => {
    const a = countingSnappy()
    const b = countingSnappy()
    const tableA = bars(3000, 'AAPL', 1)
    const tableB = bars(3000, 'MSFT', 2)
    const fileA = encodeParquet(tableA, { codecs: a.codecs, rowGroupSize: 1000 })
    expect(a.pages()).toBe(pagesOf(tableA, 3))
    expect(b.pages()).toBe(0)
    encodeParquet(tableB, { codecs: b.codecs, rowGroupSize: 500 })
    encodeParquet(tableB) // the default: pure JS, neither counter
    expect(a.pages()).toBe(pagesOf(tableA, 3))
    expect(b.pages()).toBe(pagesOf(tableB, 6))
    expect(encodeParquet(tableA, { rowGroupSize: 1000 })).toEqual(fileA) // same compressor underneath: same bytes
  })

  it('decoders use the decompressors passed to them, and only those', async () => {
    const table = bars(2000)
    const file = encodeParquet(table)
    let calls = 0
    const counting: ParquetCodecs = {
      snappy: {
        decompress: (input, n) => {
          calls++
          return jsSnappyDecompress(input, n)
        },
      },
    }
    for (const engine of ['fast', 'general'] as const) {
      calls = 0
      expect((await decodeParquet(file, { engine, codecs: counting })).columns.close.values).toEqual(table.columns.close.values)
      expect(calls, engine).toBeGreaterThan(0)
      const before = calls
      expect((await decodeParquet(file, { engine })).columns.close.values).toEqual(table.columns.close.values)
      expect(calls, engine).toBe(before)
    }
  })
})

/** hyparquet's pure-JS Snappy decompressor, as a `Decompressor`. */
function jsSnappyDecompress(input: Uint8Array, outputLength: number): Uint8Array {
  const out = new Uint8Array(outputLength)
  snappyUncompress(input, out)
  return out
}

describe('two lakes in one process, different codecs', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  const lake = (options: Partial<LakeOptions> = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'friday-codecs-'))
    dirs.push(dir)
    return createLakeStorage({ backend: 'test', store: createLocalFsStore({ baseDir: dir }), ...options })
  }
  const rows = (n: number, symbol: string, seed: number) => {
    const t = bars(n, symbol, seed)
    return {
      symbol: t.columns.symbol.values as string[],
      timestamp: Array.from(t.columns.timestamp.values as Float64Array, (us) => us / 1000),
      close: t.columns.close.values as Float64Array,
    }
  }
  /** The codec of every chunk of every data file of `dataset`'s partitions. */
  const codecsOf = async (storage: LakeDataStorage, dataset: string, symbols: string[]): Promise<Set<string>> => {
    const seen = new Set<string>()
    for (const symbol of symbols) {
      const m = await storage.getManifest(dataset, { symbol, date: '2024-01-02' })
      for (const f of m?.files ?? []) {
        const got = await storage.store.get(`${dataset}/symbol=${symbol}/date=2024-01-02/${f.name}`)
        const meta = await readParquetMetadata(got!.body)
        for (const g of meta.row_groups) for (const c of g.columns) seen.add(c.meta_data!.codec)
      }
    }
    return seen
  }

  it("a counting Snappy compressor sees only its own lake's pages; zstd and snappy lakes write concurrently and both read back exactly", async () => {
    const counting = countingSnappy()
    const snappyLake = lake({ codecs: counting.codecs })
    const zstdLake = lake({ compression: 'zstd' })
    const plainLake = lake()
    const a = rows(300, 'AAPL', 3)
    const b = rows(300, 'MSFT', 4)
    await Promise.all([snappyLake.write('bars', a), zstdLake.write('bars', b), plainLake.write('bars', b)])
    expect(counting.pages()).toBe(pagesOf(bars(1), 1)) // one file, one row group: only snappyLake's
    await Promise.all([zstdLake.write('bars', a), plainLake.write('bars', a)])
    expect(counting.pages()).toBe(pagesOf(bars(1), 1))

    const [fromSnappy, fromZstd] = await Promise.all([snappyLake.read('bars'), zstdLake.read('bars', { symbols: ['MSFT'] })])
    expect(Array.from(fromSnappy.columns.close.values as Float64Array)).toEqual(Array.from(a.close))
    expect(Array.from(fromSnappy.columns.timestamp.values as Float64Array)).toEqual(a.timestamp.map((ms) => ms * 1000))
    expect(Array.from(fromZstd.columns.close.values as Float64Array)).toEqual(Array.from(b.close))
    expect(await codecsOf(snappyLake, 'bars', ['AAPL'])).toEqual(new Set(['SNAPPY']))
    expect(await codecsOf(zstdLake, 'bars', ['AAPL', 'MSFT'])).toEqual(new Set(['ZSTD']))
    expect(await codecsOf(plainLake, 'bars', ['AAPL', 'MSFT'])).toEqual(new Set(['SNAPPY']))
    for (const s of [snappyLake, zstdLake, plainLake]) await s.close()
  })

  it('a failed zstd load fails that call only; the next call loads again, and a loaded lake never reloads', async () => {
    let loads = 0
    const real = await loadZstdWasm()
    const loadZstd = async (): Promise<ZstdCodec> => {
      loads++
      if (loads === 1) throw new Error('zstd unavailable (first attempt)')
      return real
    }
    const storage = lake({ compression: 'zstd', loadZstd })
    const other = lake({ compression: 'snappy', loadZstd })
    const data = rows(100, 'AAPL', 5)
    await expect(storage.write('bars', data)).rejects.toThrow('zstd unavailable (first attempt)')
    expect(await storage.getManifest('bars', { symbol: 'AAPL', date: '2024-01-02' })).toBeNull()
    await storage.write('bars', data)
    await storage.write('bars', rows(100, 'MSFT', 6))
    await storage.read('bars')
    expect(loads).toBe(2)
    await other.write('bars', data) // a snappy lake never loads zstd
    expect(loads).toBe(2)
    expect(Array.from((await storage.read('bars', { symbols: ['AAPL'] })).columns.close.values as Float64Array)).toEqual(
      Array.from(data.close),
    )
    expect(await codecsOf(storage, 'bars', ['AAPL', 'MSFT'])).toEqual(new Set(['ZSTD']))
    await storage.close()
    await other.close()
  })

  it("each lake's checksums come from its own sha256", async () => {
    const hashed: number[] = []
    const counting = lake({
      sha256: (bytes) => {
        hashed.push(bytes.length)
        return sha256(bytes).then((s) => s.slice('sha256:'.length))
      },
    })
    const plain = lake()
    await plain.write('bars', rows(50, 'AAPL', 7))
    expect(hashed).toEqual([])
    await counting.write('bars', rows(50, 'AAPL', 7))
    const m = await counting.getManifest('bars', { symbol: 'AAPL', date: '2024-01-02' })
    expect(hashed).toEqual([m!.files[0].bytes])
    const got = await counting.store.get(`bars/symbol=AAPL/date=2024-01-02/${m!.files[0].name}`)
    expect(m!.files[0].checksum).toBe(await sha256(got!.body))
    await counting.close()
    await plain.close()
  })
})

describe('Thrift enums', () => {
  it("name every value as hyparquet's reader does", () => {
    expect([...ids.TYPE_NAMES]).toEqual(ParquetTypes)
    expect([...ids.REPETITION_NAMES]).toEqual(FieldRepetitionTypes)
    expect([...ids.CONVERTED_TYPE_NAMES]).toEqual(ConvertedTypes)
    expect([...ids.ENCODING_NAMES]).toEqual(Encodings)
    expect([...ids.CODEC_NAMES]).toEqual(CompressionCodecs)
    expect([...ids.PAGE_TYPE_NAMES]).toEqual(PageTypes)
    const values: [Record<string, number>, readonly string[]][] = [
      [ids.Type, ids.TYPE_NAMES],
      [ids.FieldRepetitionType, ids.REPETITION_NAMES],
      [ids.ConvertedType, ids.CONVERTED_TYPE_NAMES],
      [ids.Encoding, ids.ENCODING_NAMES],
      [ids.CompressionCodec, ids.CODEC_NAMES],
      [ids.PageType, ids.PAGE_TYPE_NAMES],
      [ids.LogicalTypeField, ids.LOGICAL_TYPE_NAMES],
      [ids.TimeUnitField, ids.TIME_UNIT_NAMES],
    ]
    for (const [byName, names] of values) for (const [name, value] of Object.entries(byName)) expect(names[value]).toBe(name)
  })

  it('jsCodecs is the default: the same bytes as passing nothing', () => {
    const table = bars(1000)
    expect(encodeParquet(table, { codecs: jsCodecs() })).toEqual(encodeParquet(table))
  })
})
