/**
 * The Parquet RLE / bit-packing hybrid encoding (definition levels, dictionary indices): runs of
 * 8 or more equal values become one RLE run, everything else is bit-packed in groups of 8,
 * least significant bit first.
 */

import type { Bytes } from './bytes.js'

/** Values per bit-packed run: 63 groups of 8, so the run header fits one byte as most writers do. */
const MAX_PACKED = 504

/** Bits needed for values in [0, max]: at least 1. */
export function bitWidth(max: number): number {
  let w = 1
  while (max >= 2 ** w) w++
  return w
}

/** Writes `values[0, n)`, each below 2^width (width 1..24), without a length prefix. */
export function writeHybrid(out: Bytes, values: ArrayLike<number>, n: number, width: number): void {
  let litStart = 0
  let i = 0
  while (i < n) {
    const v = values[i]
    let j = i + 1
    while (j < n && values[j] === v) j++
    const run = j - i
    if (run >= 8) {
      // literals must be a multiple of 8 before a run: lend them the run's first values
      const pad = (8 - ((i - litStart) % 8)) % 8
      if (run - pad >= 8) {
        writePacked(out, values, litStart, i + pad, width)
        writeRun(out, v, run - pad, width)
        litStart = j
      }
    }
    i = j
  }
  writePacked(out, values, litStart, n, width)
}

/** What `writeHybrid` writes for `n` copies of `value`, without an array of them when `n` >= 8 (one RLE run). */
export function writeRepeated(out: Bytes, value: number, n: number, width: number): void {
  if (n >= 8) writeRun(out, value, n, width)
  else writeHybrid(out, new Array<number>(n).fill(value), n, width)
}

function writeRun(out: Bytes, value: number, count: number, width: number): void {
  out.varint(count * 2)
  const bytes = (width + 7) >> 3
  out.ensure(bytes)
  for (let b = 0; b < bytes; b++) out.buf[out.pos++] = (value >>> (8 * b)) & 255
}

/** Bit-packs `values[from, to)`; the last group is padded with zeros. */
function writePacked(out: Bytes, values: ArrayLike<number>, from: number, to: number, width: number): void {
  while (from < to) {
    const count = Math.min(to - from, MAX_PACKED)
    const groups = (count + 7) >> 3
    out.varint(groups * 2 + 1)
    out.ensure(groups * width)
    const buf = out.buf
    let p = out.pos
    let acc = 0
    let bits = 0
    const total = groups * 8
    for (let k = 0; k < total; k++) {
      const v = k < count ? values[from + k] : 0
      acc |= v << bits
      bits += width
      while (bits >= 8) {
        buf[p++] = acc & 255
        acc >>>= 8
        bits -= 8
      }
    }
    out.pos = p
    from += count
  }
}

/** PLAIN booleans: one bit per value, LSB first; `values` holds 0/1. */
export function writeBitPackedBooleans(out: Bytes, values: ArrayLike<number>, n: number): void {
  const bytes = (n + 7) >> 3
  out.ensure(bytes)
  const buf = out.buf
  const p = out.pos
  buf.fill(0, p, p + bytes)
  for (let i = 0; i < n; i++) if (values[i]) buf[p + (i >> 3)] |= 1 << (i & 7)
  out.pos = p + bytes
}
