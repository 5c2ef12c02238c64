/**
 * The `friday` CLI, run as a real child process (its sources through tsx, no TTY) against a
 * temporary local lake; plus the record chunker it uses for large CSV/NDJSON files.
 */

import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import Papa from 'papaparse'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { chunkRecords } from '../src/cli/chunks.js'
import { toRows } from '../src/core/table.js'
import { parseIsoUs } from '../src/core/time.js'
import { decodeParquet } from '../src/parquet/index.js'
import { type CliRun, FRIDAY_CLI_ARGS, runFriday } from './helpers/friday-cli.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FIXTURES = join(ROOT, 'test/fixtures/cli')
const BARS = join(FIXTURES, 'bars.csv')

let tmp: string

/** Runs the CLI with DATA_DIR=<tmp>/data (unless `env` says otherwise); stdio are pipes, not a TTY. */
function friday(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  return runFriday(args, { cwd: opts.cwd ?? tmp, dataDir: join(tmp, 'data'), env: opts.env })
}

/** The fixture as rows sorted like query output: by symbol, then UTC time. */
async function fixtureRows(): Promise<Record<string, string>[]> {
  const parsed = Papa.parse<Record<string, string>>(await readFile(BARS, 'utf8'), { header: true, skipEmptyLines: true })
  return parsed.data.sort((a, b) =>
    a.symbol !== b.symbol ? (a.symbol < b.symbol ? -1 : 1) : parseIsoUs(a.timestamp)! - parseIsoUs(b.timestamp)!,
  )
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'friday-cli-'))
})

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

