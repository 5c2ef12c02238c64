/** `friday query`: a filtered scan, encoded by the HTTP layer's streaming encoders, to stdout or a file. */

import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeReadableStream } from 'node:stream/web'
import { nativeCodecs } from '../backends/node/native-codecs.js'
import type { DataStorage, ScanOptions } from '../core/types.js'
import { type OutputFormat, tableResponse } from '../formats/index.js'
import type { ParquetCodecs } from '../parquet/index.js'
import { requireDataset } from './context.js'
import { CliError } from './errors.js'
import { formatFromExtension } from './files.js'

export const OUTPUT_FORMATS: OutputFormat[] = ['json', 'ndjson', 'csv', 'parquet']

export interface QueryOptions {
  dataset: string
  symbols?: string[]
  start?: string
  end?: string
  columns?: string[]
  limit?: number
  format?: OutputFormat
  out?: string
  /** Page codecs of Parquet output (default `nativeCodecs()`: native Snappy where available). */
  codecs?: ParquetCodecs
}

/** `--start`/`--end`: digits are epoch milliseconds, anything else an ISO-8601 date or date-time. */
export function timeArg(value: string | undefined): string | number | undefined {
  if (value === undefined) return undefined
  return /^-?\d+$/.test(value) ? Number(value) : value
}

export async function query(storage: DataStorage, opts: QueryOptions): Promise<void> {
  let format = opts.format
  if (!format && opts.out) {
    format = formatFromExtension(opts.out)
    if (!format) throw new CliError(`cannot tell the output format from '${opts.out}': use --format json|ndjson|csv|parquet`)
  }
  format ??= 'csv'
  if (!opts.out && format === 'parquet' && process.stdout.isTTY)
    throw new CliError('refusing to write Parquet to a terminal: use --out <file.parquet> or redirect stdout')

  await requireDataset(storage, opts.dataset)

  const scan: ScanOptions = {
    symbols: opts.symbols,
    start: timeArg(opts.start),
    end: timeArg(opts.end),
    columns: opts.columns,
    limit: opts.limit,
  }
  // the first batch is read before any output, so a bad filter (an unparsable --start, an
  // unknown column) is one error line on stderr, not an error record in the output
  const it = storage.scan(opts.dataset, scan)[Symbol.asyncIterator]()
  const first = await it.next()
  const batches = (async function* () {
    if (first.done) return
    yield first.value
    yield* { [Symbol.asyncIterator]: () => it }
  })()
  const body = tableResponse(batches, format, { codecs: opts.codecs ?? nativeCodecs() }).body
  if (!body) return
  const source = Readable.fromWeb(body as unknown as NodeReadableStream<Uint8Array>)

  if (opts.out) {
    // written beside the target and renamed at the end: a failed query leaves no partial file
    const tmp = `${opts.out}.${process.pid}.tmp`
    try {
      await pipeline(source, createWriteStream(tmp))
      await rename(tmp, opts.out)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return
  }
  try {
    await pipeline(source, process.stdout, { end: false })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return // the reader went away (e.g. `| head`)
    throw err
  }
}
