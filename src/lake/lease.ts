/**
 * The maintenance lease of one dataset: a versioned document `_friday/<dataset>/_maintenance/lease`
 * committed through the manifest log, so it works with what each store enforces (`If-Match` on
 * S3, create-if-absent of the next version on the local disk): of two runs taking it at once,
 * exactly one commits the next version. A lease expires `ttlMs` after its last renewal; a run
 * renews it as it goes (`hold`, before each partition and each commit) and gives up the dataset
 * when the lease changed hands (someone took over an expired lease). Expiry uses the real clock, never the injectable one. A run of the same
 * owner (a restarted job) takes over a held lease at once; every run has its own `runId`, checks
 * the lease right before each commit (`hold`), and the run that takes over fences the commits a
 * stalled run may still have in flight (see `journal.ts`), so two runs never both commit.
 */

import { newId } from '../core/ids.js'
import { metaDir } from '../core/layout.js'
import type { LakeContext } from './context.js'
import { type CommitToken, versionKey } from './manifest-log.js'

export interface LeaseDoc {
  format: 'friday.maintenance-lease'
  formatVersion: 1
  version: number
  commitId: string
  owner: string
  /** Unique per run: two runs of one owner (a restarted job) are told apart. */
  runId: string
  acquiredAt: string
  /** Epoch ms; the lease is free after it, or once `released`. */
  expiresAt: number
  released: boolean
}

export const leaseBase = (ds: string): string => `${metaDir(ds)}/_maintenance/lease`

/** Chain versions kept besides the newest (older ones are deleted as new ones are committed). */
const KEEP = 4

export class Lease {
  private renewedAt = Date.now()

  private constructor(
    private readonly ctx: LakeContext,
    private readonly ds: string,
    private doc: LeaseDoc,
    private token: CommitToken,
    readonly ttlMs: number,
  ) {}

  /** Takes the lease, or returns who holds it. */
  static async acquire(
    ctx: LakeContext,
    ds: string,
    owner: string,
    ttlMs: number,
  ): Promise<{ lease: Lease; held: null } | { lease: null; held: LeaseDoc }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { doc, token } = await ctx.log.load<LeaseDoc>(leaseBase(ds))
      if (doc && !doc.released && doc.expiresAt > Date.now() && doc.owner !== owner) return { lease: null, held: doc }
      const next = leaseDoc(token.version + 1, owner, ttlMs)
      if (await ctx.log.commit(leaseBase(ds), next, token)) {
        const lease = new Lease(ctx, ds, next, nextToken(token, next), ttlMs)
        await lease.prune()
        return { lease, held: null }
      }
    }
    const { doc } = await ctx.log.load<LeaseDoc>(leaseBase(ds))
    return { lease: null, held: doc! }
  }

  get owner(): string {
    return this.doc.owner
  }

  /**
   * Right before a commit: re-reads the lease (one GET) and says whether this run still holds
   * it (renewing it when a third of the TTL has passed). A run that stalled and was taken over
   * learns it here; one taken over after this check is fenced by the run that took over.
   */
  async hold(): Promise<boolean> {
    const current = await this.ctx.log.load<LeaseDoc>(leaseBase(this.ds))
    if (current.doc?.commitId !== this.doc.commitId) return false
    if (Date.now() - this.renewedAt < this.ttlMs / 3) return true
    return this.commit(false, current.token)
  }

  async release(): Promise<void> {
    await this.commit(true).catch(() => false)
  }

  private async commit(released: boolean, fresh?: CommitToken): Promise<boolean> {
    const next = {
      ...leaseDoc(this.doc.version + 1, this.doc.owner, this.ttlMs),
      runId: this.doc.runId,
      acquiredAt: this.doc.acquiredAt,
      released,
    }
    // a token from our own last commit: the commit fails if anyone committed since
    let token = fresh ?? this.token
    if (token.kind === 'cas' && token.etag === null) {
      const current = await this.ctx.log.load<LeaseDoc>(leaseBase(this.ds))
      if (current.doc?.commitId !== this.doc.commitId) return false
      token = current.token
    }
    if (!(await this.ctx.log.commit(leaseBase(this.ds), next, token))) return false
    this.doc = next
    this.token = nextToken(token, next)
    this.renewedAt = Date.now()
    await this.prune()
    return true
  }

  private async prune(): Promise<void> {
    if (this.ctx.log.strategy !== 'chain' || this.doc.version <= KEEP) return
    await this.ctx.store.delete([versionKey(leaseBase(this.ds), this.doc.version - KEEP)]).catch(() => undefined)
  }
}

function leaseDoc(version: number, owner: string, ttlMs: number): LeaseDoc {
  const now = Date.now()
  return {
    format: 'friday.maintenance-lease',
    formatVersion: 1,
    version,
    commitId: newId(),
    owner,
    runId: newId(),
    acquiredAt: new Date(now).toISOString(),
    expiresAt: now + ttlMs,
    released: false,
  }
}

/**
 * The token a commit of `doc` leaves: on chain stores the version alone; on CAS stores the etag
 * is unknown after our put, so the next commit re-reads it (`etag: null` marks that).
 */
function nextToken(prev: CommitToken, doc: LeaseDoc): CommitToken {
  return prev.kind === 'chain' ? { kind: 'chain', version: doc.version } : { kind: 'cas', etag: null, version: doc.version }
}
