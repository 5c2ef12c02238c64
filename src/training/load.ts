/**
 * Parallel multi-symbol loading: one `read` per symbol, at most `concurrency` in flight
 * (p-limit), concatenated in symbol order into one table sorted by (symbol, timestamp), exactly
 * what a single `read` of all the symbols returns.
 */

import pLimit from 'p-limit'
import { allOwned } from '../concurrency.js'
import { ValidationError } from '../core/errors.js'
import { concat, emptyTable, KEY_SCHEMA } from '../core/table.js'
import type { DataStorage, Schema, Table } from '../core/types.js'

export interface LoadOptions {
  symbols: string[]
  start?: Date | number | string
  end?: Date | number | string
  columns?: string[]
  /** Reads in flight at once (default `storage.retrieval.concurrency`, else 4). */
  concurrency?: number
  /** Called as each symbol arrives (for progress bars). */
  onSymbol?: (symbol: string, rows: number) => void
}

export async function loadSymbols(storage: DataStorage, dataset: string, options: LoadOptions): Promise<Table> {
  const concurrency = options.concurrency ?? storage.retrieval?.concurrency ?? 4
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ValidationError([{ field: 'concurrency', message: `expected an integer ≥ 1, got ${concurrency}` }])
  }
  const symbols = [...new Set(options.symbols)].sort()
  const limit = pLimit(concurrency)
  const { start, end, columns } = options
  const parts = await allOwned(
    symbols.map((symbol) =>
      limit(async () => {
        const t = await storage.read(dataset, { symbols: [symbol], start, end, columns })
        options.onSymbol?.(symbol, t.length)
        return t
      }),
    ),
  )
  const schema = widestSchema(parts)
  if (!schema) return emptyTable(KEY_SCHEMA)
  return concat(parts, schema)
}

/** The schema of the first part that has the most columns (parts of one dataset differ only by columns added later). */
function widestSchema(parts: Table[]): Schema | null {
  let best: Schema | null = null
  for (const p of parts) if (!best || p.schema.length > best.length) best = p.schema
  return best
}
