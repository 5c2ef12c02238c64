/**
 * NumPy `.npy` encoding of typed arrays, so feature matrices and labels can be handed to Python
 * (`np.load`) without a conversion step. Writes the header byte for byte as `np.save` does
 * (format 1.0, or 2.0 when the header outgrows 65535 bytes; 64-byte aligned), then the raw
 * little-endian, C-order data: one whole buffer (`encodeNpy`) or a stream of chunks (`npyStream`).
 * Web standards only, so it runs in Workers; assumes a little-endian host and checks it.
 */

import { ValidationError } from '../core/errors.js'

/** The NumPy dtypes we write: `descr` strings as they appear in the header. */
export type NpyDtype = '<f4' | '<f8' | '<i4' | '<u4' | '<i8' | '|u1' | '|b1'

/** The typed arrays that carry those dtypes; `|b1` is a `Uint8Array` of 0 and 1. */
export type NpyTypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | BigInt64Array | Uint8Array

/** The `Content-Type` to serve `.npy` bodies with. */
export const NPY_CONTENT_TYPE = 'application/octet-stream'

type ArrayCtor = { readonly BYTES_PER_ELEMENT: number; readonly name: string; new (n: number): NpyTypedArray }

const ARRAY_OF: Record<NpyDtype, ArrayCtor> = {
  '<f4': Float32Array,
  '<f8': Float64Array,
  '<i4': Int32Array,
  '<u4': Uint32Array,
  '<i8': BigInt64Array,
  '|u1': Uint8Array,
  '|b1': Uint8Array,
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY
const ALIGN = 64 // numpy ARRAY_ALIGN
const GROWTH_AXIS_MAX_DIGITS = 21 // numpy leaves room for the first dim to grow to this many digits
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('npy: big-endian hosts are not supported (data would need byte swapping)')
}

/** The dtype of a typed array: `Uint8Array` maps to `|u1` (pass `|b1` explicitly for booleans). */
export function npyDtypeOf(data: NpyTypedArray): NpyDtype {
  if (data instanceof Float32Array) return '<f4'
  if (data instanceof Float64Array) return '<f8'
  if (data instanceof Int32Array) return '<i4'
  if (data instanceof Uint32Array) return '<u4'
  if (data instanceof BigInt64Array) return '<i8'
  if (data instanceof Uint8Array) return '|u1'
  const got = (data as object)?.constructor?.name ?? typeof data
  throw new ValidationError([{ field: 'data', message: `expected Float32/Float64/Int32/Uint32/BigInt64/Uint8Array, got ${got}` }])
}

/** Validates `shape` and returns its element count (1 for a scalar `[]`). */
function elementCount(shape: readonly number[]): number {
  let n = 1
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ValidationError([{ field: 'shape', message: `dimension ${i} must be a non-negative integer, got ${d}` }])
    }
    n *= d
  }
  if (!Number.isSafeInteger(n)) throw new ValidationError([{ field: 'shape', message: 'element count exceeds 2^53 - 1' }])
  return n
}

function checkDtype(dtype: NpyDtype): ArrayCtor {
  if (Object.hasOwn(ARRAY_OF, dtype)) return ARRAY_OF[dtype]
  const expected = Object.keys(ARRAY_OF).join(', ')
  throw new ValidationError([{ field: 'dtype', message: `expected one of ${expected}, got '${dtype}'` }])
}

