/**
 * `friday ingest`: files (CSV, NDJSON, JSON, Parquet, optionally gzip'd) streamed through the
 * HTTP body parsers into `storage.write`, one batch per file, with progress and a summary.
 *
 * Each file is one batch, so a bad row rejects the whole file and stores nothing of it. The
 * exception is a file of more than `chunkRows` records in `upsert` mode: it is written in
 * chunks of `chunkRows` records to bound memory. A rejected chunk then leaves the earlier
 * chunks stored, which is harmless only for upsert (re-running after the fix rewrites the same
 * rows and changes nothing). `append` would reject the re-run's earlier chunks as duplicates,
 * and `replace` deletes per batch time range, so a partly applied file would differ from the
 * whole: those modes always read the whole file as one batch.
 *
 * `-` reads standard input (with `--format`). Columns are read as `ColumnOptions` say (time
 * unit, renames, declared types, one symbol), exactly as the HTTP rows route reads them.
 */

import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import { StorageError, ValidationError } from '../core/errors.js'
import { checkDatasetName } from '../core/keys.js'
import type { DataStorage, InputColumns, Table, WriteMode } from '../core/types.js'
import { type ColumnOptions, checkColumnOptions } from '../formats/column-options.js'
import { type BodyFormat, parseBody } from '../formats/index.js'
import { isTable } from '../table/normalize.js'
import { type Chunk, chunkRecords } from './chunks.js'
import { CliError, formatError } from './errors.js'
import { detectFormat, expandInputs, type FormatChoice, type InputFile } from './files.js'
import { countBytes, createProgress, type Progress } from './progress.js'
import { countOf, formatBytes, formatCount, formatSeconds } from './text.js'

export const DEFAULT_CHUNK_ROWS = 500_000
/** Largest body one batch may have (the parser's `maxBytes`). */
export const MAX_BATCH_BYTES = 2 * 1024 ** 3

export interface IngestOptions {
  dataset: string
  mode: WriteMode
  format: FormatChoice
  /** upsert only: records per batch for CSV/NDJSON files. */
  chunkRows: number
  continueOnError: boolean
  /** Show the progress bar (stderr is a TTY and no `--quiet`). */
  progress: boolean
  quiet: boolean
  /** Time unit, renames, declared types, one symbol for every row. */
  columns?: ColumnOptions
  /** CSV cell separator (one character; `--format tsv` and `.tsv` files: a tab). */
  delimiter?: string
  /** Print the summary as one JSON object on stdout (`IngestSummary`). */
  json?: boolean
  /** Reports progress here instead of a bar (tests). */
  progressSink?: Progress
  /** Standard input, for `-` (tests may pass their own). */
  stdin?: NodeJS.ReadableStream
}

interface FileResult {
  rows: number
  partitions: string[]
}

/** `friday ingest --json`: what was done, for scripts. */
export interface IngestSummary {
  dataset: string
  mode: WriteMode
  files: { path: string; ok: boolean; rows: number; partitions: number; seconds: number; error?: string[] }[]
  filesIngested: number
  filesFailed: number
  filesNotAttempted: number
  rowsWritten: number
  partitions: number
  bytesRead: number
  seconds: number
  rowsBefore: number
  rowsAfter: number
}

/** A file that failed, with its lines already located (`file:line: message`). */
class FileFailure extends Error {
  constructor(readonly lines: string[]) {
    super(lines[0])
  }
}

