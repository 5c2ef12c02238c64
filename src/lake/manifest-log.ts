/**
 * Versioned JSON documents (partition manifests, dataset descriptors, leases) committed with
 * conditional writes. Two strategies, chosen by what the store enforces:
 *
 * - `cas` (stores with If-Match, i.e. S3/R2/MinIO/Ceph): one key `<base>.json`, created with
 *   `If-None-Match: *` and replaced with `If-Match: <etag>`. A read is one GET.
 * - `chain` (stores with only create-if-absent, i.e. the local disk): immutable versions
 *   `<base>.v<20 digits>.json`, each created with create-if-absent, so exactly one writer wins
 *   each version number; `<base>.json` is a copy of a recent version (a hint, published right
 *   after the commit of every version from 2 on). Readers start from the hint (from version 1
 *   when there is none) and probe forward until a version is missing.
 *
 * Either way a commit is atomic, and a writer that loses a race learns it and retries from the
 * new state. Every document carries a unique `commitId` and the ids of the versions before it
 * (`prior`), so a writer whose commit outcome is ambiguous (a lost response, an HTTP 500, a 412
 * that may be the SDK's retry of its own PUT) re-reads and learns whether it landed even when
 * other writers have committed on top. When it cannot learn that, the commit is reported in
 * doubt (`CommitInDoubtError`), never as lost: a caller deletes the files of a commit only when
 * the log proved it lost and that it can never land later.
 */

import { sleep } from '../concurrency.js'
import { CommitInDoubtError, DeadlinePassedError, PreconditionFailedError, StoreError } from '../core/errors.js'
import type { ObjectStore } from '../stores/types.js'

export interface VersionedDoc {
  version: number
  commitId: string
  /** Commit ids of the versions before this one, newest first (written by the log). */
  prior?: string[]
}

export type CommitToken =
  | { kind: 'cas'; etag: string | null; version: number; prior?: string[] }
  | { kind: 'chain'; version: number; prior?: string[] }

export interface Loaded<T> {
  doc: T | null
  token: CommitToken
}

export type Strategy = 'cas' | 'chain'

export interface CommitOptions<T> {
  /**
   * Epoch ms after which this commit must not take effect (the files it names may be collected
   * by gc from then on). A commit that cannot be confirmed before it is fenced off: see `fence`.
   */
  deadline?: number
  /**
   * The document that fences off an unconfirmed commit past its deadline: the current state
   * committed again under a new id (`current` is null when the document does not exist yet).
   * Once it lands, the delayed commit can never land.
   */
  fence?: (current: T | null, version: number) => T
}

/** How many commit ids of earlier versions a document carries. */
export const PRIOR_IDS = 24
/** Rounds of re-reading (with backoff) to learn the outcome of an ambiguous commit. */
const RESOLVE_ROUNDS = 6

const enc = new TextEncoder()
const dec = new TextDecoder()

export function versionKey(base: string, version: number): string {
  return `${base}.v${String(version).padStart(20, '0')}.json`
}

function parse<T>(body: Uint8Array, key: string): T {
  try {
    return JSON.parse(dec.decode(body)) as T
  } catch (err) {
    throw new StoreError(`'${key}' is not a valid JSON document`, { key }, err)
  }
}

/** What a re-read says of a commit: it landed, another commit took its slot, or the slot is still open. */
type Verdict = 'ours' | 'other' | 'open' | 'unknown'

export class ManifestLog {
  constructor(
    private readonly store: ObjectStore,
    readonly strategy: Strategy,
  ) {}

  async load<T extends VersionedDoc>(base: string): Promise<Loaded<T>> {
    const key = `${base}.json`
    if (this.strategy === 'cas') {
      const head = await this.store.get(key)
      const doc = head ? parse<T>(head.body, key) : null
      return { doc, token: { kind: 'cas', etag: head?.etag ?? null, version: doc?.version ?? 0, prior: priorOf(doc) } }
    }
    // chain (the local disk): a partition's first version has no hint, so look before opening
    // (a lookup that finds nothing costs a fraction of an open that fails)
    const hint = (await this.store.head(key)) ? await this.store.get(key) : null
    return this.probe<T>(base, hint ? parse<T>(hint.body, key) : null)
  }

  /**
   * chain: the hint may lag behind; probe for newer versions (a HEAD: usually there is none).
   * Versions are deleted oldest first (`deleteVersions`), so when the probe stops at version k
   * and k still exists afterwards, k+1 never existed; if k is gone, gc passed a stale hint and the
   * newest version is found by listing.
   */
  private async probe<T extends VersionedDoc>(base: string, hint: T | null): Promise<Loaded<T>> {
    let doc = hint
    let version = hint?.version ?? 0
    for (;;) {
      const key = versionKey(base, version + 1)
      if (!(await this.store.head(key))) break
      const next = await this.store.get(key)
      if (!next) break
      const d = parse<T>(next.body, key)
      if (d.version !== version + 1) throw new StoreError(`'${key}' holds version ${d.version}`, { key })
      doc = d
      version++
    }
    if (version > 0 && !(await this.store.head(versionKey(base, version)))) return this.newestListed<T>(base)
    return { doc, token: { kind: 'chain', version, prior: priorOf(doc) } }
  }

