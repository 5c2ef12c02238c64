/**
 * The op log on a Parquet lake's object store (local disk or S3): NDJSON batch objects under
 * the reserved prefix `_oplog/` at the lake root, one object per UTC day per flush:
 *
 *     _oplog/date=2026-11-25/<firstMs>-<lastMs>-<count>-<ulid>.ndjson
 *
 * `firstMs`/`lastMs` (13 digits) are the oldest and newest record times in the object and
 * `count` its records, so queries skip objects outside their time range and retention deletes
 * whole objects without reading them. `_oplog` can never be a dataset (dataset names start
 * with a letter or digit), so `listDatasets` never shows it.
 *
 * Costs: a flush is one PUT per UTC day it spans. A query LISTs the day prefixes once, then
 * each day it reaches, and GETs objects newest first until it has `limit` records that no
 * unread object could beat. Retention LISTs, DELETEs objects entirely past the cutoff and
 * rewrites (GET, PUT, DELETE) the few that straddle it, so exactly the records before the
 * cutoff go. A record stored twice (an ambiguous PUT retried) is de-duplicated by id on read.
 */

import { allOwned } from '../concurrency.js'
import { newId } from '../core/ids.js'
import type { OpLogQuery, OpLogStore, OpRecord } from '../core/oplog-types.js'
import type { ObjectStore } from '../stores/types.js'
import { atMs, fromNdjson, matches, mergeNewest, newestFirst, toNdjson } from './records.js'

export const OPLOG_PREFIX = '_oplog/'
const DAY_RE = /^_oplog\/date=(\d{4}-\d{2}-\d{2})\/$/
const OBJECT_RE = /\/(\d{13})-(\d{13})-(\d+)-[0-9A-HJKMNP-TV-Z]{26}\.ndjson$/
const DAY_MS = 86_400_000
/** Objects fetched at once by a query. */
const PARALLEL_GETS = 8

interface BatchObject {
  key: string
  first: number
  last: number
  count: number
}

const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10)
const dayStart = (day: string): number => Date.parse(`${day}T00:00:00Z`)
const pad = (ms: number): string => String(ms).padStart(13, '0')

function objectKey(day: string, records: OpRecord[]): string {
  const times = records.map(atMs)
  const first = Math.min(...times)
  const last = Math.max(...times)
  return `${OPLOG_PREFIX}date=${day}/${pad(first)}-${pad(last)}-${records.length}-${newId()}.ndjson`
}

function parseObject(key: string): BatchObject | null {
  const m = OBJECT_RE.exec(key)
  return m ? { key, first: Number(m[1]), last: Number(m[2]), count: Number(m[3]) } : null
}

export class LakeOpLogStore implements OpLogStore {
  /**
   * @param store the lake's object store (its own client and request counters)
   * @param ready resolves once the store can be used (the lake's container check)
   */
  constructor(
    private readonly store: ObjectStore,
    private readonly ready: () => Promise<void> = async () => {},
  ) {}

  async append(records: OpRecord[]): Promise<void> {
    if (records.length === 0) return
    await this.ready()
    const byDay = new Map<string, OpRecord[]>()
    for (const r of records) {
      const day = dayOf(atMs(r))
      const list = byDay.get(day)
      if (list) list.push(r)
      else byDay.set(day, [r])
    }
    await allOwned(
      [...byDay].map(([day, list]) => {
        list.sort((a, b) => -newestFirst(a, b))
        return this.store.put(objectKey(day, list), toNdjson(list), { contentType: 'application/x-ndjson' })
      }),
    )
  }

  /** Day prefixes stored, newest first. */
  private async days(): Promise<string[]> {
    const listed = await this.store.list(OPLOG_PREFIX, { delimiter: '/' })
    const days: string[] = []
    for (const p of listed.prefixes) {
      const m = DAY_RE.exec(p)
      if (m) days.push(m[1])
    }
    return days.sort().reverse()
  }

  private async objects(day: string): Promise<BatchObject[]> {
    const listed = await this.store.list(`${OPLOG_PREFIX}date=${day}/`)
    return listed.objects.map((o) => parseObject(o.key)).filter((o): o is BatchObject => o !== null)
  }

  private async readObject(key: string): Promise<OpRecord[]> {
    const got = await this.store.get(key)
    return got ? fromNdjson(got.body) : [] // removed by retention since the listing
  }

  async query(q: OpLogQuery): Promise<OpRecord[]> {
    if (q.limit <= 0) return []
    await this.ready()
    const since = q.since ?? Number.NEGATIVE_INFINITY
    const until = q.until ?? Number.POSITIVE_INFINITY
    let found: OpRecord[] = []
    for (const day of await this.days()) {
      const start = dayStart(day)
      if (start >= until) continue
      if (start + DAY_MS <= since) break
      // newest first by their newest record; skip objects entirely outside [since, until)
      const objects = (await this.objects(day)).filter((o) => o.last >= since && o.first < until).sort((a, b) => b.last - a.last)
      for (let i = 0; i < objects.length; i += PARALLEL_GETS) {
        // enough, and no unread object (this day or older) holds anything newer than the limit-th record?
        if (found.length >= q.limit && objects[i].last < atMs(found[q.limit - 1])) break
        const chunk = objects.slice(i, i + PARALLEL_GETS)
        const read = await allOwned(chunk.map((o) => this.readObject(o.key)))
        found = mergeNewest([found, read.flat().filter((r) => matches(r, q))], q.limit)
      }
      // older days hold only older records than everything found so far
      if (found.length >= q.limit) break
    }
    return found
  }

  async removeBefore(cutoff: number): Promise<number> {
    await this.ready()
    let removed = 0
    for (const day of await this.days()) {
      if (dayStart(day) >= cutoff) continue
      const objects = await this.objects(day)
      const doomed = objects.filter((o) => o.last < cutoff)
      for (const o of doomed) removed += o.count
      for (const o of objects.filter((o) => o.first < cutoff && o.last >= cutoff)) {
        // the new object (the records to keep) lands before the old one goes: a reader may see both, de-duplicated by id
        const keep = (await this.readObject(o.key)).filter((r) => atMs(r) >= cutoff)
        if (keep.length) await this.store.put(objectKey(day, keep), toNdjson(keep), { contentType: 'application/x-ndjson' })
        removed += o.count - keep.length
        doomed.push(o)
      }
      for (let i = 0; i < doomed.length; i += 1000) await this.store.delete(doomed.slice(i, i + 1000).map((o) => o.key))
    }
    return removed
  }
}
