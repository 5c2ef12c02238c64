/**
 * `ObjectStore` on the local filesystem (Node/Bun only). Keys map to files under `baseDir`;
 * every put writes a `.tmp-<random>` file in `<baseDir>/.tmp-friday/` (fsyncing it when `fsync`
 * is set), then publishes it atomically: `rename` for plain puts, `link` (exclusive create) for
 * `ifNoneMatch: '*'`. `ifMatch` cannot be made atomic with plain POSIX calls, so it is not
 * supported here.
 *
 * Reads of up to 1 MiB (manifests, symbol-day files) use synchronous calls: a read is a handful
 * of syscalls of microseconds each, and a thread-pool round trip per syscall costs more than the
 * syscall. Puts stay asynchronous: creating a file or directory (a new inode) is the slow part
 * of a write on a journaling filesystem, and the thread pool overlaps several of them.
 */

import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import {
  closeSync,
  fchmodSync,
  fstatSync,
  fsync as fsyncCb,
  open as openCb,
  openSync,
  readSync,
  statSync,
  write as writeCb,
  writeSync,
} from 'node:fs'
import { link, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { promisify } from 'node:util'
import { allOwned } from '../../concurrency.js'
import {
  ClosedError,
  DeadlinePassedError,
  PreconditionFailedError,
  StorageError,
  StoreCapabilityError,
} from '../../core/errors.js'
import type { ByteRange, GetResult, ListOptions, ListResult, ObjectInfo, ObjectStore, PutOptions } from '../../stores/types.js'
import { emptyStats } from '../../stores/types.js'

export interface LocalFsStoreOptions {
  /** Root directory; created by `ensureContainer()` and on the first put. */
  baseDir: string
  /** Mode of created directories (default `0o755`, subject to the umask). */
  dirMode?: number
  /** Mode of written files (default `0o644`, set explicitly, not subject to the umask). */
  fileMode?: number
  /**
   * fsync each file before publishing it (default false). Without it a committed write survives
   * any process crash (the page cache holds it) but not a power loss or kernel crash; with it,
   * every put waits for the disk.
   */
  fsync?: boolean
}

/** Reads of up to this many bytes use synchronous calls. */
const SYNC_MAX = 1024 * 1024

const TMP_PREFIX = '.tmp-'
/** How often a put retries when a concurrent `delete` pruned its fresh directory. */
const DIR_RACE_ATTEMPTS = 5
const DELETE_CONCURRENCY = 16
const STALE_TEMP_MS = 60 * 60 * 1000

const openAsync = promisify(openCb) as (path: string, flags: string, mode: number) => Promise<number>
const writeCbAsync = promisify(writeCb)
const writeAsync = async (fd: number, b: Uint8Array, off: number, len: number, pos: number): Promise<number> =>
  (await writeCbAsync(fd, b, off, len, pos)).bytesWritten
const fsyncAsync = promisify(fsyncCb)

const BAD_CHARS = /[\u0000-\u001f\u007f\\]/

function invalidKey(key: string, why: string): StorageError {
  return new StorageError(400, 'invalid_key', `invalid object key '${key.replace(BAD_CHARS, '?')}': ${why}`, { key })
}

/** Defence in depth: callers already encode keys, this guarantees nothing escapes `baseDir`. */
function checkKey(key: string, allowPrefix = false): string[] {
  if (key.startsWith('/')) throw invalidKey(key, 'must not start with /')
  if (BAD_CHARS.test(key)) throw invalidKey(key, 'must not contain backslashes or control characters')
  const segments = key.split('/')
  if (!allowPrefix && key === '') throw invalidKey(key, 'must not be empty')
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]
    // A list prefix may end with '/' (last segment empty) or be empty.
    if (s === '' && !(allowPrefix && i === segments.length - 1)) throw invalidKey(key, 'must not contain empty segments')
    if (s === '.' || s === '..') throw invalidKey(key, `must not contain '${s}' segments`)
    if (s.startsWith(TMP_PREFIX) && !(allowPrefix && i === segments.length - 1)) {
      throw invalidKey(key, `segments must not start with '${TMP_PREFIX}' (reserved for temp files)`)
    }
  }
  return segments
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code
}

function isMissing(err: unknown): boolean {
  const code = errCode(err)
  return code === 'ENOENT' || code === 'ENOTDIR'
}

