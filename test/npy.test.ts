/**
 * NumPy `.npy` encoding: every dtype and shape round-trips through a reader written from the
 * format spec (numpy.lib.format; `helpers/npy-reader.ts`), not from the encoder; streamed output
 * equals the one-buffer output; and, when python3 with numpy is installed, numpy itself loads
 * what we write and re-saves it to the same bytes.
 */

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ValidationError } from '../src/core/errors.js'
import {
  encodeNpy,
  NPY_CONTENT_TYPE,
  type NpyDtype,
  type NpyTypedArray,
  nanCellsPerColumn,
  npyByteLength,
  npyDtypeOf,
  npyHeader,
  npyStream,
} from '../src/training/npy.js'
import { json, localLake, testApp } from './helpers/http.js'
import { readNpy } from './helpers/npy-reader.js'

const SPECIALS: Record<NpyDtype, readonly (number | bigint)[]> = {
  '<f4': [Number.NaN, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.4028234663852886e38, 1.401298464324817e-45, -1.5],
  '<f8': [Number.NaN, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_VALUE, Number.MIN_VALUE, -0.1],
  '<i4': [-2147483648, 2147483647, 0, -1],
  '<u4': [4294967295, 0, 2147483648],
  '<i8': [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n],
  '|u1': [255, 0, 128],
  '|b1': [1, 0, 0, 1],
}

const CTORS: Record<NpyDtype, { from(values: Iterable<any>): NpyTypedArray }> = {
  '<f4': Float32Array,
  '<f8': Float64Array,
  '<i4': Int32Array,
  '<u4': Uint32Array,
  '<i8': BigInt64Array,
  '|u1': Uint8Array,
  '|b1': Uint8Array,
}

const DTYPES = Object.keys(SPECIALS) as NpyDtype[]

/** `n` values of `dtype`: its special values first, then a varying pattern. */
function sample(dtype: NpyDtype, n: number): NpyTypedArray {
  const special = SPECIALS[dtype]
  return CTORS[dtype].from(
    Array.from({ length: n }, (_, i) => {
      if (i < special.length) return special[i]
      if (dtype === '|b1') return (i * 7) % 3 === 0 ? 1 : 0
      if (dtype === '<i8') return BigInt(i) * -1_000_000_007n
      if (dtype === '<f4' || dtype === '<f8') return (i - 10) * 0.37
      return (i * 37) % 251
    }),
  )
}

/** Index of the first element that differs under `Object.is` (so NaN, -0 count), or -1. */
function firstDifference(a: ArrayLike<unknown>, b: ArrayLike<unknown>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length)
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i
  return -1
}

function bytesOf(a: NpyTypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
}

function issueField(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError)
    return (e as ValidationError).issues[0].field
  }
  throw new Error('expected a ValidationError')
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

const SHAPES: number[][] = [[0], [7], [3, 4], [2, 3, 5], []]

