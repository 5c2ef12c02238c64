/**
 * Restoring an archived file. Into its partition (default): the file's rows whose keys the
 * partition does not hold now come back as one new live file, through the ordinary commit loop
 * (current rows win, so a restore never undoes a later write; restoring twice adds nothing the
 * second time). To a key (`to`): the original Parquet bytes, checked against the recorded
 * checksum, are written there with create-if-absent; the partition is not touched.
 */

import { decompress } from '../core/archive-codec.js'
import { NotFoundError, StoreError, ValidationError } from '../core/errors.js'
import { type PartitionKey, parsePath } from '../core/partitioning.js'
import { take } from '../core/table.js'
import type {
  ArchiveEntry,
  PartitionManifest,
  PartitionRef,
  RestoreOptions,
  RestoreResult,
  Schema,
  Table,
} from '../core/types.js'
import { decodeParquet } from '../parquet/index.js'
import { archiveRoot, loadArchive } from './archive.js'
import { type LakeContext, partitionDir } from './context.js'
import { sha256 } from './manifest.js'
import { mutatePartition } from './mutate.js'
import { readFiles, spanOf, touches } from './planners.js'

/** A store key given by a caller: relative, `/`-separated, no `.`/`..` segments or control characters. */
function checkTargetKey(key: string): string {
  const bad =
    key.length === 0 ||
    key.length > 1024 ||
    key.startsWith('/') ||
    key.endsWith('/') ||
    /[\x00-\x1f\x7f\\]/.test(key) ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..')
  if (bad)
    throw new ValidationError([
      { field: 'to', message: `expected a relative key like 'restored/part-X.parquet', got ${JSON.stringify(key)}` },
    ])
  return key
}

/** The entry and its original bytes (decompressed, checksum verified). */
export async function readArchived(
  ctx: LakeContext,
  ds: string,
  key: string,
): Promise<{ entry: ArchiveEntry; bytes: Uint8Array }> {
  const root = archiveRoot(ds)
  const slash = key.lastIndexOf('/')
  if (!key.startsWith(root) || slash <= root.length) throw new NotFoundError(`archived file '${key}' of dataset '${ds}'`)
  const doc = await loadArchive(ctx, ds, key.slice(root.length, slash))
  const entry = doc?.entries.find((e) => e.key === key)
  if (!entry) throw new NotFoundError(`archived file '${key}' of dataset '${ds}'`)
  const got = await ctx.store.get(key)
  if (!got) throw new StoreError(`archived file '${key}' is recorded but missing from the store`, { key })
  const bytes = await decompress(entry.codec, got.body, entry.bytes)
  const sum = await sha256(bytes, ctx.sha256)
  if (sum !== entry.checksum) throw new StoreError(`archived file '${key}': checksum ${sum}, recorded ${entry.checksum}`, { key })
  return { entry, bytes }
}

export async function restoreArchived(
  ctx: LakeContext,
  ds: string,
  key: string,
  partitionBy: PartitionKey[],
  schema: Schema,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const target = options.to === undefined ? undefined : checkTargetKey(options.to)
  const { entry, bytes } = await readArchived(ctx, ds, key)
  const values = parsePath(partitionBy, entry.partition)
  if (!values) throw new NotFoundError(`partition '${entry.partition}' of dataset '${ds}'`)
  const ref: PartitionRef = { values, path: entry.partition }
  if (target !== undefined) {
    await ctx.store.put(target, bytes, { ifNoneMatch: '*' })
    return { entry, rowsRestored: 0, key: target }
  }
  const rows = await decodeParquet(bytes, { codecs: ctx.codecs })
  let restored = 0
  const result = await mutatePartition(ctx, ds, ref, schema, async (m: PartitionManifest | null, widened: Schema) => {
    const missing = await missingKeys(ctx, ds, ref, rows, m, widened)
    restored = missing.length
    return missing.length ? { remove: [], add: [missing] } : null
  })
  const added = result.committed ? result.manifest?.files[result.manifest.files.length - 1] : undefined
  return { entry, rowsRestored: result.committed ? restored : 0, key: added ? `${partitionDir(ds, ref.path)}/${added.name}` : '' }
}

/** Rows of `t` whose key no live file of `m` holds. */
async function missingKeys(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  t: Table,
  m: PartitionManifest | null,
  schema: Schema,
): Promise<Table> {
  if (t.length === 0) return t
  const span = spanOf(t)
  const overlapping = (m?.files ?? []).filter((f) => touches(f, span))
  const keys = new Set<string>()
  if (overlapping.length) {
    const existing = await readFiles(ctx, ds, ref, overlapping, schema.slice(0, 2), ['symbol', 'timestamp'])
    const es = existing.columns.symbol.values as string[]
    const et = existing.columns.timestamp.values as Float64Array
    for (let i = 0; i < existing.length; i++) keys.add(`${es[i]}\u0000${et[i]}`)
  }
  const s = t.columns.symbol.values as string[]
  const ts = t.columns.timestamp.values as Float64Array
  const keep: number[] = []
  for (let i = 0; i < t.length; i++) if (!keys.has(`${s[i]}\u0000${ts[i]}`)) keep.push(i)
  return keep.length === t.length ? t : take(t, keep)
}
