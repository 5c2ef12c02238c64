/** `friday ingest` options: declared on the command, and turned into `IngestOptions`. */

import { type Command, InvalidArgumentError, Option } from 'commander'
import { TIME_UNITS, type TimeUnit } from '../core/time.js'
import type { WriteMode } from '../core/types.js'
import { type ColumnOptions, DECLARED_TYPES, type DeclaredType } from '../formats/column-options.js'
import { INPUT_FORMATS } from './files.js'
import { DEFAULT_CHUNK_ROWS, type IngestOptions } from './ingest.js'

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`)
    return n
  }
}

/** `A=B` → [A, B] (split at the last `=`, so a name may hold one); repeated flags add up. */
function pair(what: string) {
  return (value: string, previous: [string, string][] = []): [string, string][] => {
    const at = value.lastIndexOf('=')
    if (at <= 0 || at === value.length - 1) throw new InvalidArgumentError(`expected ${what}, got '${value}'`)
    return [...previous, [value.slice(0, at), value.slice(at + 1)]]
  }
}

/** One character; `\t` and `tab` mean a tab. */
function delimiter(value: string): string {
  const d = value === '\\t' || value.toLowerCase() === 'tab' ? '\t' : value
  if (d.length !== 1 || d === '"' || d === '\n' || d === '\r')
    throw new InvalidArgumentError(`expected one character (not a quote or a line break), or \\t, got '${value}'`)
  return d
}

/** Declares the ingest options on `cmd`. */
export function ingestCommandOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--mode <mode>', 'upsert: later rows replace equal (symbol, timestamp) keys; re-running is safe')
        .choices(['upsert', 'append', 'replace'])
        .default('upsert'),
    )
    .addOption(
      new Option('--format <format>', 'input format (needed for - : standard input)').choices(INPUT_FORMATS).default('auto'),
    )
    .addOption(
      new Option(
        '--time-unit <unit>',
        'unit of epoch numbers in the time column (default: config storage.ingest.time_unit, else ms, refusing values implausible as ms)',
      ).choices(TIME_UNITS),
    )
    .option('--symbol <symbol>', 'the symbol of every row, for files without a symbol column')
    .option('--time-column <name>', "the file's time column (stored as timestamp), e.g. Date")
    .option('--rename <from=to>', "rename a column, e.g. 'Adj Close=adj_close' (repeatable)", pair('from=to'))
    .option(
      '--type <column=type>',
      `declare a column's type (${DECLARED_TYPES.join(', ')}), e.g. volume=int64: values converted exactly or refused (repeatable)`,
      pair('column=type'),
    )
    .option('--delimiter <char>', 'CSV cell separator (default , ; \\t for tab, as --format tsv)', delimiter)
    .option(
      '--chunk-rows <n>',
      'upsert only: write CSV/NDJSON files in batches of this many rows',
      integer(1, 100_000_000),
      DEFAULT_CHUNK_ROWS,
    )
    .option('--continue-on-error', 'go on with the next file after a file fails (exit code stays 1)', false)
    .option('--json', 'print the summary as JSON on stdout', false)
    .option('-q, --quiet', 'no progress bar and no per-file lines', false)
}

interface ParsedOptions {
  dataset: string
  mode: string
  format: IngestOptions['format']
  timeUnit?: TimeUnit
  symbol?: string
  timeColumn?: string
  rename?: [string, string][]
  type?: [string, string][]
  delimiter?: string
  chunkRows: number
  continueOnError: boolean
  json: boolean
  quiet: boolean
}

/** The parsed flags (and the configured default time unit) as `IngestOptions`. */
export function ingestOptionsFrom(opts: ParsedOptions, configTimeUnit: TimeUnit | undefined): IngestOptions {
  const rename: Record<string, string> = {}
  for (const [from, to] of opts.rename ?? []) rename[from] = to
  if (opts.timeColumn !== undefined) rename[opts.timeColumn] = 'timestamp'
  const types: Record<string, DeclaredType> = {}
  for (const [name, type] of opts.type ?? []) types[name] = type as DeclaredType
  const columns: ColumnOptions = {
    timeUnit: opts.timeUnit ?? configTimeUnit,
    rename,
    types,
    symbol: opts.symbol,
  }
  return {
    dataset: opts.dataset,
    mode: opts.mode as WriteMode,
    format: opts.format,
    chunkRows: opts.chunkRows,
    continueOnError: opts.continueOnError,
    quiet: opts.quiet,
    json: opts.json,
    columns,
    delimiter: opts.delimiter,
    progress: !opts.quiet && !opts.json && process.stderr.isTTY === true,
  }
}