/** Ingests the files; returns the exit code (1 when any file failed). */
export async function ingest(storage: DataStorage, patterns: string[], opts: IngestOptions): Promise<number> {
  checkDatasetName(opts.dataset)
  if (opts.columns) checkColumnOptions(opts.columns)
  const files = await expandInputs(patterns)
  const plans = files.map((file) => ({ file, ...detectFormat(file.path, opts.format) }))
  const before = (await storage.describe(opts.dataset))?.rows ?? 0

  const started = performance.now()
  const totalBytes = files.reduce((s, f) => s + f.bytes, 0)
  const progress = opts.progressSink ?? createProgress(totalBytes, files.length, opts.progress)
  const partitions = new Set<string>()
  const results: IngestSummary['files'] = []
  let rows = 0
  let bytesRead = 0
  let failed = 0
  let done = 0
  const counted: Progress = {
    ...progress,
    addBytes: (n) => {
      bytesRead += n
      progress.addBytes(n)
    },
  }
  try {
    for (const plan of plans) {
      const t0 = performance.now()
      try {
        const result = await ingestFile(storage, plan.file, plan, opts, counted)
        rows += result.rows
        for (const p of result.partitions) partitions.add(p)
        done++
        progress.fileDone()
        const seconds = (performance.now() - t0) / 1000
        results.push({ path: plan.file.path, ok: true, rows: result.rows, partitions: result.partitions.length, seconds })
        if (!opts.quiet)
          progress.log(
            `${plan.file.path}: ${countOf(result.rows, 'row')}, ${countOf(result.partitions.length, 'partition')} (${formatSeconds(performance.now() - t0)})`,
          )
      } catch (err) {
        failed++
        progress.fileDone()
        const lines = err instanceof FileFailure ? err.lines : [`${plan.file.path}: ${formatError(err)}`]
        const seconds = (performance.now() - t0) / 1000
        results.push({ path: plan.file.path, ok: false, rows: 0, partitions: 0, seconds, error: lines })
        for (const line of lines) progress.log(line)
        if (!opts.continueOnError) break
      }
    }
  } finally {
    progress.stop()
  }

  const ms = performance.now() - started
  const after = (await storage.describe(opts.dataset))?.rows ?? 0
  const skipped = files.length - done - failed
  if (opts.json) {
    const summary: IngestSummary = {
      dataset: opts.dataset,
      mode: opts.mode,
      files: results,
      filesIngested: done,
      filesFailed: failed,
      filesNotAttempted: skipped,
      rowsWritten: rows,
      partitions: partitions.size,
      bytesRead,
      seconds: ms / 1000,
      rowsBefore: before,
      rowsAfter: after,
    }
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
  } else {
    const rate = Math.round(rows / Math.max(ms / 1000, 1e-3))
    const out: string[] = [
      `ingested ${done} of ${countOf(files.length, 'file')} into '${opts.dataset}' (${opts.mode}): ` +
        `${countOf(rows, 'row')} written, ${countOf(partitions.size, 'partition')}, ${formatSeconds(ms)}, ${formatCount(rate)} rows/s` +
        ` (${formatBytes(bytesRead)} read)`,
    ]
    const delta = after - before
    const note = delta === 0 && rows > 0 ? `, unchanged: every row was already stored` : ''
    out.push(
      `dataset '${opts.dataset}': ${formatCount(before)} -> ${countOf(after, 'row')} (${delta >= 0 ? '+' : ''}${formatCount(delta)}${note})`,
    )
    process.stdout.write(`${out.join('\n')}\n`)
  }
  if (failed > 0) {
    const rest = skipped > 0 ? `; ${skipped} not attempted (use --continue-on-error to go on after a failure)` : ''
    process.stderr.write(`friday: ${countOf(failed, 'file')} failed${rest}\n`)
    return 1
  }
  return 0
}

