/**
 * The ingest progress bar (cli-progress, on stderr): files, rows read (advancing while a file is
 * read, CSV and NDJSON), rows written, rows/s and an ETA by bytes read.
 */

import cliProgress from 'cli-progress'

export interface Progress {
  /** Bytes of input read so far (drives percentage and ETA). */
  addBytes(n: number): void
  /** Records read so far (CSV/NDJSON, as the bytes are scanned; before any of them is written). */
  readRows(n: number): void
  /** Rows written (after each batch). */
  addRows(n: number): void
  /** A file finished (or failed). */
  fileDone(): void
  /** Prints a line above the bar (or plainly when there is no bar). */
  log(line: string): void
  stop(): void
}

/** A bar when `enabled` (stderr is a TTY and not `--quiet`); otherwise lines go straight to stderr. */
export function createProgress(totalBytes: number, totalFiles: number, enabled: boolean): Progress {
  if (!enabled) {
    return {
      addBytes() {},
      readRows() {},
      addRows() {},
      fileDone() {},
      log: (line) => process.stderr.write(`${line}\n`),
      stop() {},
    }
  }
  const multi = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format:
        ' {bar} {percentage}% | files {files}/{totalFiles} | {read} rows read | {rows} written | {rate} rows/s | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      barsize: 24,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  )
  const started = performance.now()
  let files = 0
  let rows = 0
  let read = 0
  let bytes = 0
  const payload = () => ({
    files,
    totalFiles,
    // a format read whole (JSON, Parquet) counts its rows once written
    read: Math.max(read, rows).toLocaleString('en-US'),
    rows: rows.toLocaleString('en-US'),
    rate: Math.round(Math.max(read, rows) / Math.max((performance.now() - started) / 1000, 1e-3)).toLocaleString('en-US'),
  })
  // cli-progress needs a total > 0
  const bar = multi.create(Math.max(totalBytes, 1), 0, payload())
  return {
    addBytes(n) {
      bytes += n
      bar.update(bytes, payload())
    },
    readRows(n) {
      read += n
      bar.update(bytes, payload())
    },
    addRows(n) {
      rows += n
      bar.update(bytes, payload())
    },
    fileDone() {
      files++
      bar.update(bytes, payload())
    },
    log(line) {
      multi.log(`${line}\n`)
    },
    stop() {
      bar.update(bytes, payload())
      multi.update() // flushes lines logged since the last redraw (stop() would drop them)
      multi.stop()
    },
  }
}

/** Passes bytes through, reporting how many went by. */
export function countBytes(onBytes: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      onBytes(chunk.byteLength)
      controller.enqueue(chunk)
    },
  })
}
