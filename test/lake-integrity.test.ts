import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalFsStore } from '../src/backends/node/local-fs-store.js'
import { StoreCapabilityError } from '../src/core/errors.js'
import { createLakeStorage } from '../src/lake/lake-storage.js'
import type { ObjectStore } from '../src/stores/types.js'

const dirs: string[] = []
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'friday-integrity-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const rows = (symbol: string, day: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ symbol, timestamp: Date.UTC(2024, 0, day, 14, 30 + i), close: 100 + i }))

function partFile(base: string, partition: string): string {
  const dir = join(base, 'bars', partition)
  const name = readdirSync(dir).find((f) => f.startsWith('part-') && f.endsWith('.parquet'))
  if (!name) throw new Error(`no data file in ${dir}`)
  return join(dir, name)
}

describe('verify() finds damaged and missing files', () => {
  it('reports a checksum mismatch, a size mismatch and a missing file, each with its partition', async () => {
    const base = tmp()
    const lake = createLakeStorage({ backend: 'local_parquet', store: createLocalFsStore({ baseDir: base }) })
    await lake.write('bars', [...rows('AAPL', 2, 5), ...rows('AAPL', 3, 5), ...rows('MSFT', 2, 5)])
    expect((await lake.verify()).ok).toBe(true)

    // same size, one byte flipped in the middle
    const flipped = partFile(base, 'symbol=AAPL/date=2024-01-02')
    const bytes = new Uint8Array(readFileSync(flipped))
    bytes[Math.floor(bytes.length / 2)] ^= 0xff
    writeFileSync(flipped, bytes)
    // truncated
    const truncated = partFile(base, 'symbol=AAPL/date=2024-01-03')
    writeFileSync(truncated, bytes.subarray(0, 10))
    // gone
    unlinkSync(partFile(base, 'symbol=MSFT/date=2024-01-02'))

    const report = await lake.verify('bars')
    expect(report.ok).toBe(false)
    expect(report.files).toBe(3)
    const byPartition = Object.fromEntries(report.problems.map((p) => [p.partition, p.problem]))
    expect(byPartition).toEqual({
      'symbol=AAPL/date=2024-01-02': 'checksum-mismatch',
      'symbol=AAPL/date=2024-01-03': 'size-mismatch',
      'symbol=MSFT/date=2024-01-02': 'missing-file',
    })
    await lake.close()
  })
})

describe('a store that ignores conditional writes is refused', () => {
  /** A real local store whose put drops If-None-Match: what a non-conforming S3 clone does. */
  function ignoringConditions(inner: ObjectStore): ObjectStore {
    return {
      ...inner,
      put: (key, body, options) => inner.put(key, body, { contentType: options?.contentType }),
    }
  }

  it('refuses writes with a StoreCapabilityError naming the problem, and writes no data', async () => {
    const base = tmp()
    const store = ignoringConditions(createLocalFsStore({ baseDir: base }))
    const lake = createLakeStorage({ backend: 'test', store })
    const err = await lake.write('bars', rows('AAPL', 2, 3)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreCapabilityError)
    expect((err as Error).message).toMatch(/conditional writes/i)
    expect((err as StoreCapabilityError).status).toBe(503)
    expect(await lake.listDatasets()).toEqual([])
  })

  it('can be allowed explicitly for a single writer', async () => {
    const base = tmp()
    const store = ignoringConditions(createLocalFsStore({ baseDir: base }))
    const lake = createLakeStorage({ backend: 'test', store, requireConditionalWrites: false })
    await lake.write('bars', rows('AAPL', 2, 3))
    expect((await lake.read('bars')).length).toBe(3)
  })
})