describe('encodeNpy round-trips through a reference reader', () => {
  for (const dtype of DTYPES) {
    it.each(SHAPES.map((shape) => ({ shape, label: `(${shape.join(', ')})` })))(`${dtype} shape $label`, ({ shape }) => {
      const n = shape.reduce((a, b) => a * b, 1)
      const data = sample(dtype, n)
      const bytes = encodeNpy(data, shape, dtype)
      const file = readNpy(bytes)
      expect(file.version).toEqual([1, 0])
      expect(file.descr).toBe(dtype)
      expect(file.fortranOrder).toBe(false)
      expect(file.shape).toEqual(shape)
      expect(file.data.constructor).toBe(data.constructor)
      expect(firstDifference(file.data, data)).toBe(-1)
      expect(bytes.subarray(file.preamble)).toEqual(bytesOf(data)) // bit-exact, NaN payloads included
      expect(npyByteLength(dtype, shape)).toBe(bytes.length)
    })
  }

  it('writes the header dict as NumPy does, 1-tuples and scalars included', () => {
    expect(readNpy(encodeNpy(new Float32Array(900), [3, 60, 5])).header.trimEnd()).toBe(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 60, 5), }",
    )
    expect(readNpy(encodeNpy(new Int32Array(7))).header.trimEnd()).toBe(
      "{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }",
    )
    expect(readNpy(encodeNpy(new Float64Array(1), [])).header.trimEnd()).toBe(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
    )
  })

  it('matches the preamble np.save writes (NumPy 2.4, captured), byte for byte', () => {
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 60, 5), }"
    const expected = new Uint8Array(128)
    expected.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, 118, 0])
    expected.set(new TextEncoder().encode(dict + ' '.repeat(118 - dict.length - 1) + '\n'), 10)
    expect(npyHeader('<f4', [3, 60, 5])).toEqual(expected)
  })

  it('pads a whole 64 spaces, as NumPy does, when the dict already ends on the boundary', () => {
    // 36 dims of 1: magic+version+length (10) + dict (73 + 3 * 36) + '\n' = 192, a multiple of 64.
    const file = readNpy(encodeNpy(new Uint8Array([9]), Array(36).fill(1)))
    expect(file.preamble).toBe(256)
    expect(file.header.endsWith(`), }${' '.repeat(20 + 64)}\n`)).toBe(true)
  })

  it('defaults shape to [data.length] and dtype to the array type', () => {
    const file = readNpy(encodeNpy(new BigInt64Array([1n, -2n, 3n])))
    expect([file.descr, file.shape]).toEqual(['<i8', [3]])
    expect(readNpy(encodeNpy(new Uint8Array([0, 1]))).descr).toBe('|u1')
  })

  it('encodes typed-array views at a byte offset', () => {
    const whole = sample('<f8', 20)
    const view = whole.subarray(5, 17) as Float64Array
    const file = readNpy(encodeNpy(view, [3, 4]))
    expect(firstDifference(file.data, view)).toBe(-1)
  })

  it('switches to format 2.0 exactly when the header no longer fits in 65535 bytes', () => {
    // The dict for n dims of 1 is 73 + 3n characters ('(1, 1, ..., 1)' is 3n, plus 20 spaces of
    // room for the first axis); with '\n' and >= 1 space of padding to a 64-byte boundary, 1.0
    // fits while 10 + 73 + 3n + 2 <= 65536, i.e. n <= 21817.
    const last1 = readNpy(encodeNpy(new Float32Array([2.5]), Array(21817).fill(1)))
    expect(last1.version).toEqual([1, 0])
    expect(last1.preamble).toBe(65536)
    const first2 = readNpy(encodeNpy(new Float32Array([2.5]), Array(21818).fill(1)))
    expect(first2.version).toEqual([2, 0])
    expect(first2.preamble).toBe(65600)
    expect(first2.shape).toHaveLength(21818)
    expect(Array.from(first2.data as Float32Array)).toEqual([2.5])
    expect(npyByteLength('<f4', Array(21818).fill(1))).toBe(65604)
  })
})

describe('encodeNpy rejects bad input', () => {
  it('a shape whose product is not data.length names shape', () => {
    expect(issueField(() => encodeNpy(new Float32Array(12), [3, 5]))).toBe('shape')
    expect(issueField(() => encodeNpy(new Float32Array(2), []))).toBe('shape')
    expect(readNpy(encodeNpy(new Float32Array(0), [4, 0, 3])).shape).toEqual([4, 0, 3])
  })

  it.each([[[-1]], [[1.5]], [[Number.NaN]], [[2, Number.POSITIVE_INFINITY]]])('dimension %j names shape', (shape) => {
    expect(issueField(() => encodeNpy(new Float32Array(1), shape))).toBe('shape')
    expect(issueField(() => npyHeader('<f4', shape))).toBe('shape')
  })

  it('a typed array that does not carry the dtype names data', () => {
    expect(issueField(() => encodeNpy(new Float32Array(2), [2], '|b1'))).toBe('data')
    expect(issueField(() => encodeNpy(new Int16Array(2) as unknown as Int32Array))).toBe('data')
    expect(issueField(() => npyHeader('<f2' as NpyDtype, [1]))).toBe('dtype')
  })
})

describe('npyDtypeOf', () => {
  it('maps each supported typed array and rejects others', () => {
    expect(
      [new Float32Array(), new Float64Array(), new Int32Array(), new Uint32Array(), new BigInt64Array(), new Uint8Array()].map(
        npyDtypeOf,
      ),
    ).toEqual(['<f4', '<f8', '<i4', '<u4', '<i8', '|u1'])
    expect(issueField(() => npyDtypeOf(new Uint16Array() as unknown as Uint32Array))).toBe('data')
    expect(NPY_CONTENT_TYPE).toBe('application/octet-stream')
  })
})

