/**
 * A property test of the rows route (issue 12): random valid and invalid bodies of every text
 * format (JSON array, NDJSON, CSV; columnar JSON through the library, since the route takes rows)
 * from a seeded PRNG. A valid body is stored exactly: the rows read back equal what was sent, to
 * the microsecond, the bit and the character. An invalid one gets a 4xx and stores nothing: a new
 * dataset stays absent, an existing one keeps exactly its rows. The seed is printed on failure.
 */

import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatUs, MAX_TIME_US, MIN_TIME_US, parseTimeUs } from '../src/core/time.js'
import type { DataStorage } from '../src/core/types.js'
import { json, localLake, type TestLake, testApp } from './helpers/http.js'

const SEED = Number(process.env.PROPERTY_SEED ?? 0x12c0ffee)
const RUNS = Number(process.env.PROPERTY_RUNS ?? 40)

/** mulberry32: a small seeded PRNG (deterministic across runs and machines). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Rand = ReturnType<typeof prng>
const int = (r: Rand, n: number) => Math.floor(r() * n)
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]

/** Symbols that are valid and distinct; NFC `é` and NFD `e\u0301` are two symbols (kept byte-exact). */
const SYMBOLS = ['AAPL', 'BRK.B', 'EUR/USD', '^GSPC', 'zürich', '株式', 'X😀', '\u00e9t\u00e9', 'e\u0301te\u0301', '€'.repeat(27)]
const CHARS = ['a', 'Z', '7', ' ', ',', '"', '\n', 'ü', '株', '😀', '\\', '{', '}', '\t', "'", '=', '€']

interface Row {
  symbol: string
  us: number
  f?: number | null
  s?: string | null
  b?: boolean | null
  i?: bigint | null
}

type Col = 'f' | 's' | 'b' | 'i'

function randomFloat(r: Rand): number {
  switch (int(r, 5)) {
    case 0:
      return int(r, 2_000_001) - 1_000_000
    case 1:
      return (r() - 0.5) * 10 ** int(r, 20)
    case 2:
      return pick(r, [0.1 + 0.2, 5e-324, Number.MAX_VALUE, -1.5e-300, Math.PI, 1e21])
    default:
      return Math.fround(r() * 1000)
  }
}

function randomString(r: Rand): string {
  let s = 's' // a letter first: in CSV a string that looks like a number or boolean reads back as one
  const n = int(r, 12)
  for (let k = 0; k < n; k++) s += pick(r, CHARS)
  return s
}

function randomBig(r: Rand): bigint {
  const big = 2n ** 53n + BigInt(int(r, 1_000_000))
  return pick(r, [big, -big, 2n ** 63n - 1n, -(2n ** 63n), BigInt(int(r, 1000) - 500)])
}

function randomTime(r: Rand): number {
  const edge = int(r, 6)
  if (edge === 0) return MIN_TIME_US + int(r, 3)
  if (edge === 1) return MAX_TIME_US - 1 - int(r, 3)
  return MIN_TIME_US + Math.floor(r() * (MAX_TIME_US - MIN_TIME_US))
}

/** 1-8 rows with unique keys; each chosen column has at least one non-null value. */
function randomRows(r: Rand): { rows: Row[]; cols: Col[] } {
  const cols = (['f', 's', 'b', 'i'] as Col[]).filter(() => r() < 0.7)
  const n = 1 + int(r, 8)
  const rows: Row[] = []
  const keys = new Set<string>()
  while (rows.length < n) {
    const row: Row = { symbol: pick(r, SYMBOLS), us: randomTime(r) }
    const key = `${row.symbol}\u0000${row.us}`
    if (keys.has(key)) continue
    keys.add(key)
    const nul = () => r() < 0.2
    if (cols.includes('f')) row.f = nul() ? null : randomFloat(r)
    if (cols.includes('s')) row.s = nul() ? null : randomString(r)
    if (cols.includes('b')) row.b = nul() ? null : r() < 0.5
    if (cols.includes('i')) row.i = nul() ? null : randomBig(r)
    rows.push(row)
  }
  // at least one non-null per column (an all-null column is not created), and one big integer
  // in `i` so every format makes it int64
  if (cols.includes('f')) rows[0].f ??= 1.5
  if (cols.includes('s')) rows[0].s ??= 'sx'
  if (cols.includes('b')) rows[0].b ??= true
  if (cols.includes('i')) rows[0].i = 2n ** 60n + BigInt(int(r, 1000))
  return { rows, cols }
}

