/**
 * Finding partitions and reading them. Costs on an object store: one LIST of the dataset's
 * symbols when no symbols are given, one LIST per symbol for its periods, then per partition
 * one manifest GET and one GET per live file that can hold matching rows.
 */

import { runAll, sleep } from '../concurrency.js'
import { StoreError } from '../core/errors.js'
import { filterRows, type TimeSymbolFilter } from '../core/filter.js'
import { decodePathValue, encodePathValue } from '../core/keys.js'
import { metaDir } from '../core/layout.js'
import { type PartitionKey, parsePath, pathOf, periodOf, timeRangeOf } from '../core/partitioning.js'
import { concat, emptyTable, sortTable } from '../core/table.js'
import { endOfPeriodUs, startOfPeriodUs } from '../core/time.js'
import type { ManifestFile, PartitionManifest, PartitionRef, Schema, Table } from '../core/types.js'
import { type LakeContext, manifestBase, readDataFile } from './context.js'

/** The lake's name for the read/delete filter (`TimeSymbolFilter`). */
export type RowFilter = TimeSymbolFilter

function overlapsPeriod(values: Record<string, string>, f: RowFilter): boolean {
  const [ps, pe] = timeRangeOf(values)
  return ps < f.end && pe > f.start
}

async function listPrefixes(ctx: LakeContext, prefix: string): Promise<string[]> {
  const res = await ctx.store.list(prefix, { delimiter: '/' })
  return res.prefixes.map((p) => p.slice(prefix.length, -1))
}

/**
 * Partitions of a dataset that can hold rows matching the filter, in read order:
 * by symbol, then by period (symbol-major partitionings); by period otherwise.
 */
export async function findPartitions(
  ctx: LakeContext,
  ds: string,
  partitionBy: PartitionKey[],
  f: RowFilter,
): Promise<PartitionRef[]> {
  // partitions are listed where their manifests are (`_friday/<dataset>/`), not where the data is:
  // a partition is what has a manifest, and its data directory may be empty (all rows deleted)
  const root = `${metaDir(ds)}/`
  const direct = enumerate(partitionBy, f)
  if (direct) return direct
  if (partitionBy[0] !== 'symbol') {
    const segs = await listPrefixes(ctx, root)
    return segs
      .map((s) => ({ s, values: parsePath(partitionBy, s) }))
      .filter((x): x is { s: string; values: Record<string, string> } => x.values !== null && overlapsPeriod(x.values, f))
      .map((x) => ({ values: x.values, path: x.s }))
      .sort((a, b) => (a.path < b.path ? -1 : 1))
  }
  let symbols: string[]
  if (f.symbols) symbols = [...f.symbols]
  else {
    symbols = []
    for (const seg of await listPrefixes(ctx, root)) {
      if (!seg.startsWith('symbol=')) continue
      const raw = seg.slice('symbol='.length)
      try {
        const sym = decodePathValue(raw)
        if (encodePathValue(sym) === raw) symbols.push(sym)
      } catch {
        // not ours
      }
    }
  }
  symbols.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  if (partitionBy.length === 1)
    return symbols.map((symbol) => ({ values: { symbol }, path: `symbol=${encodePathValue(symbol)}` }))
  const perSymbol = await runAll(symbols, ctx.concurrency, async (symbol) => {
    const dir = `symbol=${encodePathValue(symbol)}`
    const segs = await listPrefixes(ctx, `${root}${dir}/`)
    const out: PartitionRef[] = []
    for (const s of segs.sort()) {
      const path = `${dir}/${s}`
      const values = parsePath(partitionBy, path)
      if (values && overlapsPeriod(values, f)) out.push({ values, path })
    }
    return out
  })
  return perSymbol.flat()
}

/** Periods probed directly instead of listed: a missing one costs one GET, a listing one LIST. */
const MAX_ENUMERATED_PERIODS = 4