describe('npyStream', () => {
  const whole = sample('<f8', 30) as Float64Array
  const shape = [2, 3, 5]
  const cut = (a: Float64Array, at: number[]) => [0, ...at].map((s, i, all) => a.subarray(s, all[i + 1] ?? a.length))

  it('gives the same bytes as encodeNpy over the concatenation (sync and async chunks)', async () => {
    const chunks = cut(whole, [4, 4, 11, 29])
    const expected = encodeNpy(whole, shape)
    expect(await readAll(npyStream('<f8', shape, chunks))).toEqual(expected)
    async function* gen() {
      for (const c of chunks) yield c
    }
    expect(await readAll(npyStream('<f8', shape, gen()))).toEqual(expected)
    expect(npyByteLength('<f8', shape)).toBe(expected.length)
  })

  it('streams a bool array and an empty array', async () => {
    const bools = sample('|b1', 10)
    expect(await readAll(npyStream('|b1', [10], [bools.subarray(0, 3), bools.subarray(3)]))).toEqual(
      encodeNpy(bools, [10], '|b1'),
    )
    expect(await readAll(npyStream('<i4', [0, 4], []))).toEqual(encodeNpy(new Int32Array(0), [0, 4]))
  })

  it('enqueues views over the chunks, pulled one read at a time', async () => {
    let produced = 0
    const chunks = cut(whole, [10, 20])
    function* gen() {
      for (const c of chunks) {
        produced++
        yield c
      }
    }
    // a macrotask: every pull the stream would start on its own (a read-ahead) has run by then,
    // whatever the runtime's microtask order (Node 24 pulls sooner than Node 20)
    const settle = () => new Promise((r) => setTimeout(r, 0))
    const reader = npyStream('<f8', shape, gen()).getReader()
    await settle()
    expect(produced).toBe(0)
    expect((await reader.read()).value).toEqual(npyHeader('<f8', shape))
    await settle()
    expect(produced).toBe(0) // reading the header asks nothing of the producer
    const first = (await reader.read()).value!
    expect(first.buffer).toBe(whole.buffer)
    expect([first.byteOffset, first.byteLength]).toEqual([0, 80])
    await settle()
    expect(produced).toBe(1) // no chunk produced ahead of the reader
    expect((await reader.read()).value!.byteOffset).toBe(80)
    await settle()
    expect(produced).toBe(2)
    await reader.cancel()
  })

  async function failure(stream: ReadableStream<Uint8Array>): Promise<{ field: string; bytes: number }> {
    const reader = stream.getReader()
    let bytes = 0
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) throw new Error('stream ended without an error')
        bytes += value.length
      }
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError)
      return { field: (e as ValidationError).issues[0].field, bytes }
    }
  }

  it('errors with ValidationError naming shape when the chunks hold too few elements', async () => {
    const r = await failure(npyStream('<f8', shape, cut(whole.subarray(0, 29), [10])))
    expect(r).toEqual({ field: 'shape', bytes: npyHeader('<f8', shape).length + 29 * 8 })
  })

  it('errors before emitting a chunk that goes past prod(shape), and stops the producer', async () => {
    let closed = false
    function* gen() {
      try {
        yield whole.subarray(0, 20)
        yield whole.subarray(0, 20)
        yield whole.subarray(0, 20)
      } finally {
        closed = true
      }
    }
    const r = await failure(npyStream('<f8', shape, gen()))
    expect(r).toEqual({ field: 'shape', bytes: npyHeader('<f8', shape).length + 20 * 8 })
    expect(closed).toBe(true)
  })

  it('errors naming chunks when a chunk has the wrong element type', async () => {
    const r = await failure(npyStream('<f4', [4], [new Float32Array(2), new Float64Array(2) as unknown as Float32Array]))
    expect(r.field).toBe('chunks')
  })

  it('rejects a bad shape up front', () => {
    expect(issueField(() => npyStream('<f4', [-2], []))).toBe('shape')
  })
})

// ---------------------------------------------------------------------------------------------
// NumPy itself, when installed (`PYTHON`, default python3: .ci/run points it at one with NumPy).