// ---- encoders -------------------------------------------------------------------------------

/**
 * A number's text: an integer-valued float beyond 2^53 in exponent form, since an integer literal
 * that large is read as an exact int64 (documented), not as a float.
 */
function numberText(v: number): string {
  return Number.isInteger(v) && Math.abs(v) >= 2 ** 53 ? v.toExponential() : String(v)
}

/** JSON text of a row; bigints as bare integer literals (the parser keeps them exact). */
function jsonRow(row: Row, cols: Col[], override: Record<string, string> = {}): string {
  const parts = [`"symbol":${JSON.stringify(row.symbol)}`, `"timestamp":${JSON.stringify(formatUs(row.us))}`]
  for (const c of cols) {
    const v = row[c]
    parts.push(
      `${JSON.stringify(c)}:${v === null || v === undefined ? 'null' : typeof v === 'bigint' ? v.toString() : typeof v === 'number' ? numberText(v) : JSON.stringify(v)}`,
    )
  }
  for (const [k, v] of Object.entries(override)) parts.push(`${JSON.stringify(k)}:${v}`)
  return `{${parts.join(',')}}`
}

function csvField(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

function csvValue(v: unknown): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'string') return csvField(v)
  if (typeof v === 'number') return numberText(v)
  return String(v)
}

type Format = 'json' | 'ndjson' | 'csv'
const CONTENT_TYPE: Record<Format, string> = { json: 'application/json', ndjson: 'application/x-ndjson', csv: 'text/csv' }

/** The body; `extra` adds a column `[name, JSON text]` to every row (CSV: the text as the cell). */
function encode(format: Format, rows: Row[], cols: Col[], extra?: [string, string]): string {
  const more = extra ? { [extra[0]]: extra[1] } : {}
  if (format === 'json') return `[${rows.map((row) => jsonRow(row, cols, more)).join(',\n')}]`
  if (format === 'ndjson') return `${rows.map((row) => jsonRow(row, cols, more)).join('\n')}\n`
  const tail = extra ? [extra[0]] : []
  const lines = [['symbol', 'timestamp', ...cols, ...tail].join(',')]
  for (const row of rows) {
    const cells = [csvField(row.symbol), formatUs(row.us), ...cols.map((c) => csvValue(row[c]))]
    lines.push([...cells, ...(extra ? [extra[1]] : [])].join(','))
  }
  return `${lines.join('\n')}\n`
}

// ---- invalid bodies: each mutation makes exactly one row or the body bad ----------------------

interface Mutation {
  name: string
  formats: readonly Format[]
  /** The body text (or bytes) with one fault; `bad` is the row index the fault is in. */
  make: (format: Format, rows: Row[], cols: Col[], bad: number, r: Rand) => string | Uint8Array<ArrayBuffer>
}

function withRow(format: Format, rows: Row[], cols: Col[], bad: number, row: Row): string {
  const copy = rows.slice()
  copy[bad] = row
  return encode(format, copy, cols)
}

