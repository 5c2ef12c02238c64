/**
 * The typed-column body parsers (src/formats: NDJSON, CSV, CSV numbers, ISO time columns)
 * against reference readings of the same bodies: NDJSON line by line through `parseJson` with
 * row objects, CSV through `Papa.parse` of the whole text with `csvCell`, numbers through the
 * pattern and `Number`, times through `parseIsoUs`. Tricky inputs and every chunking must give
 * the same values; the column types (Float64Array, EpochMicros) are checked on their own.
 */

import Papa from 'papaparse'
import { describe, expect, it } from 'vitest'
import { ValidationError } from '../src/core/errors.js'
import { formatUs, parseIsoUs } from '../src/core/time.js'
import type { InputColumns } from '../src/core/types.js'
import { readCsvNumber } from '../src/formats/csv-number.js'
import { csvCell } from '../src/formats/csv-rows.js'
import { parseBody } from '../src/formats/index.js'
import { parseJson } from '../src/formats/json-text.js'
import { epochMicros } from '../src/formats/time-column.js'
import { EpochMicros, normalizeInput } from '../src/table/normalize.js'

const utf8 = new TextEncoder()
const LIMIT = { maxBytes: 1 << 24 }
const CHUNK_SIZES = [undefined, 1, 2, 3, 7, 64]

function chunked(text: string, size?: number): ReadableStream<Uint8Array> {
  const bytes = utf8.encode(text)
  const step = size ?? bytes.length + 1
  let off = 0
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (off >= bytes.length) return controller.close()
      controller.enqueue(bytes.slice(off, off + step))
      off += step
    },
  })
}

type Plain = Record<string, unknown[]>

/** What parseBody gives, or the ValidationError it throws. */
async function parsed(text: string, format: 'ndjson' | 'csv', size?: number): Promise<InputColumns | ValidationError> {
  try {
    return (await parseBody(chunked(text, size), format, LIMIT)) as InputColumns
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError)
    return error as ValidationError
  }
}

/**
 * Our columns next to the reference's: equal as plain arrays, except that a column we give as
 * EpochMicros must be all times in the reference (ISO strings, or epoch-ms numbers), each
 * reading (parseIsoUs, ms × 1000) as our value; in a time column that is not all times, our
 * numbers are the reference's epoch-ms numbers written as ISO times.
 */
function expectSameColumns(ours: InputColumns, reference: Plain): void {
  expect(Object.keys(ours)).toEqual(Object.keys(reference))
  for (const [name, values] of Object.entries(ours)) {
    const want = reference[name]
    if (values instanceof EpochMicros) {
      expect(
        want.map((v) => (typeof v === 'string' ? parseIsoUs(v) : typeof v === 'number' ? v * 1000 : 'not a time')),
        name,
      ).toEqual(Array.from(values))
    } else if (['timestamp', 'datetime', 'date'].includes(name)) {
      expect(Array.from(values), name).toEqual(want.map((v) => (typeof v === 'number' ? formatUs(v * 1000) : v)))
    } else expect(Array.from(values), name).toEqual(want)
  }
}

/** NDJSON the way the storage always read it: each non-blank line through parseJson, rows to columns. */
function ndjsonReference(text: string): Plain | 'error' {
  const columns = new Map<string, unknown[]>()
  let n = 0
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line.trim() === '') continue
    let row: ReturnType<typeof parseJson>
    try {
      row = parseJson(line)
    } catch {
      return 'error'
    }
    const value = row.value
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'error'
    for (const key in value) {
      let values = columns.get(key)
      if (!values) {
        values = new Array(n).fill(null)
        columns.set(key, values)
      }
      while (values.length < n) values.push(null)
      values.push(row.revive((value as Record<string, unknown>)[key]))
    }
    n++
  }
  for (const values of columns.values()) while (values.length < n) values.push(null)
  return Object.fromEntries(columns)
}

