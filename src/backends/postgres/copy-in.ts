import type { PgQueryable } from './pool-types.js'

/**
 * `COPY ... FROM STDIN` through a pooled client of `pg` or of `@neondatabase/serverless` (a fork
 * of `pg`): a "submittable" query object, the protocol hook pg-copy-streams uses. It sends the
 * COPY statement, and on CopyInResponse writes each chunk as a CopyData message straight to the
 * connection's stream (a TCP socket for `pg`, Neon's WebSocket-backed socket), then CopyDone.
 * Web-standard: the frames are built here as `Uint8Array`s, no `Buffer` is needed.
 *
 * Whether a client can do this is checked, not assumed (`canCopy`); callers fall back to
 * parameterized statements when it cannot.
 */

/** The part of a pg/Neon `Connection` a submittable drives. */
interface CopyConnection {
  query(text: string): void
  stream: CopyStream
}

/** A Node stream (`pg`: net.Socket) or Neon's socket (buffers in a WebSocket, coalesces writes in a timer). */
interface CopyStream {
  write(data: Uint8Array): boolean
  writableNeedDrain?: boolean
  once?(event: string, listener: () => void): unknown
  removeListener?(event: string, listener: () => void): unknown
  ws?: { bufferedAmount?: number } | null
}

/** A client that accepts submittables and exposes its connection. */
interface CopyClient {
  query(submittable: unknown): unknown
  connection: CopyConnection
}

/** Above this many bytes queued in a WebSocket, wait for it to drain. */
const WS_HIGH_WATER = 4 << 20

/** True when `db` is a `pg` or Neon client that can run COPY FROM STDIN. */
export function canCopy(db: PgQueryable): boolean {
  const c = (db as Partial<CopyClient>).connection
  return typeof c?.query === 'function' && typeof c.stream?.write === 'function'
}

function frame(type: number, payload: Uint8Array | null): Uint8Array {
  const n = payload?.length ?? 0
  const out = new Uint8Array(5 + n)
  out[0] = type
  new DataView(out.buffer).setInt32(1, 4 + n)
  if (payload) out.set(payload, 5)
  return out
}

const COPY_DONE = frame(0x63, null) // 'c'

function copyFail(message: string): Uint8Array {
  const text = new TextEncoder().encode(`${message.replaceAll('\u0000', ' ')}\u0000`)
  return frame(0x66, text) // 'f'
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Resolves when the stream can take more. A Node stream: after 'drain' when it asked for one
 * (or closed). Neon's socket: after a macrotask, so that its coalescing timer sends what was
 * written (writing on without yielding would re-copy its growing buffer), and while its
 * WebSocket holds more than `WS_HIGH_WATER` bytes.
 */
async function writable(stream: CopyStream): Promise<void> {
  if (stream.writableNeedDrain !== undefined) {
    if (!stream.writableNeedDrain || !stream.once || !stream.removeListener) return
    const { once, removeListener } = stream as Required<Pick<CopyStream, 'once' | 'removeListener'>>
    await new Promise<void>((resolve) => {
      const done = () => {
        for (const e of ['drain', 'close', 'error']) removeListener.call(stream, e, done)
        resolve()
      }
      for (const e of ['drain', 'close', 'error']) once.call(stream, e, done)
    })
    return
  }
  await sleep(0)
  while ((stream.ws?.bufferedAmount ?? 0) > WS_HIGH_WATER) await sleep(2)
}

class CopyFromStdin {
  callback?: (err: Error | null, rows?: number) => void
  private serverError: Error | null = null
  private localError: Error | null = null
  private rowCount = 0

  constructor(
    readonly text: string,
    private readonly chunks: Iterable<Uint8Array>,
  ) {}

  submit(connection: CopyConnection): void {
    connection.query(this.text)
  }

  handleCopyInResponse(connection: CopyConnection): void {
    void this.send(connection.stream)
  }

  private async send(stream: CopyStream): Promise<void> {
    try {
      for (const chunk of this.chunks) {
        if (this.serverError) return // the server left copy mode: it ignores anything more
        stream.write(frame(0x64, chunk)) // 'd'
        await writable(stream)
      }
      if (!this.serverError) stream.write(COPY_DONE)
    } catch (err) {
      this.localError = err instanceof Error ? err : new Error(String(err))
      if (this.serverError) return
      try {
        stream.write(copyFail(this.localError.message)) // the server answers with an error: then we finish
      } catch {
        // the connection is gone: the client errors the active query itself
      }
    }
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = Number(/(\d+)$/.exec(msg.text ?? '')?.[1] ?? 0)
  }

  /** A server error (pg drops the active query then: no ReadyForQuery reaches us) or a dead connection. */
  handleError(err: Error): void {
    this.serverError = err
    this.finish(this.localError ?? err)
  }

  handleReadyForQuery(): void {
    this.finish(this.localError ?? this.serverError)
  }

  private finish(err: Error | null): void {
    const cb = this.callback
    this.callback = undefined
    cb?.(err, this.rowCount)
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/**
 * Runs `text` (a `COPY ... FROM STDIN` statement) on `db`, streaming `chunks` as its data, and
 * resolves with the number of rows copied. `db` must pass `canCopy`. An error thrown while
 * producing a chunk aborts the COPY (CopyFail) and is what rejects.
 */
export function copyIn(db: PgQueryable, text: string, chunks: Iterable<Uint8Array>): Promise<number> {
  const q = new CopyFromStdin(text, chunks)
  return new Promise((resolve, reject) => {
    q.callback = (err, rows) => (err ? reject(err) : resolve(rows ?? 0))
    ;(db as unknown as CopyClient).query(q)
  })
}