const ALL: readonly Format[] = ['json', 'ndjson', 'csv']
const MUTATIONS: Mutation[] = [
  {
    name: 'time one µs before the range',
    formats: ALL,
    make: (f, rows, cols, bad) => withRow(f, rows, cols, bad, { ...rows[bad], us: MIN_TIME_US - 1 }),
  },
  {
    name: 'time at the end of the range',
    formats: ALL,
    make: (f, rows, cols, bad) => withRow(f, rows, cols, bad, { ...rows[bad], us: MAX_TIME_US }),
  },
  {
    name: 'time 9999-12-31T23:59:59.999999Z',
    formats: ALL,
    make: (f, rows, cols, bad) => {
      const good = formatUs(rows[bad].us)
      const text = withRow(f, rows, cols, bad, rows[bad])
      // the row's own time text, replaced in its line / element only
      const lines = text.split('\n')
      const at = f === 'csv' ? lines.findIndex((l, k) => k > 0 && l.includes(good)) : lines.findIndex((l) => l.includes(good))
      lines[at] = lines[at].replace(good, '9999-12-31T23:59:59.999999Z')
      return lines.join('\n')
    },
  },
  {
    name: 'symbol whose path segment passes 255 bytes',
    formats: ALL,
    make: (f, rows, cols, bad) => withRow(f, rows, cols, bad, { ...rows[bad], symbol: '€'.repeat(40) }),
  },
  {
    name: 'symbol with a lone surrogate',
    formats: ['json', 'ndjson'],
    make: (f, rows, cols, bad) =>
      withRow(f, rows, cols, bad, { ...rows[bad], symbol: 'PLACEHOLDER' }).replace('"PLACEHOLDER"', '"X\\ud800"'),
  },
  {
    name: 'string value with a lone surrogate',
    formats: ['json', 'ndjson'],
    make: (f, rows, cols, bad) => {
      const copy = rows.slice()
      const lines = copy.map((row, k) => (k === bad ? jsonRow(row, cols, { note: '"a\\udc00"' }) : jsonRow(row, cols)))
      return f === 'json' ? `[${lines.join(',\n')}]` : `${lines.join('\n')}\n`
    },
  },
  {
    name: 'missing symbol',
    formats: ['json', 'ndjson'],
    make: (f, rows, cols, bad) => {
      const lines = rows.map((row, k) =>
        k === bad ? jsonRow(row, cols).replace(`"symbol":${JSON.stringify(row.symbol)},`, '') : jsonRow(row, cols),
      )
      return f === 'json' ? `[${lines.join(',\n')}]` : `${lines.join('\n')}\n`
    },
  },
  {
    name: 'an unparseable time',
    formats: ALL,
    make: (f, rows, cols, bad) => {
      const good = formatUs(rows[bad].us)
      const lines = encode(f, rows, cols).split('\n')
      const at = lines.findIndex((l, k) => (f !== 'csv' || k > 0) && l.includes(good))
      lines[at] = lines[at].replace(good, '2024-02-30T00:00:00Z')
      return lines.join('\n')
    },
  },
  {
    name: 'a bad column name',
    formats: ALL,
    make: (f, rows, cols) => encode(f, rows, cols, ['bad-name', '1']),
  },
  {
    name: 'invalid UTF-8',
    formats: ALL,
    make: (f, rows, cols) => {
      const bytes = new TextEncoder().encode(encode(f, rows, cols))
      const out = new Uint8Array(bytes.length + 1)
      const at = bytes.indexOf(0x2c) // before the first comma
      out.set(bytes.subarray(0, at), 0)
      out[at] = 0xff
      out.set(bytes.subarray(at), at + 1)
      return out
    },
  },
  {
    name: 'truncated body',
    formats: ['json'],
    make: (f, rows, cols) => {
      const text = encode(f, rows, cols)
      return text.slice(0, text.length - 2)
    },
  },
  {
    name: 'a CSV row with one cell too many',
    formats: ['csv'],
    make: (f, rows, cols) => {
      const lines = encode(f, rows, cols).split('\n')
      // rows may span lines (quoted newlines): the last line of the body ends the last row
      lines[lines.length - 2] += ',extra'
      return lines.join('\n')
    },
  },
  {
    name: 'a number where the column has strings',
    formats: ['json', 'ndjson'],
    make: (f, rows, cols) => {
      const lines = rows.map((row) => jsonRow(row, cols, { mix: '"text"' }))
      lines.push(jsonRow({ symbol: 'MIXED', us: rows[0].us }, cols, { mix: '1.5' }))
      return f === 'json' ? `[${lines.join(',\n')}]` : `${lines.join('\n')}\n`
    },
  },
]

// ---- reading back ---------------------------------------------------------------------------

/** The rows as the read route returns them, in key order, as comparable plain values. */
function expected(rows: Row[], cols: Col[]): unknown[] {
  const sorted = rows.slice().sort((a, b) => (a.symbol !== b.symbol ? (a.symbol < b.symbol ? -1 : 1) : a.us - b.us))
  return sorted.map((row) => {
    const out: Record<string, unknown> = { symbol: row.symbol, us: row.us }
    for (const c of cols) {
      const v = row[c]
      out[c] = v === undefined || v === null ? null : typeof v === 'bigint' ? v.toString() : v
    }
    return out
  })
}

function normalizeRead(body: Record<string, unknown>[], cols: Col[]): unknown[] {
  return body.map((row) => {
    const out: Record<string, unknown> = { symbol: row.symbol, us: parseTimeUs(row.timestamp) }
    for (const c of cols) {
      const v = row[c]
      out[c] = c === 'i' && v !== null ? BigInt(v as string | number).toString() : v
    }
    return out
  })
}