/** The header dict as `np.save` writes it, including its spare room for the first axis. */
function headerDict(dtype: NpyDtype, shape: readonly number[]): string {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${tuple}, }`
  return shape.length > 0 ? dict + ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length)) : dict
}

/**
 * The full preamble: magic, version (1.0, or 2.0 past 65535 header bytes), header length (LE),
 * header dict, space padding and `\n`, 64-byte aligned. Throws `ValidationError` on a bad dtype or shape.
 */
export function npyHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  checkDtype(dtype)
  elementCount(shape)
  const dict = headerDict(dtype, shape)
  let prefix = 10 // magic (6) + version (2) + uint16 length
  let padded = dict.length + 1 + (ALIGN - ((prefix + dict.length + 1) % ALIGN)) // numpy pads 1..64 spaces
  if (padded > 0xffff) {
    prefix = 12 // uint32 length
    padded = dict.length + 1 + (ALIGN - ((prefix + dict.length + 1) % ALIGN))
  }
  const out = new Uint8Array(prefix + padded).fill(0x20)
  out.set(MAGIC)
  out[6] = prefix === 10 ? 1 : 2
  out[7] = 0
  const view = new DataView(out.buffer)
  if (prefix === 10) view.setUint16(8, padded, true)
  else view.setUint32(8, padded, true)
  new TextEncoder().encodeInto(dict, out.subarray(prefix)) // the dict is ASCII
  out[out.length - 1] = 0x0a
  return out
}

/** Total `.npy` size in bytes (header + data), e.g. for `Content-Length`. */
export function npyByteLength(dtype: NpyDtype, shape: readonly number[]): number {
  return npyHeader(dtype, shape).length + elementCount(shape) * checkDtype(dtype).BYTES_PER_ELEMENT
}

function bytesOf(data: NpyTypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

/**
 * A complete `.npy` file for `data` in one buffer. `shape` defaults to `[data.length]`; `dtype`
 * defaults to `npyDtypeOf(data)` (pass `'|b1'` for a 0/1 `Uint8Array`). Throws `ValidationError`
 * if the shape is invalid or its product is not `data.length`, or `data` does not carry `dtype`.
 */
export function encodeNpy(
  data: NpyTypedArray,
  shape: readonly number[] = [data.length],
  dtype: NpyDtype = npyDtypeOf(data),
): Uint8Array {
  assertLittleEndian()
  const ctor = checkDtype(dtype)
  if (!(data instanceof ctor)) {
    throw new ValidationError([{ field: 'data', message: `dtype ${dtype} needs a ${ctor.name}, got ${data.constructor.name}` }])
  }
  const n = elementCount(shape)
  if (n !== data.length) {
    throw new ValidationError([
      { field: 'shape', message: `shape (${shape.join(', ')}) holds ${n} elements, data has ${data.length}` },
    ])
  }
  const header = npyHeader(dtype, shape)
  const out = new Uint8Array(header.length + data.byteLength)
  out.set(header)
  out.set(bytesOf(data), header.length)
  return out
}

/**
 * A `.npy` file as a stream: the header, then each chunk's bytes in order (C order across chunks).
 * Chunks are enqueued as views over their buffers, not copies: the producer must not reuse or
 * mutate a chunk after yielding it. Pulls one chunk per read, never ahead of the reader (bounded
 * memory, the same on every runtime); cancelling the stream calls the iterator's `return`. The
 * stream errors with `ValidationError` if a chunk is not the dtype's array type, or if the chunks
 * hold more or fewer than prod(shape) elements.
 */
export function npyStream(
  dtype: NpyDtype,
  shape: readonly number[],
  chunks: AsyncIterable<NpyTypedArray> | Iterable<NpyTypedArray>,
): ReadableStream<Uint8Array> {
  assertLittleEndian()
  const ctor = checkDtype(dtype)
  const expected = elementCount(shape)
  const header = npyHeader(dtype, shape)
  const it: AsyncIterator<NpyTypedArray> | Iterator<NpyTypedArray> =
    Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : chunks[Symbol.iterator]()
  let seen = 0
  let index = 0
  /** Stops the producer (e.g. runs a generator's `finally`) before erroring the stream. */
  const fail = async (err: ValidationError): Promise<never> => {
    try {
      await it.return?.()
    } catch {} // the validation error is the one to report
    throw err
  }
  const source: UnderlyingDefaultSource<Uint8Array> = {
    start(controller) {
      controller.enqueue(header)
    },
    async pull(controller) {
      for (;;) {
        const r = await it.next()
        if (r.done) {
          if (seen !== expected) return fail(countError(expected, seen, 'fewer'))
          controller.close()
          return
        }
        const chunk = r.value
        if (!(chunk instanceof ctor)) {
          const got = (chunk as object)?.constructor?.name ?? typeof chunk
          return fail(
            new ValidationError([
              { field: 'chunks', message: `chunk ${index}: dtype ${dtype} needs a ${ctor.name}, got ${got}` },
            ]),
          )
        }
        index++
        seen += chunk.length
        if (seen > expected) return fail(countError(expected, seen, 'more'))
        if (chunk.length > 0) {
          controller.enqueue(bytesOf(chunk))
          return
        }
      }
    },
    async cancel(reason) {
      await it.return?.(reason)
    },
  }
  // highWaterMark 0: pull only for a pending read. The default (1 chunk) pulls the next chunk as
  // soon as a read empties the queue, before anyone asks for it (how soon depends on the
  // runtime's microtask order: Node 24 does it before that read resolves, Node 20 just after).
  return new ReadableStream(source, { highWaterMark: 0 })
}

function countError(expected: number, seen: number, how: 'fewer' | 'more'): ValidationError {
  const got = how === 'more' ? `at least ${seen}` : String(seen)
  return new ValidationError([{ field: 'shape', message: `shape holds ${expected} elements, chunks gave ${got} (${how})` }])
}

/**
 * NaN cells per column of a row-major matrix of `columns` columns: a feature with nulls and no
 * `fill` reaches `X.npy` as NaN, and the training-set answer reports how many (per feature) so a
 * caller sees it before training. Zero for a column without any.
 */
export function nanCellsPerColumn(values: Float32Array | Float64Array, columns: number): number[] {
  const counts = new Array<number>(columns).fill(0)
  if (columns <= 0) return counts
  for (let row = 0; row < values.length; row += columns) {
    for (let j = 0; j < columns; j++) {
      const v = values[row + j]
      if (v !== v) counts[j]++
    }
  }
  return counts
}