  private async newestListed<T extends VersionedDoc>(base: string): Promise<Loaded<T>> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { objects } = await this.store.list(`${base}.v`)
      const newest = objects[objects.length - 1]
      if (!newest) break
      const got = await this.store.get(newest.key)
      if (!got) continue // collected meanwhile: list again
      const doc = parse<T>(got.body, newest.key)
      return this.probe<T>(base, doc)
    }
    throw new StoreError(`no readable version of '${base}'`, { key: base })
  }

  /**
   * Commits `doc` (whose `version` must be `token.version + 1`) if nobody committed since the
   * load that produced `token`. Returns true when it landed, false when another writer won (and
   * this commit can never land later). Throws `CommitInDoubtError` when neither could be learned.
   */
  async commit<T extends VersionedDoc>(
    base: string,
    doc: T,
    token: CommitToken,
    options: CommitOptions<T> = {},
  ): Promise<boolean> {
    if (doc.version !== token.version + 1) throw new Error(`commit of version ${doc.version} after ${token.version}`)
    const body = enc.encode(JSON.stringify({ ...doc, prior: token.prior ?? [] }))
    try {
      await this.put(base, doc.version, body, token, options.deadline)
      return true
    } catch (err) {
      // not sent, and never will be: as good as a lost race (the caller re-plans)
      if (err instanceof DeadlinePassedError) return false
      // A 412 can also be the SDK's retry of our own PUT that landed; any other error is
      // ambiguous. Either way: did our write land, and can it still?
      return this.resolve(base, doc, body, token, options, err)
    }
  }

  private put(base: string, version: number, body: Uint8Array, token: CommitToken, deadline?: number): Promise<unknown> {
    if (token.kind === 'cas') {
      return this.store.put(`${base}.json`, body, {
        ...(token.etag === null ? { ifNoneMatch: '*' as const } : { ifMatch: token.etag }),
        ...(deadline !== undefined ? { deadline } : {}),
      })
    }
    // the hint is refreshed by the same put; readers probe past a stale one. Version 1 gets
    // none: a reader without a hint probes from version 1, which costs it one HEAD, and saves
    // the writer a third file for every new partition (most of an ingest's partitions are new)
    return this.store.put(versionKey(base, version), body, {
      ifNoneMatch: '*',
      ...(version > 1 ? { alsoAs: `${base}.json` } : {}),
      ...(deadline !== undefined ? { deadline } : {}),
    })
  }

  private async resolve<T extends VersionedDoc>(
    base: string,
    doc: T,
    body: Uint8Array,
    token: CommitToken,
    options: CommitOptions<T>,
    first: unknown,
  ): Promise<boolean> {
    let last = first
    for (let round = 0; round < RESOLVE_ROUNDS; round++) {
      if (round > 0) await sleep(Math.min(2000, 50 * 2 ** round) * (0.5 + Math.random()))
      let verdict: Verdict
      try {
        verdict = await this.verdict(base, doc, token)
      } catch (err) {
        last = err
        continue
      }
      if (verdict === 'ours') return true
      if (verdict === 'other') return false
      if (verdict === 'unknown') break
      // open: our put has not landed (yet). Send it again while the deadline allows: it lands
      // now or is refused because the earlier one did; past the deadline, fence it off.
      if (options.deadline !== undefined && Date.now() >= options.deadline) {
        if (!options.fence) break
        try {
          const current = await this.load<T>(base)
          if (!sameState(current.token, token)) continue // the state moved: the next verdict decides
          const fence = options.fence(current.doc, token.version + 1)
          if (await this.commit(base, fence, token)) return false // ours can never land now
        } catch (err) {
          last = err
        }
        continue
      }
      try {
        await this.put(base, doc.version, body, token, options.deadline)
        return true
      } catch (err) {
        last = err
        if (err instanceof DeadlinePassedError && !options.fence) break
      }
    }
    if (last instanceof PreconditionFailedError) last = new StoreError('the conditional write was refused', undefined, last)
    throw new CommitInDoubtError(base, last, { version: doc.version, commitId: doc.commitId })
  }

  /** Reads the document back and says whether the commit of `doc` landed. */
  private async verdict(base: string, doc: VersionedDoc, token: CommitToken): Promise<Verdict> {
    if (token.kind === 'cas') {
      const got = await this.store.get(`${base}.json`)
      if (!got) return token.etag === null ? 'open' : 'unknown'
      const current = parse<VersionedDoc>(got.body, `${base}.json`)
      if (current.commitId === doc.commitId) return 'ours'
      if (token.etag !== null && unquote(got.etag) === unquote(token.etag)) return 'open'
      return fromHistory(current, doc)
    }
    const got = await this.store.get(versionKey(base, doc.version))
    if (got) return parse<VersionedDoc>(got.body, versionKey(base, doc.version)).commitId === doc.commitId ? 'ours' : 'other'
    // no such version: not committed yet, unless gc already collected it
    const { doc: current } = await this.load<VersionedDoc>(base)
    if (!current || current.version < doc.version) return 'open'
    return fromHistory(current, doc)
  }

  /** Deletes chain versions of `base` (oldest first, one at a time: see `probe`). */
  async deleteVersions(base: string, versions: number[]): Promise<void> {
    for (const v of [...versions].sort((a, b) => a - b)) await this.store.delete([versionKey(base, v)])
  }
}

function priorOf(doc: VersionedDoc | null): string[] {
  return doc ? [doc.commitId, ...(doc.prior ?? [])].slice(0, PRIOR_IDS) : []
}

/** Whether the current document's history says who holds `doc`'s version. */
function fromHistory(current: VersionedDoc, doc: VersionedDoc): Verdict {
  if (current.version < doc.version) return 'unknown'
  const prior = current.prior ?? []
  const back = current.version - doc.version // 0: the current one, 1: prior[0], ...
  if (back === 0) return 'other'
  if (back - 1 < prior.length) return prior[back - 1] === doc.commitId ? 'ours' : 'other'
  return prior.includes(doc.commitId) ? 'ours' : 'unknown'
}

function sameState(a: CommitToken, b: CommitToken): boolean {
  if (a.kind === 'cas' && b.kind === 'cas') return a.etag === b.etag
  return a.version === b.version
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '')
}
