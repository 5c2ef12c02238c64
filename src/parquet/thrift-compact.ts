/**
 * A writer for the Thrift compact protocol, the encoding of Parquet page headers and footers:
 * field headers carry the delta from the previous field id, integers are zigzag varints.
 * Only what the Parquet structures use: bool, i16, i32, i64 (as numbers below 2^53), binary,
 * list and struct.
 */

import type { Bytes } from './bytes.js'

export const TType = { TRUE: 1, FALSE: 2, I16: 4, I32: 5, I64: 6, BINARY: 8, LIST: 9, STRUCT: 12 } as const
export type TType = (typeof TType)[keyof typeof TType]

const zigzag = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1)
const utf8 = new TextEncoder()

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
