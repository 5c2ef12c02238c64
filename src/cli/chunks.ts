/**
 * Splits a CSV or NDJSON byte stream into chunks of at most `chunkRows` records, each a stream
 * of its own that a whole-file parser can read (CSV chunks after the first get the header line
 * again), and remembers the file line where every data record starts, so an issue reported
 * for row `r` of a chunk can be shown as `file:line`.
 *
 * Record boundaries follow RFC 4180: a newline ends a CSV record unless it is inside quotes
 * (quote parity; `""` toggles twice). NDJSON has no raw newlines inside a value. Lines holding
 * only spaces, tabs or `\r` are blank: they are not data records (parsers skip them).
 */

const LF = 0x0a
const QUOTE = 0x22

export interface Chunk {
  /** The chunk's bytes (CSV: header first). Read it to the end before asking for the next chunk. */
  body: ReadableStream<Uint8Array>
  /** Index in the whole file of the chunk's first data record (0-based). */
  firstRow: number
  /** File line (1-based) where each data record of the chunk starts; complete once `body` is read. */
  rowLines: number[]
  /** Add to a line number reported for this chunk's body to get the file's line number. */
  lineOffset: number
}

export interface ChunkOptions {
  kind: 'csv' | 'ndjson'
  /** Records per chunk (default: no limit, one chunk). */
  chunkRows?: number
  /** Called as records are read (after each buffer, with how many ended in it): progress while a chunk is read. */
  onRecords?: (n: number) => void
}

export async function* chunkRecords(source: ReadableStream<Uint8Array>, options: ChunkOptions): AsyncGenerator<Chunk> {
  const csv = options.kind === 'csv'
  const limit = options.chunkRows ?? Number.POSITIVE_INFINITY
  const reader = source.getReader()
  let stash: Uint8Array | null = null
  let eof = false
  // scanner state, across buffers and chunks
  let line = 1 // current physical line
  let recordLine = 1 // line where the current record started
  let inQuotes = false
  let hasContent = false
  let headerDone = !csv
  const headerParts: Uint8Array[] = []
  let headerLines = 0
  let row = 0

  const next = async (): Promise<Uint8Array | null> => {
    if (stash) {
      const s = stash
      stash = null
      return s
    }
    if (eof) return null
    const { done, value } = await reader.read()
    if (done) {
      eof = true
      return null
    }
    return value
  }

  try {
    for (let index = 0; ; index++) {
      // peek: no bytes left means no further chunk (a header-only chunk would be empty)
      const first = await next()
      if (first === null) {
        if (index === 0) yield { body: new Blob([]).stream(), firstRow: 0, rowLines: [], lineOffset: 0 }
        return
      }
      stash = first
      const rowLines: number[] = []
      const startLine = line
      const firstRow = row
      let rowsInChunk = 0
      let reported = 0 // records of this chunk passed to onRecords
      let ended = false

      /** Ends the current record at a newline; true when the chunk is full. */
      const endRecord = (): boolean => {
        if (!headerDone) {
          headerDone = true
          headerLines = line - 1
        } else if (hasContent) {
          rowLines.push(recordLine)
          rowsInChunk++
          row++
        }
        recordLine = line
        hasContent = false
        return rowsInChunk >= limit
      }

      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          if (index > 0 && csv) for (const part of headerParts) controller.enqueue(part)
        },
        async pull(controller) {
          if (ended) return
          const buf = await next()
          if (buf === null) {
            // a last record without a trailing newline
            if (hasContent && headerDone) {
              rowLines.push(recordLine)
              row++
              hasContent = false
              options.onRecords?.(1)
            }
            ended = true
            controller.close()
            return
          }
          let pos = 0
          let cut = -1
          // the header starts the file, so in any buffer where it is pending it starts at byte 0
          const headerPending = !headerDone
          // the next quote at or after `pos`: found once per buffer, then moved forward (linear time)
          let quote = csv ? buf.indexOf(QUOTE) : -1
          while (pos < buf.length) {
            const nl = buf.indexOf(LF, pos)
            const end = nl === -1 ? buf.length : nl
            for (; quote !== -1 && quote < end; quote = buf.indexOf(QUOTE, quote + 1)) inQuotes = !inQuotes
            if (!hasContent)
              for (let i = pos; i < end; i++) {
                const b = buf[i]
                if (b !== 0x20 && b !== 0x09 && b !== 0x0d) {
                  hasContent = true
                  break
                }
              }
            if (nl === -1) break
            line++
            if (!inQuotes) {
              const wasHeader = !headerDone
              const full = endRecord()
              if (wasHeader) headerParts.push(buf.slice(0, nl + 1))
              if (full) {
                cut = nl + 1
                break
              }
            }
            pos = nl + 1
          }
          if (headerPending && !headerDone) headerParts.push(buf.slice())
          if (rowsInChunk > reported) {
            options.onRecords?.(rowsInChunk - reported)
            reported = rowsInChunk
          }
          if (cut === -1) {
            controller.enqueue(buf)
            return
          }
          if (cut > 0) controller.enqueue(buf.subarray(0, cut))
          if (cut < buf.length) stash = buf.subarray(cut)
          ended = true
          controller.close()
        },
      })
      const lineOffset = index === 0 ? 0 : startLine - headerLines - 1
      yield { body, firstRow, rowLines, lineOffset }
      if (!ended) throw new Error('chunkRecords: a chunk was not read to its end')
    }
  } finally {
    // stopped early (a rejected chunk): release the file
    if (!eof) await reader.cancel().catch(() => {})
    else reader.releaseLock()
  }
}