/** CSV through Papa.parse of the whole text (newline as parseCsvBody detects it), cells through csvCell. */
function csvReference(text: string): Plain | 'error' {
  const body = text.replace(/^\uFEFF/, '')
  const at = body.indexOf('\n')
  const newline = at >= 0 ? (at > 0 && body[at - 1] === '\r' ? '\r\n' : '\n') : body.includes('\r') ? '\r' : '\n'
  const { data, errors } = Papa.parse<string[]>(body, { delimiter: ',', newline, quoteChar: '"' })
  if (errors.length) return 'error'
  const rows = data.filter((cells) => !(cells.length === 1 && cells[0] === ''))
  if (rows.length === 0) return {}
  const header = rows[0].map((c) => c.trim())
  if (header.some((h, i) => h === '' || header.indexOf(h) !== i)) return 'error'
  const kind = (h: string) => (h === 'symbol' ? 'symbol' : ['timestamp', 'datetime', 'date'].includes(h) ? 'time' : 'data')
  const columns: Plain = Object.fromEntries(header.map((h) => [h, []]))
  for (const cells of rows.slice(1)) {
    if (cells.length !== header.length) return 'error'
    for (let c = 0; c < cells.length; c++) columns[header[c]].push(csvCell(cells[c], kind(header[c])))
  }
  return columns
}

async function expectLikeReference(text: string, format: 'ndjson' | 'csv'): Promise<void> {
  const reference = format === 'csv' ? csvReference(text) : ndjsonReference(text)
  for (const size of CHUNK_SIZES) {
    const ours = await parsed(text, format, size)
    if (reference === 'error') expect(ours, `${JSON.stringify(text)} in chunks of ${size}`).toBeInstanceOf(ValidationError)
    else {
      expect(ours, `${JSON.stringify(text)} in chunks of ${size}`).not.toBeInstanceOf(ValidationError)
      expectSameColumns(ours as InputColumns, reference)
    }
  }
}

/** A seeded random generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('readCsvNumber', () => {
  const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
  const INTEGER_RE = /^[+-]?\d+$/
  /** The contract: undefined off the pattern; NaN for non-finite or a long integer; else Number(cell). */
  const reference = (cell: string): number | undefined => {
    if (!NUMBER_RE.test(cell)) return undefined
    const n = Number(cell)
    if (!Number.isFinite(n)) return Number.NaN
    if (INTEGER_RE.test(cell) && cell.replace(/^[+-]?0*/, '').length > 15) return Number.NaN
    return n
  }
  const check = (cell: string) => {
    const got = readCsvNumber(`,${cell},`, 1, cell.length + 1) // a span inside a longer text
    expect(Object.is(got, reference(cell)) || (Number.isNaN(got) && Number.isNaN(reference(cell))), cell).toBe(true)
    expect(Object.is(readCsvNumber(cell, 0, cell.length), got), cell).toBe(true)
  }

  it('reads the pattern exactly as Number does, and nothing else', () => {
    const cells = [
      '0',
      '-0',
      '+0',
      '7',
      '007',
      '-42',
      '+42',
      '1.',
      '.5',
      '+.5',
      '-.5',
      '5.25',
      '1e3',
      '1E3',
      '1e+3',
      '1e-3',
      '-1.5E-3',
      '0.000001',
      '123456789012345',
      '1234567890123456',
      '9007199254740991',
      '9007199254740993',
      '-12345678901234567890',
      '00000000000000000001',
      '12345678901234567890.5',
      '100.04207354924039',
      '99.99880808248612',
      '0.1',
      '0.3',
      '2.2250738585072014e-308',
      '4.9e-324',
      '1.7976931348623157e308',
      '1e308',
      '1e309',
      '1e400',
      '-1e400',
      '1e-400',
      '0e999999',
      '1e22',
      '1e23',
      '123456789012345e22',
      '1.5e-22',
      '1.5e-23',
      '',
      '.',
      '-',
      '+',
      '1e',
      '1e+',
      'e5',
      '.e5',
      '1.2.3',
      '1..2',
      '0x10',
      '1_000',
      ' 1',
      '1 ',
      '١',
      'Infinity',
      '-Infinity',
      'NaN',
      'true',
      '12a',
      '--1',
      '+-1',
      '1e5.5',
      '1,5',
    ]
    for (const cell of cells) if (cell !== '') check(cell)
  })

  it('agrees with the pattern and Number on 100k random cells', () => {
    const next = random(20240102)
    const pick = (s: string) => s[Math.floor(next() * s.length)]
    const digits = (max: number) => Array.from({ length: Math.floor(next() * max) }, () => pick('0123456789')).join('')
    for (let i = 0; i < 100_000; i++) {
      let cell: string
      const shape = next()
      if (shape < 0.3)
        cell = String((next() - 0.5) * 10 ** Math.floor(next() * 40 - 20)) // doubles as JS prints them
      else if (shape < 0.5) cell = ((next() - 0.5) * 1e6).toFixed(Math.floor(next() * 12))
      else if (shape < 0.6) cell = (next() * 1e3).toExponential(Math.floor(next() * 20))
      else if (shape < 0.9) {
        cell = (next() < 0.3 ? pick('+-') : '') + digits(20) + (next() < 0.6 ? `.${digits(20)}` : '')
        if (next() < 0.3) cell += `${pick('eE')}${next() < 0.5 ? pick('+-') : ''}${digits(4)}`
      } else cell = Array.from({ length: 1 + Math.floor(next() * 8) }, () => pick('0123456789.eE+- x')).join('')
      if (cell !== '') check(cell)
    }
  })
})