const PYTHON = process.env.PYTHON ?? 'python3'
/** NumPy's major version, or 0 when it cannot be imported. */
const NUMPY_MAJOR = (() => {
  try {
    const v = execFileSync(PYTHON, ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8', timeout: 30_000 })
    return Number.parseInt(v, 10) || 0
  } catch {
    return 0
  }
})()
const HAS_NUMPY = NUMPY_MAJOR > 0
if (!HAS_NUMPY) console.warn(`npy: NumPy interop tests skipped: \`${PYTHON} -c "import numpy"\` failed`)

const LOAD_SCRIPT = `
import io, json, sys
import numpy as np
out = []
for path in sys.argv[1:]:
    a = np.load(path)
    buf = io.BytesIO()
    np.save(buf, a)
    with open(path, 'rb') as f:
        same = f.read() == buf.getvalue()
    r = {'shape': list(a.shape), 'descr': a.dtype.str, 'same': same, 'sum': str(a.sum().item())}
    if a.size and a.dtype != bool:
        r['min'] = str(a.min().item())
        r['max'] = str(a.max().item())
    out.append(r)
print(json.dumps(out))
`

const HEADER_SCRIPT = `
import json, sys
import numpy as np
with open(sys.argv[1], 'rb') as f:
    major, minor = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f, max_header_size=1_000_000)
    print(json.dumps({'version': [major, minor], 'ndim': len(shape), 'ones': all(d == 1 for d in shape),
                      'descr': dtype.str, 'fortran': fortran, 'offset': f.tell()}))
`

describe('NumPy reads what we write', () => {
  it.skipIf(!HAS_NUMPY)('np.load gets shape, dtype and values, and np.save reproduces the file', () => {
    const cases: { data: NpyTypedArray; shape: number[]; dtype?: NpyDtype; sum: string; min?: string; max?: string }[] = [
      {
        data: Float32Array.from({ length: 900 }, (_, i) => i * 0.5),
        shape: [3, 60, 5],
        sum: '202275.0',
        min: '0.0',
        max: '449.5',
      },
      {
        data: Float64Array.from([-0, 1.5, -2.25, 1e300, 5e-324, 3, 0.25]),
        shape: [7],
        sum: '1e+300',
        min: '-2.25',
        max: '1e+300',
      },
      { data: Float64Array.from([2.5]), shape: [], sum: '2.5', min: '2.5', max: '2.5' },
      {
        data: Int32Array.from([-2147483648, 2147483647, 5, -6, 0, 1]),
        shape: [2, 3],
        sum: '-1',
        min: '-2147483648',
        max: '2147483647',
      },
      { data: Uint32Array.from([4294967295, 0, 1, 2]), shape: [2, 2], sum: '4294967298', min: '0', max: '4294967295' },
      {
        data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 7n]),
        shape: [3],
        sum: '6',
        min: '-9223372036854775808',
        max: '9223372036854775807',
      },
      { data: Uint8Array.from([255, 0, 128, 1]), shape: [4, 1], sum: '384', min: '0', max: '255' },
      { data: Uint8Array.from([1, 0, 1, 1, 0, 1]), shape: [3, 2], dtype: '|b1', sum: '4' },
      { data: new Float32Array(0), shape: [0, 5], sum: '0.0' },
      // 64 spaces of padding; more than 32 dimensions needs NumPy 2 (NumPy 1 stops at 32)
      ...(NUMPY_MAJOR >= 2 ? [{ data: Uint8Array.from([9]), shape: Array(36).fill(1), sum: '9', min: '9', max: '9' }] : []),
    ]
    const dir = mkdtempSync(join(tmpdir(), 'friday-npy-'))
    try {
      const paths = cases.map((c, i) => {
        const path = join(dir, `${i}.npy`)
        writeFileSync(path, encodeNpy(c.data, c.shape, c.dtype))
        return path
      })
      const got = JSON.parse(execFileSync(PYTHON, ['-c', LOAD_SCRIPT, ...paths], { encoding: 'utf8' }))
      expect(got).toEqual(
        cases.map((c) => ({
          shape: c.shape,
          descr: c.dtype ?? npyDtypeOf(c.data),
          same: true,
          sum: c.sum,
          ...(c.min !== undefined ? { min: c.min, max: c.max } : {}),
        })),
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.skipIf(!HAS_NUMPY)('NumPy parses our 1.0 and 2.0 headers at the 65535-byte boundary', () => {
    const dir = mkdtempSync(join(tmpdir(), 'friday-npy-'))
    try {
      for (const [dims, version, offset] of [
        [21817, 1, 65536],
        [21818, 2, 65600],
      ]) {
        const path = join(dir, `${dims}.npy`)
        writeFileSync(path, encodeNpy(new Int32Array([1]), Array(dims).fill(1)))
        const got = JSON.parse(execFileSync(PYTHON, ['-c', HEADER_SCRIPT, path], { encoding: 'utf8' }))
        expect(got).toEqual({ version: [version, 0], ndim: dims, ones: true, descr: '<i4', fortran: false, offset })
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('NaN cells are reported, not hidden', () => {
  it('nanCellsPerColumn counts per column of a row-major matrix', () => {
    const X = Float32Array.from([1, Number.NaN, 3, Number.NaN, Number.NaN, 6, 7, 8, Number.NaN, 0, 0, 0])
    expect(nanCellsPerColumn(X, 3)).toEqual([1, 2, 1])
    expect(nanCellsPerColumn(new Float64Array(0), 2)).toEqual([0, 0])
    expect(nanCellsPerColumn(Float64Array.from([1, 2, 3, 4]), 2)).toEqual([0, 0])
  })

  it('a feature with nulls and no fill: the training-set answer, its header and X.npy say how many NaN cells, per feature and segment', async () => {
    const lake = await localLake()
    try {
      const n = 120
      const T0 = Date.UTC(2024, 0, 2, 14, 30)
      await lake.storage.write('bars', {
        symbol: Array.from({ length: n }, (_, i) => (i % 2 ? 'AAA' : 'BBB')),
        timestamp: Array.from({ length: n }, (_, i) => new Date(T0 + Math.floor(i / 2) * 60_000).toISOString()),
        close: Array.from({ length: n }, (_, i) => 100 + i / 7),
        volume: Array.from({ length: n }, (_, i) => (i % 5 === 0 ? null : 1000 + i)),
      })
      const app = testApp(lake.storage)
      const res = await app.request('/v1/datasets/bars/training-set', {
        method: 'POST',
        body: JSON.stringify({ features: ['close', 'volume'], target: 'returns', testSize: 0.2, validationSize: 0.1 }),
        headers: { 'content-type': 'application/json' },
      })
      const out = await json(res)
      expect(res.status, JSON.stringify(out)).toBe(200)
      // count what X.npy really holds, segment by segment
      let total = 0
      const totals = { close: 0, volume: 0 }
      for (const segment of ['train', 'validation', 'test'] as const) {
        const seg = out.segments[segment]
        const x = await app.request(seg.X.href)
        expect(x.status).toBe(200)
        const file = readNpy(new Uint8Array(await x.arrayBuffer()))
        const counts = nanCellsPerColumn(file.data as Float32Array, 2)
        expect(seg.nanCells, segment).toEqual({ close: counts[0], volume: counts[1] })
        const perSegment = counts[0] + counts[1]
        expect(x.headers.get('x-nan-cells'), segment).toBe(String(perSegment))
        if (counts[1] > 0) expect(x.headers.get('x-nan-cells-by-feature'), segment).toBe(`volume=${counts[1]}`)
        total += perSegment
        totals.close += counts[0]
        totals.volume += counts[1]
      }
      expect(totals.close).toBe(0)
      expect(totals.volume).toBeGreaterThan(0) // the nulls did reach X as NaN
      expect(out.nanCells).toEqual(totals)
      expect(res.headers.get('x-nan-cells')).toBe(String(total))
      expect(res.headers.get('x-nan-cells-by-feature')).toBe(`volume=${totals.volume}`)

      // with a fill, nothing is NaN and the answer says 0
      const filled = await app.request('/v1/datasets/bars/training-set', {
        method: 'POST',
        body: JSON.stringify({
          features: ['close', 'volume'],
          target: 'returns',
          testSize: 0.2,
          validationSize: 0.1,
          fill: { volume: 'mean' },
        }),
        headers: { 'content-type': 'application/json' },
      })
      const f = await json(filled)
      expect(filled.status, JSON.stringify(f)).toBe(200)
      expect(f.nanCells).toEqual({ close: 0, volume: 0 })
      expect(filled.headers.get('x-nan-cells')).toBe('0')
      expect(filled.headers.get('x-nan-cells-by-feature')).toBeNull()
    } finally {
      await lake.cleanup()
    }
  })
})
