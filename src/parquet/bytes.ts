/** A growable little-endian byte buffer: the output of the Parquet writer's pages and footer. */

/** True on every platform we run on; typed-array bytes are copied as-is only when it holds. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export class Bytes {
  buf: Uint8Array
  view: DataView
  pos = 0

  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity)
    this.view = new DataView(this.buf.buffer)
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (!(n >= 0 && Number.isSafeInteger(n))) throw new RangeError(`Bytes.ensure: bad byte count ${n}`)
    const need = this.pos + n
    if (need <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < need) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u8(v: number): void {
    this.ensure(1)
    this.buf[this.pos++] = v
  }

  u32(v: number): void {
    this.ensure(4)
    this.view.setUint32(this.pos, v, true)
    this.pos += 4
  }

  /** Unsigned LEB128 of a non-negative integer below 2^53. */
  varint(v: number): void {
    this.ensure(8)
    while (v > 127) {
      this.buf[this.pos++] = (v % 128) | 128
      v = Math.floor(v / 128)
    }
    this.buf[this.pos++] = v
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }

  /** The raw little-endian bytes of `a[from, to)`. */
  typed(a: Float64Array | BigInt64Array | Int32Array, from = 0, to = a.length): void {
    const width = a.BYTES_PER_ELEMENT
    const n = (to - from) * width
    this.ensure(n)
    if (LITTLE_ENDIAN) {
      this.buf.set(new Uint8Array(a.buffer, a.byteOffset + from * width, n), this.pos)
      this.pos += n
      return
    }
    for (let i = from; i < to; i++, this.pos += width) {
      if (a instanceof Float64Array) this.view.setFloat64(this.pos, a[i], true)
      else if (a instanceof BigInt64Array) this.view.setBigInt64(this.pos, a[i], true)
      else this.view.setInt32(this.pos, a[i], true)
    }
  }

  /**
   * UTF-8 of `s` (lone surrogates become U+FFFD, as TextEncoder does); returns the byte length.
   * ASCII is copied char by char; anything else goes through `TextEncoder.encodeInto`.
   */
  utf8(s: string): number {
    if (typeof s !== 'string') throw new TypeError(`expected a string, got ${typeof s}`)
    const n = s.length
    this.ensure(n * 3)
    const buf = this.buf
    const start = this.pos
    let p = start
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c >= 0x80) {
        p += encoder.encodeInto(s.slice(i), buf.subarray(p)).written
        break
      }
      buf[p++] = c
    }
    this.pos = p
    return p - start
  }

  /** A view of the bytes written so far (valid until the next write). */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }
}

const encoder = new TextEncoder()