let lake: TestLake
let storage: DataStorage
let app: Hono

beforeAll(async () => {
  lake = await localLake()
  storage = lake.storage
  app = testApp(storage)
})
afterAll(async () => {
  await lake?.cleanup()
})

async function post(ds: string, format: Format, body: string | Uint8Array<ArrayBuffer>): Promise<Response> {
  return app.request(`/v1/datasets/${ds}/rows`, { method: 'POST', body, headers: { 'content-type': CONTENT_TYPE[format] } })
}

async function readRows(ds: string): Promise<Record<string, unknown>[]> {
  const res = await app.request(`/v1/datasets/${ds}/rows?format=json`)
  expect(res.status).toBe(200)
  return json(res)
}

describe(`rows route property (seed ${SEED}, ${RUNS} runs per format)`, () => {
  for (const format of ['json', 'ndjson', 'csv'] as const) {
    it(`${format}: valid bodies are stored exactly; invalid ones get a 4xx and store nothing`, async () => {
      const r = prng(SEED ^ (format.length * 7919))
      for (let run = 0; run < RUNS; run++) {
        const where = `seed ${SEED}, ${format} run ${run}`
        const ds = `prop_${format}_${run}_${int(r, 1e9).toString(36)}`
        const { rows, cols } = randomRows(r)
        const mutations = MUTATIONS.filter((m) => m.formats.includes(format))

        // an invalid body against a dataset that does not exist: still absent afterwards
        const m1 = pick(r, mutations)
        const bad1 = await post(ds, format, m1.make(format, rows, cols, int(r, rows.length), r))
        expect(bad1.status, `${where}: ${m1.name} (new dataset)`).toBeGreaterThanOrEqual(400)
        expect(bad1.status, `${where}: ${m1.name} (new dataset)`).toBeLessThan(500)
        expect(await storage.describe(ds), `${where}: ${m1.name} created the dataset`).toBeNull()

        // a valid body is stored exactly
        const ok = await post(ds, format, encode(format, rows, cols))
        expect(ok.status, `${where}: valid body answered ${await ok.clone().text()}`).toBe(200)
        const want = expected(rows, cols)
        expect(normalizeRead(await readRows(ds), cols), `${where}: read back`).toEqual(want)

        // an invalid body against the existing dataset: its rows and schema are unchanged
        const schemaBefore = (await storage.describe(ds))?.schema
        const m2 = pick(r, mutations)
        const { rows: more } = randomRows(r)
        const moreCols = cols // the same columns, so only the fault can refuse it
        for (const row of more) for (const c of ['f', 's', 'b', 'i'] as Col[]) if (!cols.includes(c)) delete row[c]
        const bad2 = await post(ds, format, m2.make(format, more, moreCols, int(r, more.length), r))
        expect(bad2.status, `${where}: ${m2.name} (existing dataset)`).toBeGreaterThanOrEqual(400)
        expect(bad2.status, `${where}: ${m2.name} (existing dataset)`).toBeLessThan(500)
        expect(normalizeRead(await readRows(ds), cols), `${where}: ${m2.name} changed the rows`).toEqual(want)
        expect((await storage.describe(ds))?.schema, `${where}: ${m2.name} changed the schema`).toEqual(schemaBefore)
      }
    }, 120_000)
  }

  it('columnar JSON (the library form of the same data) is stored exactly; a bad column stores nothing', async () => {
    const r = prng(SEED ^ 0x5eed)
    for (let run = 0; run < RUNS; run++) {
      const ds = `prop_cols_${run}_${int(r, 1e9).toString(36)}`
      const { rows, cols } = randomRows(r)
      const columns: Record<string, unknown[]> = {
        symbol: rows.map((x) => x.symbol),
        timestamp: rows.map((x) => formatUs(x.us)),
      }
      for (const c of cols) columns[c] = rows.map((x) => x[c] ?? null)
      const bad = { ...columns, timestamp: columns.timestamp.map((t, k) => (k === rows.length - 1 ? formatUs(MAX_TIME_US) : t)) }
      await expect(storage.write(ds, bad)).rejects.toMatchObject({ status: 400 })
      expect(await storage.describe(ds)).toBeNull()
      await storage.write(ds, columns)
      expect(normalizeRead(await readRows(ds), cols), `seed ${SEED}, columnar run ${run}`).toEqual(expected(rows, cols))
    }
  }, 120_000)
})
