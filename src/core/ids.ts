/** Sortable unique ids (ULIDs) for data files and commits. */

import { ulid } from 'ulid'

/**
 * `ulid`'s default PRNG asks the platform for fresh random bytes per character (16 calls per
 * id). Drawing from a pooled `crypto.getRandomValues` buffer gives the same CSPRNG output at a
 * fraction of the cost (two ids per partition commit add up on a 2,560-partition write).
 */
const pool = new Uint32Array(1024)
let next = pool.length

function pooledRandom(): number {
  if (next === pool.length) {
    crypto.getRandomValues(pool)
    next = 0
  }
  return pool[next++] / 4294967296
}

export function newId(): string {
  return ulid(undefined, pooledRandom)
}
