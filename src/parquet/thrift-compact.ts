/**
 * The Thrift compact protocol, the encoding of Parquet page headers and footers: field headers
 * carry the delta from the previous field id, integers are zigzag varints. The writer covers what
 * the Parquet structures use (bool, i16, i32, i64 as numbers below 2^53, binary, list, struct);
 * the reader reads those and skips anything else. Field ids and enums are in `thrift-ids.ts`.
 */

import type { Bytes } from './bytes.js'

/** Compact-protocol wire types. */
export const TType = {
  TRUE: 1,
  FALSE: 2,
  BYTE: 3,
  I16: 4,
  I32: 5,
  I64: 6,
  DOUBLE: 7,
  BINARY: 8,
  LIST: 9,
  SET: 10,
  MAP: 11,
  STRUCT: 12,
} as const
export type TType = (typeof TType)[keyof typeof TType]

const zigzag = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1)
const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder()

export class CompactWriter {
  private lastId = 0
  private readonly stack: number[] = []

  constructor(readonly out: Bytes) {}

  private field(id: number, type: number): void {
    const delta = id - this.lastId
    if (delta > 0 && delta <= 15) this.out.u8((delta << 4) | type)
    else {
      this.out.u8(type)
      this.out.varint(zigzag(id))
    }
    this.lastId = id
  }

  bool(id: number, v: boolean): void {
    this.field(id, v ? TType.TRUE : TType.FALSE)
  }

  i16(id: number, v: number): void {
    this.field(id, TType.I16)
    this.out.varint(zigzag(v))
  }

  i32(id: number, v: number): void {
    this.field(id, TType.I32)
    this.out.varint(zigzag(v))
  }

  i64(id: number, v: number): void {
    this.field(id, TType.I64)
    this.out.varint(zigzag(v))
  }

  binary(id: number, b: Uint8Array): void {
    this.field(id, TType.BINARY)
    this.out.varint(b.length)
    this.out.bytes(b)
  }

  string(id: number, s: string): void {
    this.binary(id, utf8.encode(s))
  }

  /** Starts a struct field; write its fields, then `end()`. */
  struct(id: number): void {
    this.field(id, TType.STRUCT)
    this.begin()
  }

  /** Starts a struct that is a list element (or the top-level struct); write its fields, then `end()`. */
  begin(): void {
    this.stack.push(this.lastId)
    this.lastId = 0
  }

  end(): void {
    this.out.u8(0)
    this.lastId = this.stack.pop() ?? 0
  }

  /** Starts a list field of `size` elements of `elemType`; then write the elements. */
  list(id: number, elemType: TType, size: number): void {
    this.field(id, TType.LIST)
    if (size < 15) this.out.u8((size << 4) | elemType)
    else {
      this.out.u8(0xf0 | elemType)
      this.out.varint(size)
    }
  }

  /** An i32 list element. */
  elemI32(v: number): void {
    this.out.varint(zigzag(v))
  }

  /** A string list element. */
  elemString(s: string): void {
    const b = utf8.encode(s)
    this.out.varint(b.length)
    this.out.bytes(b)
  }
}

/** A reader of the compact protocol over a byte range (numbers stay numbers: below 2^53). */
export class CompactReader {
  p = 0
  constructor(readonly b: Uint8Array) {}

  byte(): number {
    if (this.p >= this.b.length) throw new Error('parquet footer ends early')
    return this.b[this.p++]
  }

  varint(): number {
    let result = 0
    let mul = 1
    for (;;) {
      const byte = this.byte()
      result += (byte & 0x7f) * mul
      if (!(byte & 0x80)) return result
      mul *= 128
    }
  }

  zigzag(): number {
    const v = this.varint()
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2
  }

  string(): string {
    const n = this.varint()
    const s = utf8Decoder.decode(this.b.subarray(this.p, this.p + n))
    this.p += n
    return s
  }

  /** Reads a field header: [fieldId, type], or type 0 at the end of the struct. */
  field(last: number): [number, number] {
    const byte = this.byte()
    const type = byte & 0x0f
    if (type === 0) return [0, 0]
    const delta = byte >> 4
    return [delta ? last + delta : this.zigzag(), type]
  }

  /** A list header: [size, element type]. */
  list(): [number, number] {
    const byte = this.byte()
    const size = byte >> 4
    return [size === 15 ? this.varint() : size, byte & 0x0f]
  }

  /** Skips a value of wire type `type`. */
  skip(type: number): void {
    switch (type) {
      case TType.TRUE:
      case TType.FALSE:
        return // booleans live in the field header
      case TType.BYTE:
        this.p++
        return
      case TType.I16:
      case TType.I32:
      case TType.I64:
        this.varint()
        return
      case TType.DOUBLE:
        this.p += 8
        return
      case TType.BINARY: {
        const n = this.varint() // read first: `this.p += this.varint()` would lose the varint's bytes
        this.p += n
        return
      }
      case TType.LIST:
      case TType.SET: {
        const [n, t] = this.list()
        for (let i = 0; i < n; i++) {
          if (t === TType.TRUE || t === TType.FALSE) this.p++
          else this.skip(t)
        }
        return
      }
      case TType.MAP: {
        const n = this.varint()
        if (!n) return
        const kv = this.byte()
        for (let i = 0; i < n; i++) {
          this.skip(kv >> 4)
          this.skip(kv & 0x0f)
        }
        return
      }
      case TType.STRUCT: {
        let id = 0
        for (;;) {
          const [f, t] = this.field(id)
          if (!t) return
          this.skip(t)
          id = f
        }
      }
      default:
        throw new Error(`parquet footer: unknown thrift type ${type}`)
    }
  }
}
