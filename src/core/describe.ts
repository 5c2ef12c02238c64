/** The totals of `describe()`, summed over a dataset's partitions the same way by every backend. */

import { formatUs } from './time.js'
import type { DatasetDescription, Schema } from './types.js'

/** ISO-8601 of an epoch-µs bound; null stays null (an empty dataset or partition). */
export const isoOrNull = (us: number | null): string | null => (us === null ? null : formatUs(us))

/** Adds up partitions (`add`), then gives the dataset's description (`describe`). */
export class DescribeTotals {
  private readonly symbols = new Set<string>()
  private rows = 0
  private bytes = 0
  private partitions = 0
  private files = 0
  private min: number | null = null
  private max: number | null = null

  /** One partition: its counts, time range, the symbols in it and its number of files. */
  add(
    p: { rows: number; bytes: number; minTs: number | null; maxTs: number | null },
    symbols: Iterable<string>,
    files: number,
  ): void {
    this.partitions++
    this.rows += p.rows
    this.bytes += p.bytes
    this.files += files
    for (const s of symbols) this.symbols.add(s)
    if (p.minTs !== null && (this.min === null || p.minTs < this.min)) this.min = p.minTs
    if (p.maxTs !== null && (this.max === null || p.maxTs > this.max)) this.max = p.maxTs
  }

  describe(dataset: { name: string; schema: Schema; partitionBy: string[] }): DatasetDescription {
    return {
      name: dataset.name,
      schema: dataset.schema,
      partitionBy: dataset.partitionBy,
      symbols: [...this.symbols].sort(),
      firstTimestamp: isoOrNull(this.min),
      lastTimestamp: isoOrNull(this.max),
      rows: this.rows,
      bytes: this.bytes,
      partitions: this.partitions,
      files: this.files,
    }
  }
}
