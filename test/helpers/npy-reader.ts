/**
 * A reference `.npy` reader written from the format spec, not from our encoder:
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html (magic, version, header
 * length, Python-literal header dict, 64-byte aligned preamble, little-endian C-order data).
 */

import type { NpyTypedArray } from '../../src/training/npy.js'

type Py = string | number | boolean | Py[] | { [key: string]: Py }

/** Parses the Python literal subset found in `.npy` headers: dicts, 'strings', True/False, ints, tuples. */
function parsePyLiteral(src: string): Py {
  let i = 0
  const fail = (what: string): never => {
    throw new Error(`header literal: expected ${what} at ${i}: ${JSON.stringify(src.slice(i, i + 30))}`)
  }
  const ws = () => {
    while (i < src.length && (src[i] === ' ' || src[i] === '\n')) i++
  }
  const value = (): Py => {
    ws()
    if (src[i] === "'") {
      const end = src.indexOf("'", i + 1)
      if (end < 0) fail('closing quote')
      const s = src.slice(i + 1, end)
      i = end + 1
      return s
    }
    if (src[i] === '{' || src[i] === '(') {
      const close = src[i] === '{' ? '}' : ')'
      i++
      const dict: { [key: string]: Py } = {}
      const items: Py[] = []
      let commas = 0
      for (ws(); src[i] !== close; ws()) {
        const v = value()
        if (close === '}') {
          if (typeof v !== 'string') fail('a string key')
          ws()
          if (src[i++] !== ':') fail("':'")
          dict[v as string] = value()
        } else items.push(v)
        ws()
        if (src[i] === ',') {
          i++
          commas++
        } else if (src[i] !== close) fail(`',' or '${close}'`)
      }
      i++
      if (close === '}') return dict
      if (items.length === 1 && commas === 0) fail('a tuple: (x) is not a tuple in Python, (x,) is')
      return items
    }
    for (const [word, v] of [
      ['True', true],
      ['False', false],
    ] as const) {
      if (src.startsWith(word, i)) {
        i += word.length
        return v
      }
    }
    const m = /^-?\d+/.exec(src.slice(i))
    if (!m) fail('a value')
    i += m![0].length
    return Number(m![0])
  }
  const v = value()
  ws()
  if (i !== src.length) fail('end of header')
  return v
}

const READERS: Record<string, { size: number; make: (n: number) => NpyTypedArray; get: (v: DataView, o: number) => any }> = {
  '<f4': { size: 4, make: (n) => new Float32Array(n), get: (v, o) => v.getFloat32(o, true) },
  '<f8': { size: 8, make: (n) => new Float64Array(n), get: (v, o) => v.getFloat64(o, true) },
  '<i4': { size: 4, make: (n) => new Int32Array(n), get: (v, o) => v.getInt32(o, true) },
  '<u4': { size: 4, make: (n) => new Uint32Array(n), get: (v, o) => v.getUint32(o, true) },
  '<i8': { size: 8, make: (n) => new BigInt64Array(n), get: (v, o) => v.getBigInt64(o, true) },
  '|u1': { size: 1, make: (n) => new Uint8Array(n), get: (v, o) => v.getUint8(o) },
  '|b1': {
    size: 1,
    make: (n) => new Uint8Array(n),
    get: (v, o) => {
      const b = v.getUint8(o)
      if (b > 1) throw new Error(`bool byte ${b} at ${o}`)
      return b
    },
  },
}

export interface NpyFile {
  version: [number, number]
  /** Bytes before the data: magic, version, length field, header. */
  preamble: number
  header: string
  descr: string
  fortranOrder: boolean
  shape: number[]
  data: NpyTypedArray
}

export function readNpy(bytes: Uint8Array): NpyFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = String.fromCharCode(...bytes.subarray(0, 6))
  if (magic !== '\x93NUMPY') throw new Error(`bad magic ${JSON.stringify(magic)}`)
  const version: [number, number] = [bytes[6], bytes[7]]
  if (version[1] !== 0 || (version[0] !== 1 && version[0] !== 2)) throw new Error(`unsupported version ${version}`)
  const start = version[0] === 1 ? 10 : 12
  const headerLen = version[0] === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const preamble = start + headerLen
  const header = String.fromCharCode(...bytes.subarray(start, preamble)) // latin1 == ASCII here
  if (!header.endsWith('\n')) throw new Error('header does not end with \\n')
  if (preamble % 64 !== 0) throw new Error(`preamble of ${preamble} bytes is not 64-byte aligned`)
  const dict = parsePyLiteral(header) as { [key: string]: Py }
  if (Object.keys(dict).sort().join() !== 'descr,fortran_order,shape') throw new Error(`keys ${Object.keys(dict)}`)
  const { descr, fortran_order: fortranOrder, shape } = dict
  if (typeof descr !== 'string' || !(descr in READERS)) throw new Error(`descr ${descr}`)
  if (typeof fortranOrder !== 'boolean') throw new Error('fortran_order is not a bool')
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) throw new Error('shape is not a tuple of ints')
  const reader = READERS[descr]
  const n = (shape as number[]).reduce((a, b) => a * b, 1)
  if (bytes.length - preamble !== n * reader.size) {
    throw new Error(`data has ${bytes.length - preamble} bytes, shape needs ${n * reader.size}`)
  }
  const data = reader.make(n)
  for (let k = 0; k < n; k++) data[k] = reader.get(view, preamble + k * reader.size)
  return { version, preamble, header, descr, fortranOrder, shape: shape as number[], data }
}
