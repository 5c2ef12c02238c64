/** Input files for `ingest`: glob expansion and format detection from the file name. */

import { stat } from 'node:fs/promises'
import fg from 'fast-glob'
import type { BodyFormat, OutputFormat } from '../formats/index.js'
import { CliError } from './errors.js'

export interface InputFile {
  path: string
  /** Its size; 0 for standard input (unknown). */
  bytes: number
  /** `-`: standard input. */
  stdin?: boolean
}

/** The argument that means standard input. */
export const STDIN = '-'

/**
 * Expands arguments (existing paths are taken literally, others as globs, so `data/*.csv`
 * works when the shell did not expand it), in argument order, each file once. An argument that
 * matches nothing is an error: a typo must not look like an empty ingest. `-` is standard input
 * (at most once).
 */
export async function expandInputs(args: string[]): Promise<InputFile[]> {
  const seen = new Set<string>()
  const out: InputFile[] = []
  for (const arg of args) {
    if (arg === STDIN) {
      if (seen.has(STDIN)) throw new CliError("'-' (standard input) is given twice")
      seen.add(STDIN)
      out.push({ path: STDIN, bytes: 0, stdin: true })
      continue
    }
    const literal = await stat(arg).catch(() => null)
    let paths: string[]
    if (literal?.isFile()) paths = [arg]
    else if (literal?.isDirectory()) throw new CliError(`'${arg}' is a directory: give files or a glob such as '${arg}/*.csv'`)
    else if (fg.isDynamicPattern(arg)) {
      paths = (await fg(arg, { onlyFiles: true, dot: false })).sort()
      if (paths.length === 0) throw new CliError(`no files match '${arg}'`)
    } else throw new CliError(`no such file: '${arg}'`)
    for (const path of paths) {
      if (seen.has(path)) continue
      seen.add(path)
      out.push({ path, bytes: literal?.isFile() ? literal.size : (await stat(path)).size })
    }
  }
  return out
}

/** `tsv` is CSV split at tabs. */
export type FormatChoice = BodyFormat | 'tsv' | 'auto'
export const INPUT_FORMATS: FormatChoice[] = ['auto', 'csv', 'tsv', 'ndjson', 'json', 'parquet']

const BY_EXTENSION: Record<string, OutputFormat> = {
  csv: 'csv',
  ndjson: 'ndjson',
  jsonl: 'ndjson',
  json: 'json',
  parquet: 'parquet',
}

/**
 * Format, compression and CSV delimiter of a file: from `--format`, else its extension
 * (`.csv.gz` is gzip-compressed CSV, `.tsv` tab-separated). Standard input needs `--format`.
 */
export function detectFormat(path: string, choice: FormatChoice): { format: BodyFormat; gzip: boolean; delimiter?: string } {
  const lower = path.toLowerCase()
  const gzip = lower.endsWith('.gz')
  const base = gzip ? lower.slice(0, -3) : lower
  if (path === STDIN && choice === 'auto')
    throw new CliError('reading standard input (-) needs --format (csv, tsv, ndjson, json or parquet)')
  if (choice === 'tsv') return { format: 'csv', gzip, delimiter: '\t' }
  if (choice !== 'auto') return { format: choice, gzip }
  if (base.endsWith('.tsv') || base.endsWith('.tab')) return { format: 'csv', gzip, delimiter: '\t' }
  const ext = base.slice(base.lastIndexOf('.') + 1)
  const format = base.includes('.') ? BY_EXTENSION[ext] : undefined
  if (!format)
    throw new CliError(
      `${path}: cannot tell the format from the extension (expected .csv, .tsv, .ndjson, .jsonl, .json or .parquet, optionally .gz); use --format`,
    )
  if (gzip && format === 'parquet')
    throw new CliError(`${path}: gzip-compressed Parquet is not supported (Parquet compresses itself)`)
  return { format, gzip }
}

/** Output format from a file name, or undefined when the extension says nothing. */
export function formatFromExtension(path: string): OutputFormat | undefined {
  const lower = path.toLowerCase()
  return BY_EXTENSION[lower.slice(lower.lastIndexOf('.') + 1)]
}