describe('readCsvNumber near ties', () => {
  const f64 = new Float64Array(1)
  const u64 = new BigUint64Array(f64.buffer)
  /** The exact decimal digits of the midpoint between x > 0 and the next double, and how many are after the point. */
  const midpoint = (x: number): { digits: string; point: number } | null => {
    f64[0] = x
    const e = Number((u64[0] >> 52n) & 0x7ffn) - 1075
    const mid = 2n * ((u64[0] & ((1n << 52n) - 1n)) | (1n << 52n)) + 1n // midpoint = mid · 2^(e − 1)
    if (e > 1) return null
    return { digits: (mid * 5n ** BigInt(1 - e)).toString(), point: 1 - e }
  }

  it('reads decimals within a hair of a midpoint (16 to 19 digits) as Number does', () => {
    const next = random(31337)
    let checked = 0
    for (let i = 0; i < 20_000; i++) {
      const x = (1 + next()) * 2 ** Math.floor(next() * 70 - 25)
      const m = midpoint(x)
      if (!m) continue
      const intLen = m.digits.length - m.point
      for (const keep of [16, 17, 18, 19]) {
        if (intLen > keep || intLen < -5) continue
        for (const delta of [-1n, 0n, 1n]) {
          const cut = (BigInt(m.digits.slice(0, keep)) + delta).toString()
          if (cut.length !== keep) continue
          const cell = intLen > 0 ? `${cut.slice(0, intLen)}.${cut.slice(intLen)}` : `0.${'0'.repeat(-intLen)}${cut}`
          for (const signed of [cell, `-${cell}`]) {
            expect(readCsvNumber(signed, 0, signed.length), signed).toBe(Number(signed))
            checked++
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100_000)
  })

  it('reads exact ties and powers of two as Number does', () => {
    // 2^-1 + 2^-54 is the midpoint between 0.5 and the next double: a tie, rounded to even
    const cells = [
      '0.50000000000000005551115123125783',
      '1.0000000000000001110',
      '4503599627370496.5',
      '9007199254740993.0',
      '1024.000000000000000',
      '0.1250000000000000000',
      '1.000000000000000111',
      '2.000000000000000222',
      '1152921504606846976.0',
    ]
    for (const cell of cells) expect(readCsvNumber(cell, 0, cell.length), cell).toBe(Number(cell))
  })
})

describe('epochMicros', () => {
  const check = (values: unknown[]) => {
    const got = epochMicros(values)
    const want = values.map((v) => (typeof v === 'string' ? parseIsoUs(v) : null))
    if (values.length > 0 && want.every((us) => us !== null)) {
      expect(got, JSON.stringify(values)).toBeInstanceOf(EpochMicros)
      expect(Array.from(got as EpochMicros), JSON.stringify(values)).toEqual(want)
    } else expect(got, JSON.stringify(values)).toBeNull()
  }

  it('gives exactly what parseIsoUs gives, for canonical and other forms', () => {
    const times = [
      '2024-01-02T14:30:00Z',
      '2024-01-02T14:30:00.1Z',
      '2024-01-02T14:30:00.123456Z',
      '2024-01-02T14:30:00.123456789Z',
      '2024-01-02T14:30:00.000Z',
      '2024-02-29T23:59:59.999999Z',
      '2000-02-29T00:00:00Z',
      '1969-12-31T23:59:59.5Z',
      '1970-01-01T00:00:00Z',
      '0100-01-01T00:00:00Z',
      '0099-12-31T00:00:00Z',
      '9999-12-31T23:59:59.999999Z',
      '2024-01-02',
      '2024-01-02T14:30',
      '2024-01-02 14:30:00',
      '2024-01-02T14:30:00+02:00',
      '2024-01-02T14:30:00-0530',
      '2024-01-02T14:30:00z',
      '2024-01-02T14:30:00,5Z',
      ' 2024-01-02T14:30:00Z',
      '2024-01-02T14:30:00Z ',
    ]
    for (const t of times) check([t])
    check(times)
  })

  it('keeps the raw values when any is not a time', () => {
    const bad = [
      '2023-02-29T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2024-13-01T00:00:00Z',
      '2024-00-10T00:00:00Z',
      '2024-01-32T00:00:00Z',
      '2024-01-02T24:00:00Z',
      '2024-01-02T14:60:00Z',
      '2024-01-02T14:30:60Z',
      '2024-01-02T14:30:00.Z',
      '2024-1-02T14:30:00Z',
      'x024-01-02T14:30:00Z',
      'yesterday',
      '',
    ]
    for (const t of bad) {
      check([t])
      check(['2024-01-02T14:30:00Z', t])
    }
    check(['2024-01-02T14:30:00Z', 1704206460000])
    check(['2024-01-02T14:30:00Z', null])
    check([])
  })

  it('does not carry a calendar day over to another date that would share a naive key', () => {
    // 2024-02-01 first; then the invalid 2024-01-33 (2024·512 + 1·32 + 33 = 2024·512 + 2·32 + 1)
    check(['2024-02-01T00:00:00Z', '2024-01-33T00:00:00Z'])
    check(['2024-02-01T00:00:00Z', '2024-02-01T00:00:01Z', '2024-02-02T00:00:00Z', '2025-02-02T00:00:00Z'])
  })

  it('agrees with parseIsoUs on 20k random times', () => {
    const next = random(7)
    const pad = (v: number, n: number) => String(v).padStart(n, '0')
    const values: string[] = []
    for (let i = 0; i < 20_000; i++) {
      const fraction = next() < 0.5 ? '' : `.${pad(Math.floor(next() * 1e9), 9).slice(0, 1 + Math.floor(next() * 9))}`
      values.push(
        `${pad(1 + Math.floor(next() * 9999), 4)}-${pad(1 + Math.floor(next() * 12), 2)}-${pad(1 + Math.floor(next() * 31), 2)}` +
          `T${pad(Math.floor(next() * 24), 2)}:${pad(Math.floor(next() * 60), 2)}:${pad(Math.floor(next() * 60), 2)}${fraction}Z`,
      )
    }
    for (const v of values) check([v])
    check(values.filter((v) => parseIsoUs(v) !== null))
  })
})

describe('parseBody: ndjson like parseJson line by line', () => {
  const LINES = [
    '{"symbol":"A\\"B","s":"\\u00e9\\n\\t\\\\ \\/","t":"\\ud83d\\ude80","u":"日本 🚀 Zürich"}',
    '{"symbol":"A","n":-0,"m":1e5,"k":-1.5E-3,"f":100.04207354924039,"inf":1e400,"tiny":1e-400}',
    '{"symbol":"A","big":12345678901234567890,"edge":9007199254740992,"safe":-9007199254740991,"neg":-12345678901234567890}',
    '  { "symbol" : "A" ,\t"x" : true , "y":false,"z":null }  \r',
    '{"symbol":"A","nested":[1,2],"obj":{"a":1}}',
    '{"symbol":"A","a":1,"a":2}',
    '{"1":1,"b":2,"0":3,"symbol":"A"}',
    '{"__proto__":1,"symbol":"A"}',
    '{}',
    '',
    '   ',
    '{"symbol":"B","x":"text","n":"1"}',
    '{"symbol":"C"}',
    '{"symbol":"D","late":1.5,"x":2}',
    '{"symbol":"E","big":9007199254740993,"later":1}',
    '{"symbol":"F","timestamp":"2024-01-02T14:30:00Z","n":1}',
  ]

  it('reads each tricky line as the reference does', async () => {
    for (const line of LINES) await expectLikeReference(`${line}\n`, 'ndjson')
  })

  it('reads all of them together, with LF, CRLF and no final newline', async () => {
    await expectLikeReference(LINES.join('\n'), 'ndjson')
    await expectLikeReference(`${LINES.join('\r\n')}\r\n`, 'ndjson')
    await expectLikeReference(`${[...LINES].reverse().join('\n')}\n`, 'ndjson')
  })

  it('rejects what JSON.parse rejects, and non-objects', async () => {
    for (const line of [
      '{"a":}',
      '{"a":NaN}',
      '{"a":01}',
      '{"a":1.}',
      "{'a':1}",
      '{"a":"\u0001"}',
      '[1,2]',
      '3',
      '"x"',
      'null',
      '{"a":1}}',
    ]) {
      await expectLikeReference(`{"symbol":"A"}\n${line}\n`, 'ndjson')
    }
  })

  it('agrees with the reference on random rows', async () => {
    const next = random(99)
    const pick = <T>(a: T[]) => a[Math.floor(next() * a.length)]
    const values = [
      '1',
      '-2.5',
      '1e3',
      '100.04207354924039',
      '12345678901234567890',
      'true',
      'false',
      'null',
      '"x"',
      '"a\\"b"',
      '"日本"',
      '"2024-01-02T14:30:00Z"',
      '[1]',
    ]
    const keys = ['symbol', 'timestamp', 'open', 'close', 'volume', 'note']
    const lines: string[] = []
    for (let i = 0; i < 400; i++) {
      // times: strings only (a number with no time_unit must be plausible epoch ms: test/time-unit.test.ts)
      const times = ['"2024-01-02T14:30:00Z"', 'null', '"x"', '1704206460000']
      const row = keys.filter(() => next() < 0.8).map((k) => `"${k}":${k === 'timestamp' ? pick(times) : pick(values)}`)
      lines.push(next() < 0.05 ? '' : `{${row.join(',')}}`)
    }
    await expectLikeReference(lines.join('\n'), 'ndjson')
  })

  it('gives Float64Array for numbers-only columns, EpochMicros for ISO times, arrays otherwise', async () => {
    const text =
      '{"symbol":"A","timestamp":"2024-01-02T14:30:00Z","close":1.5,"volume":100,"note":"x","maybe":1}\n' +
      '{"symbol":"A","timestamp":"2024-01-02T14:31:00.5Z","close":-0,"volume":200,"note":"y","maybe":null}\n'
    const cols = (await parsed(text, 'ndjson')) as InputColumns
    expect(cols.close).toBeInstanceOf(Float64Array)
    expect(Object.is(cols.close[1], -0)).toBe(true)
    expect(Array.from(cols.volume)).toEqual([100, 200])
    expect(cols.timestamp).toBeInstanceOf(EpochMicros)
    expect(Array.from(cols.timestamp)).toEqual([
      Date.UTC(2024, 0, 2, 14, 30) * 1000,
      Date.UTC(2024, 0, 2, 14, 31) * 1000 + 500_000,
    ])
    expect(cols.symbol).toEqual(['A', 'A'])
    expect(cols.maybe).toEqual([1, null])
    const mixed = (await parsed('{"timestamp":"2024-01-02T14:30:00Z"}\n{"timestamp":1704206460000}\n', 'ndjson')) as InputColumns
    // an epoch-ms number in a time column is read (exactly) to µs here, like an ISO string
    expect(Array.from(mixed.timestamp)).toEqual([1704205800000000, 1704206460000000])
  })
})

describe('parseBody: csv like Papa.parse and csvCell', () => {
  const TEXTS = [
    'symbol,timestamp,close\nA,2024-01-02T14:30:00Z,1.5\nB,2024-01-02T14:31:00.123456Z,-2e3\n',
    'symbol,note,x\r\nA,"a, ""b""\r\nc",1\r\n"B","",2\r\nC,"line1\nline2",3\r\n',
    '\uFEFFsymbol,v\r\nA,1\r\n\r\nB,2',
    'symbol,v\nA,1\r\nB,2\n',
    'symbol,v\r\nA,x\ny\r\nB,2\r\n',
    'symbol,v\rA,1\rB,2\r',
    'symbol,v\n A ,1\nB, 2\n',
    'symbol,a,b,c,d,e\nA,true,false,TRUE,,"true"\n',
    'symbol,n\nA,1e400\nB,9007199254740993\nC,12345678901234567890.5\nD,-0\nE,+.5\nF,5.\nG,007\nH,1e-400\nI,0x10\nJ,1_000\nK,Infinity\nL,NaN\nM,.\nN,-\nO,1e\nP,1e+\n',
    'symbol,timestamp\nA,1704206460000\nB,1704206460000.5\n',
    'symbol,timestamp\nA,2024-01-02\nB,2024-01-02T14:30:00+02:00\n',
    'symbol,timestamp\nA,2024-02-30T00:00:00Z\n',
    'symbol,date,datetime\nA,2024-01-02,\nB,,2024-01-02T00:00:00Z\n',
    'symbol,v\nA,1\nB,2,3\n',
    'symbol,v\nA\n',
    'symbol,v\nA,"unterminated\n',
    'symbol,v\nA,"x"y\n',
    'symbol,v\nA,x"y\n',
    'symbol,v\n\n\nA,1\n\n',
    'symbol,v',
    'symbol,v\n',
    '',
    '\n\n',
    'symbol\n""\nA\n',
    '"sym""bol",v\nA,1\n',
    ' symbol , v \nA,1\n',
    'symbol,,v\nA,1,2\n',
    'symbol,v,v\nA,1,2\n',
    'symbol,v\nSYM,1\nSYM,2\nSYMB,3\nSY,4\n',
    'symbol,n\n日本,"Zürich, 🚀"\n',
  ]

  it('reads each tricky text as the reference does, in any chunking', async () => {
    for (const text of TEXTS) await expectLikeReference(text, 'csv')
  })

  it('agrees with the reference on random rows, quoted and not', async () => {
    const next = random(4242)
    const pick = <T>(a: T[]) => a[Math.floor(next() * a.length)]
    const cells = [
      '1',
      '-2.5',
      '1e3',
      '100.04207354924039',
      '12345678901234567890',
      'true',
      'FALSE',
      '',
      'x',
      'a b',
      '日本',
      '2024-01-02T14:30:00Z',
      '.5',
      '+7',
    ]
    const quoted = ['"a, b"', '"say ""hi"""', '"two\nlines"', '""', '"1.5"', '"x"']
    for (const newline of ['\n', '\r\n']) {
      const lines = ['symbol,timestamp,a,b,c']
      for (let i = 0; i < 300; i++) {
        const row = [pick(['A', 'B', 'AAPL']), pick(['2024-01-02T14:30:00Z', '2024-01-02T14:31:00.5Z', '1704206460000'])]
        for (let c = 0; c < 3; c++) row.push(next() < 0.1 ? pick(quoted) : pick(cells))
        lines.push(next() < 0.03 ? '' : row.join(','))
      }
      await expectLikeReference(lines.join(newline), 'csv') // some rows quoted: papaparse reads those chunks
      await expectLikeReference(lines.filter((l) => !l.includes('"')).join(newline) + newline, 'csv') // none: split here
    }
  })

  it('names row and line of a bad row in text it splits itself, as papaparse did', async () => {
    for (const size of CHUNK_SIZES) {
      const e = (await parsed('symbol,v\r\nA,1\r\n\r\nB,2\r\nC,3,4\r\n', 'csv', size)) as ValidationError
      expect(e.issues[0]).toMatchObject({ row: 2, line: 5, field: 'row' })
      expect(e.issues[0].message).toContain('expected 2 cells like the header, got 3')
      const short = (await parsed('symbol,a,b\nA,1,2\nB,1\n', 'csv', size)) as ValidationError
      expect(short.issues[0]).toMatchObject({ row: 1, line: 3, field: 'row' })
      const lone = (await parsed('symbol,v\r\nA,x\ny\r\nB,2,3\r\n', 'csv', size)) as ValidationError
      expect(lone.issues[0]).toMatchObject({ row: 1, line: 4, field: 'row' }) // the lone \n counts as a line
    }
  })

  it('gives Float64Array for numbers-only columns, EpochMicros for ISO times, arrays otherwise', async () => {
    const cols = (await parsed(
      'symbol,timestamp,close,volume,note\nA,2024-01-02T14:30:00Z,1.5,100,\nA,2024-01-02T14:31:00Z,-0,200,x\n',
      'csv',
    )) as InputColumns
    expect(cols.close).toBeInstanceOf(Float64Array)
    expect(Object.is(cols.close[1], -0)).toBe(true)
    expect(cols.volume).toBeInstanceOf(Float64Array)
    expect(cols.timestamp).toBeInstanceOf(EpochMicros)
    expect(cols.note).toEqual([null, 'x'])
    const ms = (await parsed('symbol,timestamp\nA,1704206460000\n', 'csv')) as InputColumns
    expect(ms.timestamp).toBeInstanceOf(EpochMicros) // epoch milliseconds (no time_unit), read to µs here
    expect(Array.from(ms.timestamp)).toEqual([1704206460000000])
  })
})

describe('normalizeInput with EpochMicros', () => {
  const iso = ['2024-01-02T14:30:00.123456Z', '2024-01-02T14:31:00Z']

  it('stores the same table as for the ISO strings', () => {
    const strings = { symbol: ['A', 'A'], timestamp: iso, v: Float64Array.from([1, 2]) }
    const micros = { ...strings, timestamp: EpochMicros.from(iso.map((t) => parseIsoUs(t) as number)) }
    expect(normalizeInput(micros, null)).toEqual(normalizeInput(strings, null))
  })

  it('rejects a non-finite value on its row, and an ambiguous time like strings', () => {
    const bad = () => normalizeInput({ symbol: ['A', 'A'], timestamp: EpochMicros.from([0, Number.NaN]) }, null)
    expect(bad).toThrow(ValidationError)
    try {
      bad()
    } catch (e) {
      expect((e as ValidationError).issues[0]).toMatchObject({ row: 1, field: 'timestamp' })
    }
    const both = { symbol: ['A'], timestamp: EpochMicros.from([0]), date: ['2024-01-02'] }
    const bothStrings = { symbol: ['A'], timestamp: ['1970-01-01T00:00:00Z'], date: ['2024-01-02'] }
    const issues = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        return (e as ValidationError).issues
      }
    }
    expect(issues(() => normalizeInput(both, null))).toEqual(issues(() => normalizeInput(bothStrings, null)))
  })

  it('keeps plain numbers in a time column as epoch milliseconds', () => {
    const { table } = normalizeInput({ symbol: ['A'], timestamp: Float64Array.from([1704206460000]) }, null)
    expect(table.columns.timestamp.values[0]).toBe(1704206460000 * 1000)
  })
})
