/**
 * `friday ingest` (issue 13 items 4 and 5), run as a real child process like test/cli.test.ts:
 * standard input, column mapping (`--symbol`, `--time-column`, `--rename`, `--delimiter`, TSV),
 * declared types (`--type volume=int64`), `--time-unit`, `--json`, singular counts; plus the
 * progress that advances while a file is read (in-process, with a recording progress sink).
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { chunkRecords } from '../src/cli/chunks.js'
import { ingest } from '../src/cli/ingest.js'
import type { Progress } from '../src/cli/progress.js'
import { countOf } from '../src/cli/text.js'
import { parseIsoUs } from '../src/core/time.js'
import type { DataStorage } from '../src/core/types.js'
import { createStorage } from '../src/node.js'
import { type CliRun, runFriday } from './helpers/friday-cli.js'

let tmp: string

/** Runs the CLI with DATA_DIR=<tmp>/data, `input` on its standard input; no TTY. */
function friday(args: string[], input?: string): Promise<CliRun> {
  return runFriday(args, { cwd: tmp, dataDir: join(tmp, 'data'), input: input ?? '' })
}

/** Rows of a dataset as NDJSON objects, via `friday query`. */
async function rows(dataset: string): Promise<Record<string, unknown>[]> {
  const out = await friday(['query', '-d', dataset, '--format', 'ndjson'])
  expect(out.code, out.stderr).toBe(0)
  return out.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
}

const file = async (name: string, text: string): Promise<string> => {
  const path = join(tmp, name)
  await writeFile(path, text)
  return path
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ingest-cli-test-'))
})

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

