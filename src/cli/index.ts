/** The `friday` command line (Node only): serve the HTTP API, ingest files, query and list datasets. */

import { readFileSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { parseConfig } from '../config/load.js'
import { BACKEND_NAMES } from '../config/schema.js'
import { type GlobalOptions, loadContext, withStorage } from './context.js'
import { CliError, formatError } from './errors.js'
import { ingest } from './ingest.js'
import { ingestCommandOptions, ingestOptionsFrom } from './ingest-args.js'
import { listDatasets, listPartitions } from './ls.js'
import { maintain } from './maintain.js'
import { OUTPUT_FORMATS, query } from './query.js'
import { serve } from './serve.js'

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`)
    return n
  }
}

/** `A,B` and repeated flags both add to the list. */
function list(value: string, previous: string[] | undefined): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  return [...(previous ?? []), ...items]
}

/** The program; `result.code` holds the exit code an action chose. */
export function buildProgram(result: { code: number }): Command {
  const program = new Command('friday')
    .description('Market-data lake: serve the HTTP API, ingest files, query and list datasets.')
    .version(VERSION, '-V, --version')
    .option('--config <file>', 'JSON config file (the createStorage config; validated)')
    .option('--data-dir <dir>', 'local lake directory (sets DATA_DIR)')
    .addOption(new Option('--backend <name>', 'storage backend (sets STORAGE_BACKEND)').choices(BACKEND_NAMES))
    .addHelpText(
      'after',
      `
Storage comes from --config, then the environment (STORAGE_BACKEND, DATA_DIR, S3_BUCKET,
S3_PREFIX, AWS_ENDPOINT_URL, DATABASE_URL, MONGODB_URL, ...), then --data-dir/--backend;
default: local Parquet in ./data. --backend postgres needs DATABASE_URL (or storage.postgres.url
in --config), --backend mongodb needs MONGODB_URL (or storage.mongodb.url).
serve listens on --host/--port, else $HOST/$PORT, else 127.0.0.1:8787.

Exit codes: 0 success, 1 failure (including an unknown dataset), 2 usage error.

Examples:
  friday ingest 'data/*.csv' --dataset bars_1m
  friday query --dataset bars_1m --symbols AAPL,EUR/USD --start 2024-01-02 --end 2024-01-03 --format csv
  friday query --dataset bars_1m --out bars.parquet
  friday ls bars_1m
  friday maintain --dry-run
  friday serve --port 8787`,
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()

  const globals = (cmd: Command) => cmd.optsWithGlobals<GlobalOptions>()

  program
    .command('serve')
    .description('run the HTTP API (a non-loopback --host requires API_TOKENS)')
    .option('--host <host>', 'interface to listen on (default: $HOST, else 127.0.0.1)')
    .option('--port <port>', 'port to listen on, 0: any free port (default: $PORT, else 8787)', integer(0, 65535))
    .action(async (opts: { host?: string; port?: number }, cmd: Command) => {
      const ctx = await loadContext(globals(cmd))
      await serve(ctx, opts)
    })

  const ingestCmd = program
    .command('ingest')
    .description('write CSV, TSV, NDJSON, JSON or Parquet files (optionally .gz; - for standard input) into a dataset')
    .argument('<files...>', 'files or globs (quoted globs are expanded here: "data/*.csv")')
    .requiredOption('-d, --dataset <name>', 'dataset to write into')
  ingestCommandOptions(ingestCmd).action(async (files: string[], opts, cmd: Command) => {
    const ctx = await loadContext(globals(cmd))
    const timeUnit = parseConfig(ctx.config, ctx.env).storage.ingest.time_unit
    result.code = await withStorage(ctx, (storage) => ingest(storage, files, ingestOptionsFrom(opts, timeUnit)))
  })

  program
    .command('query')
    .description('read rows (sorted by symbol, timestamp) to stdout or a file')
    .requiredOption('-d, --dataset <name>', 'dataset to read')
    .option('--symbols <list>', 'symbols, comma-separated or repeated', list)
    .option('--start <time>', 'inclusive start: ISO-8601 date/date-time or epoch ms')
    .option('--end <time>', 'exclusive end: ISO-8601 date/date-time or epoch ms')
    .option('--columns <list>', 'columns besides symbol and timestamp, comma-separated', list)
    .option('--limit <n>', 'at most this many rows', integer(0, Number.MAX_SAFE_INTEGER))
    .addOption(new Option('--format <format>', 'output format (default: from --out, else csv)').choices(OUTPUT_FORMATS))
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .action(async (opts, cmd: Command) => {
      const ctx = await loadContext(globals(cmd))
      await withStorage(ctx, (storage) => query(storage, opts))
    })

  program
    .command('ls')
    .description('list datasets, or the partitions of one dataset')
    .argument('[dataset]', 'show this dataset and its partitions')
    .option('--json', 'print JSON', false)
    .action(async (dataset: string | undefined, opts: { json: boolean }, cmd: Command) => {
      const ctx = await loadContext(globals(cmd))
      const text = await withStorage(ctx, (storage) =>
        dataset ? listPartitions(storage, dataset, opts.json) : listDatasets(storage, opts.json),
      )
      process.stdout.write(`${text}\n`)
    })

  program
    .command('maintain')
    .description('rotate, compact, archive and expire under the file_rotation policy (for cron)')
    .option('-d, --dataset <name>', 'only this dataset (default: all)')
    .option('--dry-run', 'report what would be done, change nothing', false)
    .option('--json', 'print the report as JSON', false)
    .option('-q, --quiet', 'no progress bar and no per-dataset lines', false)
    .action(async (opts: { dataset?: string; dryRun: boolean; json: boolean; quiet: boolean }, cmd: Command) => {
      const ctx = await loadContext(globals(cmd))
      const rotation = parseConfig(ctx.config, ctx.env).storage.file_rotation
      result.code = await withStorage(ctx, (storage) =>
        maintain(storage, { ...opts, rotation, progress: !opts.quiet && !opts.json && process.stderr.isTTY === true }),
      )
    })

  return program
}

/** Runs the CLI; resolves to the exit code (2: usage error, 1: failure). */
export async function main(argv: string[] = process.argv): Promise<number> {
  const result = { code: 0 }
  const program = buildProgram(result)
  try {
    await program.parseAsync(argv)
    return result.code
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander printed the message; help and version exit 0, usage errors 2
      return err.exitCode === 0 ? 0 : 2
    }
    process.stderr.write(`friday: ${formatError(err)}\n`)
    if (process.env.FRIDAY_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
    return err instanceof CliError ? err.exitCode : 1
  }
}