function etagOf(st: { ino: bigint; mtimeNs: bigint; size: bigint }): string {
  return `${st.ino.toString(16)}-${st.mtimeNs.toString(16)}-${st.size.toString(16)}`
}

function infoOf(key: string, st: { ino: bigint; mtimeNs: bigint; size: bigint; mtimeMs: bigint }): ObjectInfo {
  return { key, size: Number(st.size), etag: etagOf(st), lastModified: new Date(Number(st.mtimeMs)) }
}

export function createLocalFsStore(options: LocalFsStoreOptions): ObjectStore & { readonly baseDir: string } {
  if (!options.baseDir) throw new StorageError(500, 'config_error', 'local store: baseDir is required')
  const baseDir = resolve(options.baseDir)
  const dirMode = options.dirMode ?? 0o755
  const fileMode = options.fileMode ?? 0o644
  const fsync = options.fsync ?? false
  const counters = emptyStats()
  /** Directories known to exist; a put that finds one gone (pruned by a delete) forgets it. */
  const knownDirs = new Set<string>()
  const tmpDir = join(baseDir, `${TMP_PREFIX}friday`)
  let closed = false

  const pathOf = (key: string): string => join(baseDir, ...checkKey(key))
  const open_ = () => {
    if (closed) throw new ClosedError()
  }

  async function head(key: string): Promise<ObjectInfo | null> {
    open_()
    const path = pathOf(key)
    counters.head++
    try {
      // a microsecond syscall, and a miss builds no exception (manifest readers probe with it)
      const st = statSync(path, { bigint: true, throwIfNoEntry: false })
      return st?.isFile() ? infoOf(key, st) : null
    } catch (err) {
      if (isMissing(err)) return null
      throw err
    }
  }

  /** Byte span [start, end) of a range over an object of `size` bytes. */
  function span(key: string, size: number, range?: ByteRange): [number, number] {
    if (!range) return [0, size]
    if ('suffix' in range) return [Math.max(0, size - range.suffix), size]
    if (range.offset < 0 || range.length < 0) throw new StorageError(416, 'invalid_range', `invalid range for '${key}'`)
    if (range.offset >= size && range.length > 0) {
      throw new StorageError(416, 'invalid_range', `range starts at ${range.offset}, '${key}' has ${size} bytes`, { key })
    }
    return [Math.min(range.offset, size), Math.min(size, range.offset + range.length)]
  }

  /** Synchronous read when the wanted span is small; `undefined` means "use the async path". */
  function getSync(key: string, path: string, range?: ByteRange): GetResult | null | undefined {
    let fd: number
    try {
      fd = openSync(path, 'r')
    } catch (err) {
      if (isMissing(err) || errCode(err) === 'EISDIR') return null
      throw err
    }
    try {
      const st = fstatSync(fd, { bigint: true })
      if (!st.isFile()) return null
      const [start, end] = span(key, Number(st.size), range)
      if (end - start > SYNC_MAX) return undefined
      const body = new Uint8Array(end - start)
      let filled = 0
      while (filled < body.length) {
        const n = readSync(fd, body, filled, body.length - filled, start + filled)
        if (n === 0) break
        filled += n
      }
      counters.bytesRead += filled
      return { ...infoOf(key, st), body: filled === body.length ? body : body.subarray(0, filled) }
    } finally {
      closeSync(fd)
    }
  }

  async function get(key: string, range?: ByteRange): Promise<GetResult | null> {
    open_()
    const path = pathOf(key)
    counters.get++
    const quick = getSync(key, path, range)
    if (quick !== undefined) return quick
    let fh: Awaited<ReturnType<typeof open>>
    try {
      fh = await open(path, 'r')
    } catch (err) {
      if (isMissing(err) || errCode(err) === 'EISDIR') return null
      throw err
    }
    try {
      const st = await fh.stat({ bigint: true })
      if (!st.isFile()) return null
      const [start, end] = span(key, Number(st.size), range)
      const body = new Uint8Array(end - start)
      let filled = 0
      while (filled < body.length) {
        const { bytesRead } = await fh.read(body, filled, body.length - filled, start + filled)
        if (bytesRead === 0) break // cannot happen: published files are never modified in place
        filled += bytesRead
      }
      counters.bytesRead += filled
      return { ...infoOf(key, st), body: filled === body.length ? body : body.subarray(0, filled) }
    } finally {
      await fh.close()
    }
  }

  /** Removes temp files a killed process left (older than an hour: no put takes that long). */
  async function sweepTemps(): Promise<void> {
    const cutoff = Date.now() - STALE_TEMP_MS
    for (const e of await readDir(tmpDir)) {
      if (!e.isFile() || !e.name.startsWith(TMP_PREFIX)) continue
      const path = join(tmpDir, e.name)
      try {
        if ((await stat(path)).mtimeMs < cutoff) await unlink(path)
      } catch {} // gone meanwhile, or not ours to remove: harmless either way
    }
  }

  /** Creates `dir` (and its parents) unless known to exist. */
  async function ensureDir(dir: string): Promise<void> {
    if (knownDirs.has(dir)) return
    await mkdir(dir, { recursive: true, mode: dirMode })
    knownDirs.add(dir)
  }

  /**
   * Writes `body` to a fresh temp file in `<baseDir>/.tmp-friday/` (same filesystem, so it can
   * be linked or renamed into place; never inside a data directory, where a file a crash left
   * would break outside readers that read a whole directory); returns its name and the etag it
   * will carry.
   */
  async function writeTemp(body: Uint8Array): Promise<{ tmp: string; etag: string }> {
    if (!knownDirs.has(tmpDir)) {
      await ensureDir(tmpDir)
      await sweepTemps()
    }
    const tmp = join(tmpDir, `${TMP_PREFIX}${randomBytes(12).toString('hex')}`)
    // creating the inode is the slow part: async, so several overlap in the thread pool
    const fd = await openAsync(tmp, 'wx', fileMode)
    try {
      // the rest are microsecond syscalls: synchronous for small bodies
      let written = 0
      while (written < body.length) {
        written +=
          body.length - written > SYNC_MAX
            ? await writeAsync(fd, body, written, body.length - written, written)
            : writeSync(fd, body, written, body.length - written, written)
      }
      if (fsync) await fsyncAsync(fd)
      let st = fstatSync(fd, { bigint: true })
      if ((Number(st.mode) & 0o777) !== fileMode) {
        fchmodSync(fd, fileMode) // the umask took bits away
        st = fstatSync(fd, { bigint: true })
      }
      closeSync(fd)
      // rename/link keep inode and mtime, so this is the etag of the published object.
      return { tmp, etag: etagOf(st) }
    } catch (err) {
      try {
        closeSync(fd)
      } catch {}
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  async function put(key: string, body: Uint8Array, opts: PutOptions = {}): Promise<{ etag: string }> {
    open_()
    const path = pathOf(key)
    if (opts.ifMatch !== undefined) {
      throw new StoreCapabilityError(
        `local store ${location} does not support ifMatch (compare-and-swap) writes; only ifNoneMatch '*'`,
        { key },
      )
    }
    const alsoPath = opts.alsoAs === undefined ? undefined : pathOf(opts.alsoAs)
    counters.put++
    const dir = dirname(path)
    const { tmp, etag } = await writeTemp(body)
    for (let attempt = 1; ; attempt++) {
      let linked = false
      try {
        try {
          await ensureDir(dir)
        } catch (err) {
          // A concurrent delete pruned a parent while mkdir walked down: walk again.
          const code = errCode(err)
          if ((code === 'ENOENT' || code === 'ENOTDIR') && attempt < DIR_RACE_ATTEMPTS) continue
          throw err
        }
        if (opts.deadline !== undefined && Date.now() >= opts.deadline) throw new DeadlinePassedError(key)
        // asynchronous: a directory entry in another directory is a journaled metadata update,
        // slow enough that the main thread is better off encoding the next file meanwhile
        if (opts.ifNoneMatch === '*') {
          await link(tmp, path)
          linked = true
        } else await rename(tmp, path)
        counters.bytesWritten += body.length
      } catch (err) {
        // The target directory vanished (a concurrent delete pruned it): create it again.
        if (errCode(err) === 'ENOENT' && attempt < DIR_RACE_ATTEMPTS) {
          knownDirs.delete(dir)
          continue
        }
        await unlink(tmp).catch(() => {})
        if (err instanceof DeadlinePassedError) throw err
        if (errCode(err) === 'EEXIST' && opts.ifNoneMatch === '*') throw new PreconditionFailedError(key, err)
        throw err
      }
      if (linked) await unlink(tmp).catch(() => {})
      // A copy, not a second name of the same inode: writing one in place must not change the other.
      if (alsoPath !== undefined) await put(opts.alsoAs!, body).catch(() => undefined)
      return { etag }
    }
  }

  /** Removes now-empty directories from `dir` up to (not including) `baseDir`. */
  async function prune(dir: string): Promise<void> {
    while (dir !== baseDir && dir.startsWith(baseDir + sep)) {
      try {
        await rmdir(dir)
        knownDirs.delete(dir)
      } catch {
        return // ENOTEMPTY, ENOENT, EEXIST, EBUSY: someone else is using or already removed it
      }
      dir = dirname(dir)
    }
  }

  async function del(keys: string[]): Promise<void> {
    open_()
    const paths = keys.map(pathOf)
    if (paths.length === 0) return
    counters.delete++
    let next = 0
    const worker = async () => {
      while (next < paths.length) {
        const path = paths[next++]
        try {
          await unlink(path)
        } catch (err) {
          if (isMissing(err)) continue
          // Linux says EISDIR, macOS EPERM for a key naming a directory: no such object.
          const code = errCode(err)
          if ((code === 'EISDIR' || code === 'EPERM') && (await stat(path).catch(() => null))?.isDirectory()) continue
          throw err
        }
        await prune(dirname(path))
      }
    }
    await allOwned(Array.from({ length: Math.min(DELETE_CONCURRENCY, paths.length) }, worker))
  }

  async function readDir(dir: string): Promise<Dirent[]> {
    try {
      return await readdir(dir, { withFileTypes: true })
    } catch (err) {
      if (isMissing(err)) return []
      throw err
    }
  }

  /** All file keys under `dir` (whose key prefix is `keyPrefix`), recursively. */
  async function walk(dir: string, keyPrefix: string, namePrefix: string, out: ObjectInfo[]): Promise<void> {
    const entries = await readDir(dir)
    await Promise.all(
      entries.map(async (e) => {
        if (e.name.startsWith(TMP_PREFIX) || !e.name.startsWith(namePrefix)) return
        const key = keyPrefix + e.name
        const path = join(dir, e.name)
        if (e.isDirectory()) return walk(path, `${key}/`, '', out)
        if (!e.isFile()) return
        try {
          out.push(infoOf(key, await stat(path, { bigint: true })))
        } catch (err) {
          if (!isMissing(err)) throw err // deleted while listing
        }
      }),
    )
  }

  async function list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    open_()
    const segments = checkKey(prefix, true)
    if (opts.delimiter !== undefined && opts.delimiter !== '/') {
      throw new StorageError(400, 'invalid_delimiter', `local store lists only with delimiter '/', got '${opts.delimiter}'`)
    }
    counters.list++
    const namePrefix = segments[segments.length - 1]
    const dirKey = prefix.slice(0, prefix.length - namePrefix.length) // '' or ends with '/'
    const dir = join(baseDir, ...segments.slice(0, -1))
    const after = opts.startAfter ?? ''
    const objects: ObjectInfo[] = []
    const prefixes: string[] = []
    if (opts.delimiter === '/') {
      const entries = await readDir(dir)
      await Promise.all(
        entries.map(async (e) => {
          if (e.name.startsWith(TMP_PREFIX) || !e.name.startsWith(namePrefix)) return
          const key = dirKey + e.name
          const path = join(dir, e.name)
          if (e.isDirectory()) {
            const p = `${key}/`
            // Like S3: a common prefix shows up if any key under it sorts after startAfter.
            if (p > after) prefixes.push(p)
            else if (after.startsWith(p)) {
              const inner: ObjectInfo[] = []
              await walk(path, p, '', inner)
              if (inner.some((o) => o.key > after)) prefixes.push(p)
            }
          } else if (e.isFile() && key > after) {
            try {
              objects.push(infoOf(key, await stat(path, { bigint: true })))
            } catch (err) {
              if (!isMissing(err)) throw err
            }
          }
        }),
      )
    } else {
      await walk(dir, dirKey, namePrefix, objects)
    }
    const filtered = after ? objects.filter((o) => o.key > after) : objects
    filtered.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    prefixes.sort()
    return { objects: filtered, prefixes }
  }

  const location = `file://${baseDir}`

  return {
    baseDir,
    location,
    capabilities: { ifNoneMatch: true, ifMatch: false },
    get,
    head,
    put,
    delete: del,
    list,
    async ensureContainer() {
      open_()
      await mkdir(baseDir, { recursive: true, mode: dirMode })
    },
    stats: () => ({ ...counters }),
    async close() {
      closed = true
    },
  }
}