async function ingestFile(
  storage: DataStorage,
  file: InputFile,
  how: { format: BodyFormat; gzip: boolean; delimiter?: string },
  opts: IngestOptions,
  progress: Progress,
): Promise<FileResult> {
  const { format, gzip } = how
  const delimiter = how.delimiter ?? opts.delimiter
  const parse = { maxBytes: MAX_BATCH_BYTES, columns: opts.columns, delimiter }
  const chunked = opts.mode === 'upsert' && (format === 'csv' || format === 'ndjson')
  if (!chunked && !gzip && file.bytes > MAX_BATCH_BYTES)
    throw new CliError(
      `${file.path}: ${formatBytes(file.bytes)} is over the ${formatBytes(MAX_BATCH_BYTES)} limit of one ${opts.mode} batch; split the file` +
        (format === 'csv' || format === 'ndjson' ? ' or use --mode upsert (written in chunks)' : ''),
    )
  const source = file.stdin ? (opts.stdin ?? process.stdin) : createReadStream(file.path)
  let body = (Readable.toWeb(source as Readable) as ReadableStream<Uint8Array>).pipeThrough(
    countBytes((n) => progress.addBytes(n)),
  )
  if (gzip) body = body.pipeThrough(new DecompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>)

  const partitions = new Set<string>()
  let rows = 0
  const writeBatch = async (data: InputColumns | Table, chunk?: Chunk) => {
    try {
      const result = await storage.write(opts.dataset, data, { mode: opts.mode })
      rows += result.rowsWritten
      progress.addRows(result.rowsWritten)
      for (const p of result.partitions) partitions.add(p.path)
    } catch (err) {
      throw locate(err, file.path, chunk, rows, opts.mode, 'write')
    }
  }

  if (format === 'csv' || format === 'ndjson') {
    const chunkRows = chunked ? opts.chunkRows : Number.POSITIVE_INFINITY
    let current: Chunk | undefined
    try {
      const onRecords = (n: number) => progress.readRows(n)
      for await (const chunk of chunkRecords(body, { kind: format, chunkRows, onRecords })) {
        current = chunk
        const data = await parseBody(chunk.body, format, parse)
        if (rowCount(data) > 0) await writeBatch(data, chunk)
      }
    } catch (err) {
      // a parse error, or a read error (also between chunks)
      if (err instanceof FileFailure) throw err
      throw locate(err, file.path, current, rows, opts.mode, 'parse')
    }
  } else {
    let data: InputColumns | Table
    try {
      const declaredLength = gzip || file.stdin ? undefined : file.bytes
      data = await parseBody(body, format, { ...parse, declaredLength })
    } catch (err) {
      throw locate(err, file.path, undefined, 0, opts.mode, 'parse')
    }
    progress.readRows(rowCount(data))
    if (rowCount(data) > 0) await writeBatch(data)
  }
  return { rows, partitions: [...partitions] }
}

function rowCount(data: InputColumns | Table): number {
  if (isTable(data)) return data.length
  for (const values of Object.values(data)) return values.length
  return 0
}

const MAX_ISSUE_LINES = 10

/**
 * The error as `file:line: message` lines: a line reported by the parser (shifted to the file's
 * numbering for later chunks), else the line where the reported row starts, else `row N`.
 */
function locate(
  err: unknown,
  path: string,
  chunk: Chunk | undefined,
  storedRows: number,
  mode: WriteMode,
  stage: 'parse' | 'write',
): FileFailure {
  const where = (line: number | undefined, row: number | undefined): string => {
    if (line !== undefined) return `${path}:${line + (chunk?.lineOffset ?? 0)}`
    if (row !== undefined) {
      const fromRow = chunk?.rowLines[row]
      return fromRow !== undefined ? `${path}:${fromRow}` : `${path}: row ${row + (chunk?.firstRow ?? 0)}`
    }
    return path
  }
  const lines: string[] = []
  if (err instanceof ValidationError && err.issues.length > 0) {
    for (const issue of err.issues.slice(0, MAX_ISSUE_LINES)) {
      const field = issue.field && issue.field !== 'body' && issue.field !== 'row' ? `field '${issue.field}': ` : ''
      // the HTTP parameter's hint, as this command's flag
      const message = issue.message.replaceAll('pass time_unit=', 'pass --time-unit ')
      lines.push(`${where(issue.line, issue.row)}: ${field}${message}`)
    }
    if (err.issues.length > MAX_ISSUE_LINES) lines.push(`${path}: ... and ${err.issues.length - MAX_ISSUE_LINES} more problems`)
  } else if (err instanceof StorageError && typeof err.details?.row === 'number') {
    lines.push(`${where(undefined, err.details.row)}: ${err.message}`)
  } else {
    lines.push(`${path}: ${formatError(err)}`)
  }
  // a parse failure or a 4xx from the write: refused before anything of the batch was committed;
  // anything else from the write (a store outage...) may come after some partitions were committed
  const refused =
    stage === 'parse' || err instanceof CliError || (err instanceof StorageError && err.status >= 400 && err.status < 500)
  const rerun = 'fix the cause and re-run: rows already stored are rewritten unchanged (upsert)'
  if (storedRows > 0)
    lines.push(
      `${path}: the first ${countOf(storedRows, 'row')} of this file ${storedRows === 1 ? 'was' : 'were'} already stored ` +
        `(upsert in chunks)${refused ? '' : ', and part of the failed chunk may be'}; ${rerun}`,
    )
  else if (refused) lines.push(`${path}: nothing from this file was stored`)
  else lines.push(`${path}: part of this file may have been stored before the failure${mode === 'upsert' ? `; ${rerun}` : ''}`)
  return new FileFailure(lines)
}