describe('friday CLI', () => {
  test('ingest a CSV, then query it back as CSV: same values, times normalized to UTC', async () => {
    const ingest = await friday(['ingest', BARS, '--dataset', 'bars'])
    expect(ingest.stderr).toContain('bars.csv: 320 rows, 6 partitions')
    expect(ingest.code).toBe(0)
    expect(ingest.stdout).toMatch(/ingested 1 of 1 file into 'bars' \(upsert\): 320 rows written, 6 partitions/)

    const out = await friday(['query', '--dataset', 'bars', '--format', 'csv'])
    expect(out.code).toBe(0)
    const got = Papa.parse<Record<string, string>>(out.stdout, { header: true, skipEmptyLines: true }).data
    const want = await fixtureRows()
    expect(got).toHaveLength(320)
    expect(new Set(got.map((r) => r.symbol))).toEqual(new Set(['AAPL', 'EUR/USD']))
    for (let i = 0; i < want.length; i++) {
      expect(got[i].symbol).toBe(want[i].symbol)
      expect(got[i].timestamp).toMatch(/Z$/)
      expect(Date.parse(got[i].timestamp) * 1000).toBe(parseIsoUs(want[i].timestamp))
      for (const c of ['open', 'high', 'low', 'close', 'volume'])
        expect(Number(got[i][c]), `${c} of row ${i}`).toBe(Number(want[i][c]))
    }
  })

  test('query --format ndjson with symbols, start, end and limit', async () => {
    const args = ['query', '-d', 'bars', '--symbols', 'EUR/USD', '--start', '2024-03-02', '--end', '2024-03-03T00:00:00Z']
    const out = await friday([...args, '--limit', '5', '--format', 'ndjson'])
    expect(out.code).toBe(0)
    const rows = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(rows).toHaveLength(5)
    expect(rows.map((r) => Date.parse(r.timestamp))).toEqual(
      [0, 15, 30, 45, 60].map((m) => Date.parse('2024-03-02T00:00:00Z') + m * 60_000),
    )
    expect(rows.every((r) => r.symbol === 'EUR/USD')).toBe(true)

    const all = await friday([...args, '--format', 'ndjson', '--columns', 'close'])
    const lines = all.stdout.trim().split('\n')
    expect(lines).toHaveLength(96) // one UTC day of 15-minute bars; end is exclusive
    expect(Object.keys(JSON.parse(lines[0])).sort()).toEqual(['close', 'symbol', 'timestamp'])
  })

  test('query --out x.parquet writes a Parquet file (format from the extension)', async () => {
    const file = join(tmp, 'x.parquet')
    const out = await friday(['query', '-d', 'bars', '--symbols', 'AAPL', '--out', file])
    expect(out.code).toBe(0)
    expect(out.stdout).toBe('')
    const table = await decodeParquet(new Uint8Array(await readFile(file)))
    expect(table.length).toBe(160)
    const rows = toRows(table)
    const want = (await fixtureRows()).filter((r) => r.symbol === 'AAPL')
    expect(rows.map((r) => r.close)).toEqual(want.map((r) => Number(r.close)))
    expect(rows.map((r) => Date.parse(r.timestamp as string) * 1000)).toEqual(want.map((r) => parseIsoUs(r.timestamp)))
  })

  test('ingesting the same file again is idempotent (upsert) and the summary says so', async () => {
    const again = await friday(['ingest', BARS, '--dataset', 'bars', '--quiet'])
    expect(again.code).toBe(0)
    expect(again.stderr).toBe('') // --quiet: no per-file lines
    expect(again.stdout).toContain("dataset 'bars': 320 -> 320 rows (+0, unchanged: every row was already stored)")
    const ls = await friday(['ls'])
    expect(ls.stdout).toMatch(/^bars\s+320\s+6\s/m)
  })

  test('ls lists datasets with row counts; ls <dataset> lists its partitions', async () => {
    const ls = await friday(['ls'])
    expect(ls.code).toBe(0)
    const [header, row] = ls.stdout.trim().split('\n')
    expect(header.split(/\s+/)).toEqual(['DATASET', 'ROWS', 'PARTITIONS', 'FILES', 'SIZE', 'SYMBOLS', 'FIRST', 'LAST'])
    expect(row).toMatch(/^bars\s+320\s+6\s+6\s+[\d.]+ KiB\s+2\s+2024-03-01T20:00:00.000Z\s+2024-03-03T11:45:00.000Z$/)

    const parts = await friday(['ls', 'bars'])
    expect(parts.code).toBe(0)
    expect(parts.stdout).toContain('2 symbols (AAPL, EUR/USD)')
    expect(parts.stdout).toMatch(/^symbol=EUR%2FUSD\/date=2024-03-02\s+96\s+1\s+[\d.]+ KiB\s+\d+\s/m)
    const json = JSON.parse((await friday(['ls', 'bars', '--json'])).stdout)
    expect(json.partitions).toHaveLength(6)
    expect(json.partitions.reduce((s: number, p: { rows: number }) => s + p.rows, 0)).toBe(320)

    const missing = await friday(['ls', 'nope'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe("friday: dataset 'nope' not found\n")
  })

  test('a file with a bad row: exit 1, file:line named, nothing stored', async () => {
    const dataDir = join(tmp, 'bad-lake')
    const env = { DATA_DIR: dataDir }
    const out = await friday(['ingest', join(FIXTURES, 'bad.csv'), '--dataset', 'bad'], { env })
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/bad\.csv:5: field 'timestamp': .*2024-02-30/)
    expect(out.stderr).toContain('bad.csv: nothing from this file was stored')
    const ls = await friday(['ls'], { env })
    expect(ls.code).toBe(0)
    expect(ls.stdout).toBe('(no datasets)\n')
  })

  test('per-file errors stop the ingest unless --continue-on-error', async () => {
    const env = { DATA_DIR: join(tmp, 'continue-lake') }
    const bad = join(FIXTURES, 'bad.csv')
    const stop = await friday(['ingest', bad, BARS, '-d', 'mixed'], { env })
    expect(stop.code).toBe(1)
    expect(stop.stderr).toContain('1 not attempted')
    expect((await friday(['ls'], { env })).stdout).toBe('(no datasets)\n')

    const go = await friday(['ingest', bad, BARS, '-d', 'mixed', '--continue-on-error'], { env })
    expect(go.code).toBe(1)
    expect(go.stderr).toMatch(/bad\.csv:5:/)
    expect(go.stdout).toContain('ingested 1 of 2 files')
    expect((await friday(['ls'], { env })).stdout).toMatch(/^mixed\s+320\s/m)
  })

  test('globs are expanded: data/*.csv', async () => {
    const dir = await mkdtemp(join(tmp, 'glob-'))
    await mkdir(join(dir, 'data'))
    const lines = (await readFile(BARS, 'utf8')).trim().split('\n')
    await writeFile(join(dir, 'data/a.csv'), `${[lines[0], ...lines.slice(1, 101)].join('\n')}\n`)
    await writeFile(join(dir, 'data/b.csv'), `${[lines[0], ...lines.slice(101)].join('\n')}\n`)
    await writeFile(join(dir, 'data/notes.txt'), 'not data')
    const env = { DATA_DIR: join(dir, 'lake') }
    const out = await friday(['ingest', 'data/*.csv', '-d', 'globbed'], { cwd: dir, env })
    expect(out.code).toBe(0)
    expect(out.stderr).toContain('data/a.csv: 100 rows')
    expect(out.stderr).toContain('data/b.csv: 220 rows')
    expect(out.stdout).toContain('ingested 2 of 2 files')
    expect((await friday(['ls'], { cwd: dir, env })).stdout).toMatch(/^globbed\s+320\s/m)

    const none = await friday(['ingest', 'data/*.ndjson', '-d', 'globbed'], { cwd: dir, env })
    expect(none.code).toBe(1)
    expect(none.stderr).toBe("friday: no files match 'data/*.ndjson'\n")
  })

  test('gzip-compressed CSV (.csv.gz) and NDJSON are read by extension', async () => {
    const env = { DATA_DIR: join(tmp, 'gz-lake') }
    const gz = join(tmp, 'bars.csv.gz')
    await writeFile(gz, gzipSync(await readFile(BARS)))
    const ndjson = join(tmp, 'more.jsonl')
    await writeFile(ndjson, '{"symbol":"MSFT","timestamp":"2024-03-04T09:30:00-05:00","close":410.5}\n\n')
    const out = await friday(['ingest', gz, ndjson, '-d', 'gz'], { env })
    expect(out.code).toBe(0)
    expect(out.stdout).toContain('321 rows written')
    const msft = await friday(['query', '-d', 'gz', '--symbols', 'MSFT', '--columns', 'close', '--format', 'json'], { env })
    expect(JSON.parse(msft.stdout)).toEqual([{ symbol: 'MSFT', timestamp: '2024-03-04T14:30:00.000Z', close: 410.5 }])
  })

  test('upsert in chunks: a bad row in a later chunk names its file line; a re-run after the fix completes', async () => {
    const env = { DATA_DIR: join(tmp, 'chunk-lake') }
    const lines = (await readFile(BARS, 'utf8')).trim().split('\n')
    const broken = [...lines]
    broken[199] = broken[199].replace(/^(\w+),[^,]+,/, '$1,yesterday,') // file line 200
    const file = join(tmp, 'big.csv')
    await writeFile(file, `${broken.join('\n')}\n`)

    const out = await friday(['ingest', file, '-d', 'chunked', '--chunk-rows', '50'], { env })
    expect(out.code).toBe(1)
    expect(out.stderr).toMatch(/big\.csv:200: field 'timestamp': .*yesterday/)
    expect(out.stderr).toContain(
      'the first 150 rows of this file were already stored (upsert in chunks); fix the cause and re-run',
    )

    await writeFile(file, `${lines.join('\n')}\n`)
    const fixed = await friday(['ingest', file, '-d', 'chunked', '--chunk-rows', '50'], { env })
    expect(fixed.code).toBe(0)
    expect(fixed.stdout).toContain("dataset 'chunked': 150 -> 320 rows (+170)")

    const append = await friday(['ingest', file, '-d', 'appended', '--chunk-rows', '50', '--mode', 'append'], { env })
    expect(append.code).toBe(0) // append reads the whole file as one batch
    expect(append.stdout).toContain('320 rows written')
  })

  test('--config: a JSON config validated by the config parser; errors are one line, exit 1', async () => {
    const good = join(tmp, 'friday.json')
    await writeFile(good, JSON.stringify({ storage: { local_parquet: { base_dir: join(tmp, 'data') } } }))
    const ok = await friday(['--config', good, 'ls'], { env: { DATA_DIR: '' } })
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/^bars\s+320\s/m)

    const bad = join(tmp, 'bad.json')
    await writeFile(bad, JSON.stringify({ storage: { local_parquet: { compresion: 'zstd' } } }))
    const out = await friday(['ls', '--config', bad])
    expect(out.code).toBe(1)
    expect(out.stderr).toBe(
      "friday: invalid configuration: storage.local_parquet.compresion: unknown key, did you mean 'compression'?\n",
    )
  })

  test('usage errors exit 2: unknown flag, missing --dataset, bad --limit', async () => {
    const unknown = await friday(['query', '-d', 'bars', '--bogus'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("unknown option '--bogus'")
    expect((await friday(['ingest', BARS])).code).toBe(2)
    expect((await friday(['query', '-d', 'bars', '--limit', 'ten'])).code).toBe(2)
    expect((await friday(['frobnicate'])).code).toBe(2)
    const help = await friday(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: friday')
  })

  test('serve answers GET /healthz, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [...FRIDAY_CLI_ARGS, 'serve', '--port', '0'], {
      cwd: tmp,
      env: { ...process.env, DATA_DIR: join(tmp, 'data'), API_TOKENS: '', STORAGE_BACKEND: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      let output = ''
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve printed no URL within 30 s: ${output}`)), 30_000)
        const onData = (d: Buffer) => {
          output += d
          const m = /http:\/\/127\.0\.0\.1:\d+/.exec(output)
          if (m) {
            clearTimeout(timer)
            resolve(m[0])
          }
        }
        child.stdout.on('data', onData)
        child.stderr.on('data', onData)
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)))
      })
      const res = await fetch(`${url}/healthz`)
      expect(res.status).toBe(200)
      await res.arrayBuffer()
      const exited = new Promise<number | null | 'still running'>((resolve) => {
        const timer = setTimeout(() => resolve('still running'), 15_000)
        child.on('exit', (code) => {
          clearTimeout(timer)
          resolve(code)
        })
      })
      child.kill('SIGTERM')
      expect(await exited, output).toBe(0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })
})

describe('chunkRecords', () => {
  const encoder = new TextEncoder()
  /** A stream delivering `text` in pieces of `size` bytes, to cross buffer boundaries everywhere. */
  const streamOf = (text: string, size: number) => {
    const bytes = encoder.encode(text)
    let pos = 0
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (pos >= bytes.length) return c.close()
        c.enqueue(bytes.slice(pos, pos + size))
        pos += size
      },
    })
  }
  const collect = async (text: string, kind: 'csv' | 'ndjson', chunkRows: number, size: number) => {
    const out: { text: string; firstRow: number; rowLines: number[]; lineOffset: number }[] = []
    for await (const chunk of chunkRecords(streamOf(text, size), { kind, chunkRows })) {
      const body = await new Response(chunk.body).text()
      out.push({ text: body, firstRow: chunk.firstRow, rowLines: [...chunk.rowLines], lineOffset: chunk.lineOffset })
    }
    return out
  }

  test.each([1, 3, 7, 1000])(
    'CSV: header repeated, quoted newlines kept in one record, file lines (buffers of %i bytes)',
    async (size) => {
      const csv = 'a,b\n1,"x\ny"\n\n2,z\n3,"q""\n"\n4,w'
      const chunks = await collect(csv, 'csv', 2, size)
      expect(chunks.map((c) => c.text)).toEqual(['a,b\n1,"x\ny"\n\n2,z\n', 'a,b\n3,"q""\n"\n4,w'])
      expect(chunks.map((c) => c.firstRow)).toEqual([0, 2])
      expect(chunks.map((c) => c.rowLines)).toEqual([
        [2, 5],
        [6, 8],
      ])
      // line 2 of the second chunk's body (after the repeated header) is file line 6
      expect(2 + chunks[1].lineOffset).toBe(6)
    },
  )

  test('NDJSON: no header; an exact cut at the end yields no empty chunk', async () => {
    const chunks = await collect('{"a":1}\n{"a":2}\n\n{"a":3}\n{"a":4}\n', 'ndjson', 2, 5)
    expect(chunks.map((c) => c.text)).toEqual(['{"a":1}\n{"a":2}\n', '\n{"a":3}\n{"a":4}\n'])
    expect(chunks.map((c) => c.rowLines)).toEqual([
      [1, 2],
      [4, 5],
    ])
    expect(2 + chunks[1].lineOffset).toBe(4) // body line 2 = file line 4
  })

  test('no limit: one chunk, the stream as is', async () => {
    const chunks = await collect('a\n1\n2\n', 'csv', Number.POSITIVE_INFINITY, 2)
    expect(chunks).toEqual([{ text: 'a\n1\n2\n', firstRow: 0, rowLines: [2, 3], lineOffset: 0 }])
    expect(await collect('', 'csv', 10, 2)).toEqual([{ text: '', firstRow: 0, rowLines: [], lineOffset: 0 }])
  })
})