/**
 * For a short bounded range (and the symbols, if the layout has them) the partition paths are
 * known without listing: a symbol-day read then costs one manifest GET and one file GET.
 */
function enumerate(partitionBy: PartitionKey[], f: RowFilter): PartitionRef[] | null {
  const periodKey = partitionBy.find((k) => k !== 'symbol') as 'date' | 'month' | undefined
  if (!periodKey || !Number.isFinite(f.start) || !Number.isFinite(f.end) || f.end <= f.start) return null
  if (partitionBy.includes('symbol') && !f.symbols) return null
  const periods: string[] = []
  for (let p = periodOf(periodKey, f.start); startOfPeriodUs(p) < f.end; p = periodOf(periodKey, endOfPeriodUs(p))) {
    periods.push(p)
    if (periods.length > MAX_ENUMERATED_PERIODS) return null
  }
  const symbols = partitionBy.includes('symbol') ? [...f.symbols!].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : [null]
  const out: PartitionRef[] = []
  for (const symbol of symbols) {
    for (const period of periods) {
      const values: Record<string, string> = symbol === null ? { [periodKey]: period } : { symbol, [periodKey]: period }
      out.push({ values, path: pathOf(partitionBy, values) })
    }
  }
  return out
}

export function fileMatches(file: ManifestFile, f: RowFilter): boolean {
  if (file.maxTs < f.start || file.minTs >= f.end) return false
  return f.symbols === null || file.symbols.some((s) => f.symbols!.has(s))
}

/**
 * The matching rows of one manifest version of a partition, sorted by (symbol, timestamp); null
 * when a file it names is gone (replaced by a newer commit and removed).
 */
export async function readManifestRows(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  manifest: PartitionManifest,
  f: RowFilter,
  schema: Schema,
  columns: string[] | undefined,
): Promise<Table | null> {
  const files = manifest.files.filter((file) => fileMatches(file, f))
  const settled = await Promise.allSettled(
    files.map((file) =>
      readDataFile(ctx, ds, ref.path, file, columns, Math.max(f.start, file.minTs), Math.min(f.end - 1, file.maxTs)),
    ),
  )
  const failed = settled.find((x) => x.status === 'rejected')
  if (failed) throw failed.reason
  const tables = settled.map((x) => (x as PromiseFulfilledResult<Table | null>).value)
  if (tables.some((t) => t === null)) return null
  const t = concat(
    (tables as Table[]).map((x) => filterRows(x, f)),
    schema,
  )
  return files.length > 1 ? sortTable(t) : t
}

/** Rounds of re-reading a partition whose files are replaced under the reader (each round a newer manifest). */
const READ_ATTEMPTS = 40

export interface PartitionRead {
  table: Table
  manifest: PartitionManifest | null
}

/**
 * Reads one partition's matching rows, sorted by (symbol, timestamp), from one manifest
 * version. If a file was replaced while reading, re-reads the manifest and starts over.
 */
export async function readPartition(
  ctx: LakeContext,
  ds: string,
  ref: PartitionRef,
  f: RowFilter,
  schema: Schema,
  columns: string[] | undefined,
): Promise<PartitionRead> {
  let lastVersion = -1
  let unchanged = 0
  for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(Math.min(250, 5 * 2 ** Math.min(attempt, 6)) * Math.random())
    const { doc } = await ctx.log.load<PartitionManifest>(manifestBase(ds, ref.path))
    if (!doc) return { table: emptyTable(schema), manifest: null }
    // a file missing under the same manifest version twice over is no race: the file is lost
    if (doc.version === lastVersion && ++unchanged >= 3) break
    lastVersion = doc.version
    const t = await readManifestRows(ctx, ds, ref, doc, f, schema, columns)
    if (t) return { table: t, manifest: doc }
  }
  throw new StoreError(
    `could not read a consistent version of ${ds}/${ref.path}: a file its manifest (version ${lastVersion}) names is missing`,
    { partition: `${ds}/${ref.path}`, version: lastVersion },
  )
}