describe('friday ingest', () => {
  test('- reads standard input (with --format); without --format it says so', async () => {
    const csv = 'symbol,timestamp,close\nA,2024-03-01T00:00:00Z,1.5\nA,2024-03-01T00:01:00Z,2.5\n'
    const run = await friday(['ingest', '-', '--format', 'csv', '-d', 'stdin_csv'], csv)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).toContain('-: 2 rows, 1 partition (')
    expect((await rows('stdin_csv')).map((r) => r.close)).toEqual([1.5, 2.5])

    const nd = await friday(['ingest', '-', '--format', 'ndjson', '-d', 'stdin_nd'], '{"symbol":"B","timestamp":"2024-03-01"}\n')
    expect(nd.code, nd.stderr).toBe(0)
    expect(await rows('stdin_nd')).toEqual([{ symbol: 'B', timestamp: '2024-03-01T00:00:00.000Z' }])

    const auto = await friday(['ingest', '-', '-d', 'stdin_auto'], csv)
    expect(auto.code).toBe(1)
    expect(auto.stderr).toBe('friday: reading standard input (-) needs --format (csv, tsv, ndjson, json or parquet)\n')
  })

  test('a per-symbol file: --symbol, --time-column, --rename, --type volume=int64', async () => {
    const path = await file(
      'AAPL.csv',
      'Date,Open,Close,Adj Close,Volume\n2024-03-01,179.55,179.66,179.1,73488000\n2024-03-04,176.15,175.1,174.6,81510100\n',
    )
    const run = await friday([
      'ingest',
      path,
      '-d',
      'yahoo',
      '--symbol',
      'AAPL',
      '--time-column',
      'Date',
      '--rename',
      'Open=open',
      '--rename',
      'Close=close',
      '--rename',
      'Adj Close=adj_close',
      '--rename',
      'Volume=volume',
      '--type',
      'volume=int64',
    ])
    expect(run.code, run.stderr).toBe(0)
    expect(await rows('yahoo')).toEqual([
      { symbol: 'AAPL', timestamp: '2024-03-01T00:00:00.000Z', open: 179.55, close: 179.66, adj_close: 179.1, volume: 73488000 },
      { symbol: 'AAPL', timestamp: '2024-03-04T00:00:00.000Z', open: 176.15, close: 175.1, adj_close: 174.6, volume: 81510100 },
    ])
    const ls = await friday(['ls', 'yahoo', '--json'])
    expect(JSON.stringify(JSON.parse(ls.stdout))).toContain('{"name":"volume","type":"int64"}')

    // a fraction in a declared int64 column: refused naming file:line and field, nothing stored
    const bad = await file('BAD.csv', 'Date,Volume\n2024-03-01,100\n2024-03-04,100.5\n')
    const refused = await friday([
      'ingest',
      bad,
      '-d',
      'yahoo_bad',
      '--symbol',
      'X',
      '--time-column',
      'Date',
      '--type',
      'Volume=int64',
    ])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`${bad}:3: field 'Volume': expected an integer (declared int64), got 100.5`)
    expect(refused.stderr).toContain(`${bad}: nothing from this file was stored`)

    // --symbol on a file that has a symbol column
    const twice = await friday(['ingest', path, '-d', 'yahoo', '--symbol', 'AAPL', '--rename', 'Date=symbol'])
    expect(twice.code).toBe(1)
    expect(twice.stderr).toContain('a symbol for every row is only for bodies without one')
  })

  test('TSV by --format tsv or the .tsv extension; --delimiter for other separators', async () => {
    const tsv = 'symbol\ttimestamp\tnote\nA\t2024-03-01T00:00:00Z\ta,b\n'
    const byFlag = await friday(['ingest', await file('x.txt', tsv), '--format', 'tsv', '-d', 'tsv1'])
    expect(byFlag.code, byFlag.stderr).toBe(0)
    expect(await rows('tsv1')).toEqual([{ symbol: 'A', timestamp: '2024-03-01T00:00:00.000Z', note: 'a,b' }])
    const byExt = await friday(['ingest', await file('x.tsv', tsv), '-d', 'tsv2'])
    expect(byExt.code, byExt.stderr).toBe(0)
    expect(await rows('tsv2')).toEqual(await rows('tsv1'))
    const semi = await friday(['ingest', await file('semi.csv', tsv.replaceAll('\t', ';')), '--delimiter', ';', '-d', 'tsv3'])
    expect(semi.code, semi.stderr).toBe(0)
    expect(await rows('tsv3')).toEqual(await rows('tsv1'))
  })

  test('--time-unit s reads epoch seconds; without it, the refusal names the line and the flag', async () => {
    const path = await file('secs.csv', 'symbol,timestamp\nA,1709251200\nA,1709251200.25\n')
    const refused = await friday(['ingest', path, '-d', 'secs'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(
      `${path}:2: field 'timestamp': 1709251200 read as milliseconds is 1970-01-20T18:47:31.200Z, implausibly close to 1970; if this is seconds, pass --time-unit s`,
    )
    const run = await friday(['ingest', path, '-d', 'secs', '--time-unit', 's'])
    expect(run.code, run.stderr).toBe(0)
    expect((await rows('secs')).map((r) => r.timestamp)).toEqual(['2024-03-01T00:00:00.000Z', '2024-03-01T00:00:00.250Z'])
    const config = await file('friday.json', JSON.stringify({ storage: { ingest: { time_unit: 's' } } }))
    const configured = await friday(['--config', config, 'ingest', path, '-d', 'secs_cfg'])
    expect(configured.code, configured.stderr).toBe(0)
    expect(await rows('secs_cfg')).toEqual(await rows('secs'))
  })

  test('--json prints a machine-readable summary on stdout', async () => {
    const a = await file('j1.csv', 'symbol,timestamp\nA,2024-03-01T00:00:00Z\n')
    const b = await file('j2.csv', 'symbol,timestamp\nA,2024-03-02T00:00:00Z\nB,2024-03-02T00:00:00Z\n')
    const run = await friday(['ingest', a, b, '-d', 'js', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const summary = JSON.parse(run.stdout)
    expect(summary).toMatchObject({
      dataset: 'js',
      mode: 'upsert',
      filesIngested: 2,
      filesFailed: 0,
      filesNotAttempted: 0,
      rowsWritten: 3,
      partitions: 3,
      rowsBefore: 0,
      rowsAfter: 3,
    })
    expect(summary.files.map((f: { path: string; rows: number; ok: boolean }) => [f.path, f.rows, f.ok])).toEqual([
      [a, 1, true],
      [b, 2, true],
    ])
    expect(summary.bytesRead).toBeGreaterThan(0)
  })

  test('counts are singular for one: "1 row", "1 partition", "1 file"', async () => {
    const one = await file('one.csv', 'symbol,timestamp\nA,2024-03-01T00:00:00Z\n')
    const run = await friday(['ingest', one, '-d', 'single'])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).toContain(`${one}: 1 row, 1 partition (`)
    expect(run.stdout).toMatch(/^ingested 1 of 1 file into 'single' \(upsert\): 1 row written, 1 partition, /)
    expect(run.stdout).toContain("dataset 'single': 0 -> 1 row (+1)")
    expect(countOf(0, 'row')).toBe('0 rows')
    expect(countOf(1000, 'row')).toBe('1,000 rows')
  })
})

describe('ingest progress', () => {
  test('chunkRecords reports records as each buffer is scanned, before the chunk ends', async () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `A,${i}`) // ~69 KB: 17 buffers of 4 KiB
    const bytes = new TextEncoder().encode(`symbol,v\n${lines.join('\n')}\n`)
    const parts: Uint8Array[] = []
    for (let i = 0; i < bytes.length; i += 4096) parts.push(bytes.subarray(i, i + 4096))
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(p)
        c.close()
      },
    })
    const reported: number[] = []
    for await (const chunk of chunkRecords(source, { kind: 'csv', onRecords: (n) => reported.push(n) })) {
      const reader = chunk.body.getReader()
      while (!(await reader.read()).done) {}
    }
    expect(parts.length).toBe(17)
    expect(reported.length).toBe(parts.length) // one report per buffer (each ends some records), not one at the end
    expect(reported.reduce((a, b) => a + b, 0)).toBe(10_000)
  })

  test('a file under --chunk-rows advances the rows read before its one batch is written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ingest-progress-test-'))
    const storage: DataStorage = createStorage({ storage: { local_parquet: { base_dir: join(dir, 'lake') } } }, {})
    const events: string[] = []
    const recorded: DataStorage = Object.create(storage, {
      write: {
        value: async (...args: Parameters<DataStorage['write']>) => {
          events.push('write')
          return storage.write(...args)
        },
      },
    })
    const t0 = parseIsoUs('2024-03-01T00:00:00Z') as number
    const body = Array.from({ length: 20_000 }, (_, i) => `A,${new Date(t0 / 1000 + i * 60_000).toISOString()},${i}`)
    const path = join(dir, 'big.csv')
    await writeFile(path, `symbol,timestamp,v\n${body.join('\n')}\n`) // ~700 KB: many reads of 64 KiB
    let read = 0
    const sink: Progress = {
      addBytes() {},
      readRows(n) {
        read += n
        events.push(`read ${read}`)
      },
      addRows(n) {
        events.push(`written ${n}`)
      },
      fileDone() {},
      log() {},
      stop() {},
    }
    try {
      const code = await ingest(recorded, [path], {
        dataset: 'progress',
        mode: 'upsert',
        format: 'auto',
        chunkRows: 500_000,
        continueOnError: false,
        progress: false,
        quiet: true,
        json: true,
        progressSink: sink,
      })
      expect(code).toBe(0)
      const firstWrite = events.indexOf('write')
      const before = events.slice(0, firstWrite)
      expect(before.length).toBeGreaterThan(5)
      expect(before.at(-1)).toBe('read 20000')
      expect(events.slice(firstWrite)).toEqual(['write', 'written 20000'])
    } finally {
      await storage.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
