/**
 * Versioned JSON documents (partition manifests, dataset descriptors) committed with
 * conditional writes. Two strategies, chosen by what the store enforces:
 *
 * - `cas` (stores with If-Match, i.e. S3/R2/MinIO/Ceph): one key `<base>.json`, created with
 *   `If-None-Match: *` and replaced with `If-Match: <etag>`. A read is one GET.
 * - `chain` (stores with only create-if-absent, i.e. the local disk): immutable versions
 *   `<base>.v<20 digits>.json`, each created with create-if-absent, so exactly one writer wins
 *   each version number; `<base>.json` is a copy of a recent version (a hint, published right
 *   after the commit). Readers start from the hint and probe forward until a version is missing.
 *
 * Either way a commit is atomic, and a writer that loses a race learns it and retries from the
 * new state. Every document carries a unique `commitId`, so a writer whose commit outcome is
 * ambiguous (network error, an HTTP 500 from a store that lost track) re-reads and checks.
 */

import { PreconditionFailedError } from '../errors.js'
import type { ObjectStore } from '../stores/types.js'

export interface VersionedDoc {
  version: number
  commitId: string
}

export type CommitToken = { kind: 'cas'; etag: string | null; version: number } | { kind: 'chain'; version: number }

export interface Loaded<T> {
  doc: T | null
  token: CommitToken
}

export type Strategy = 'cas' | 'chain'

const enc = new TextEncoder()
const dec = new TextDecoder()

export function versionKey(base: string, version: number): string {
  return `${base}.v${String(version).padStart(20, '0')}.json`
}

export class ManifestLog {
  constructor(
    private readonly store: ObjectStore,
    readonly strategy: Strategy,
  ) {}

  async load<T extends VersionedDoc>(base: string): Promise<Loaded<T>> {
    const head = await this.store.get(`${base}.json`)
    let doc = head ? (JSON.parse(dec.decode(head.body)) as T) : null
    if (this.strategy === 'cas') return { doc, token: { kind: 'cas', etag: head?.etag ?? null, version: doc?.version ?? 0 } }
    // chain: the hint may lag behind; probe for newer versions (a HEAD: usually there is none)
    let version = doc?.version ?? 0
    for (;;) {
      const key = versionKey(base, version + 1)
      if (!(await this.store.head(key))) break
      const next = await this.store.get(key)
      if (!next) break
      doc = JSON.parse(dec.decode(next.body)) as T
      version = doc.version
    }
    return { doc, token: { kind: 'chain', version } }
  }

  /**
   * Commits `doc` (whose `version` must be `token.version + 1`) if nobody committed since the
   * load that produced `token`. Returns false when another writer won.
   */
  async commit<T extends VersionedDoc>(base: string, doc: T, token: CommitToken): Promise<boolean> {
    if (doc.version !== token.version + 1) throw new Error(`commit of version ${doc.version} after ${token.version}`)
    const body = enc.encode(JSON.stringify(doc))
    try {
      if (token.kind === 'cas') {
        await this.store.put(`${base}.json`, body, token.etag === null ? { ifNoneMatch: '*' } : { ifMatch: token.etag })
        return true
      }
      // the hint is refreshed by the same put; readers probe past a stale one
      await this.store.put(versionKey(base, doc.version), body, { ifNoneMatch: '*', alsoAs: `${base}.json` })
    } catch (err) {
      // A 412 can also be the SDK's retry of our own PUT that landed; any other error is
      // ambiguous. Either way: did our write land?
      if (await this.isOurs(base, doc).catch(() => false)) return true
      if (err instanceof PreconditionFailedError) return false
      throw err
    }
    return true
  }

  private async isOurs(base: string, doc: VersionedDoc): Promise<boolean> {
    const key = this.strategy === 'cas' ? `${base}.json` : versionKey(base, doc.version)
    const got = await this.store.get(key)
    if (!got) return false
    return (JSON.parse(dec.decode(got.body)) as VersionedDoc).commitId === doc.commitId
  }
}
