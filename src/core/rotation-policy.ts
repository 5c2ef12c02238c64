/**
 * The rotation policy (`storage.file_rotation`) and when it makes a partition due for
 * compaction. Thresholds, exactly:
 * - `count_based`: more than `max_files` live files (`max_files` itself is fine).
 * - `size_based`: a file larger than `max_file_size_mb`, or two or more files smaller than half
 *   of it (any two of them fit in one file within the limit, so compaction always leaves fewer
 *   files, and a partition it wrote files of about the limit into is not due again). One file
 *   per partition is never due (nothing to merge it with: partitions are never merged).
 * - `time_based`: two or more files, the oldest created at least `max_file_age_hours` ago.
 */

import type { PartitionManifest } from './types.js'

export type ArchiveCodec = 'gzip' | 'zstd' | 'none'

export interface RotationPolicy {
  enabled: boolean
  strategy: 'size_based' | 'time_based' | 'count_based'
  /** Target size of compacted files and the size_based limit. */
  maxFileBytes: number
  maxFileAgeMs: number
  maxFiles: number
  /** `none` when `compress_old_files` is false. */
  archiveCodec: ArchiveCodec
  /** Archives older than this are deleted; 0 keeps them forever. */
  archiveRetentionMs: number
  /** Rows older than this (by timestamp) are archived and removed; null keeps them. */
  rowRetentionMs: number | null
}

const MB = 1024 * 1024
const HOUR = 3_600_000
const DAY = 24 * HOUR

/**
 * `storage.file_rotation` as the config schema (`FileRotationConfig` in `src/config/schema.ts`)
 * outputs it, defaults filled in. Declared here so the core does not depend on the config module.
 */
export interface FileRotationSettings {
  enabled: boolean
  strategy: RotationPolicy['strategy']
  max_file_size_mb: number
  max_file_age_hours: number
  max_files: number
  compress_old_files: boolean
  archive_codec: 'gzip' | 'zstd'
  archive_retention_days: number
  row_retention_days?: number
}

export function rotationFromConfig(c: FileRotationSettings): RotationPolicy {
  return {
    enabled: c.enabled,
    strategy: c.strategy,
    maxFileBytes: Math.round(c.max_file_size_mb * MB),
    maxFileAgeMs: c.max_file_age_hours * HOUR,
    maxFiles: c.max_files,
    archiveCodec: c.compress_old_files ? c.archive_codec : 'none',
    archiveRetentionMs: c.archive_retention_days * DAY,
    rowRetentionMs: c.row_retention_days === undefined ? null : c.row_retention_days * DAY,
  }
}

/**
 * The config defaults (`rotationFromConfig` of an empty `file_rotation`, the seed's values):
 * rotation on, `size_based` at 100 MB, replaced files archived gzip-compressed for 30 days.
 */
export const DEFAULT_ROTATION: RotationPolicy = {
  enabled: true,
  strategy: 'size_based',
  maxFileBytes: 100 * MB,
  maxFileAgeMs: 24 * HOUR,
  maxFiles: 10,
  archiveCodec: 'gzip',
  archiveRetentionMs: 30 * DAY,
  rowRetentionMs: null,
}

export interface Decision {
  due: boolean
  /** Why (due or not), naming the numbers compared. */
  reason: string
}

/** Whether the partition crosses the policy's threshold at time `nowMs`. */
export function evaluate(m: PartitionManifest, p: RotationPolicy, nowMs: number): Decision {
  const n = m.files.length
  switch (p.strategy) {
    case 'count_based':
      return n > p.maxFiles
        ? { due: true, reason: `count_based: ${n} files > max_files ${p.maxFiles}` }
        : { due: false, reason: `count_based: ${n} files <= max_files ${p.maxFiles}` }
    case 'size_based': {
      const big = m.files.find((f) => f.bytes > p.maxFileBytes)
      if (big) return { due: true, reason: `size_based: ${big.name} is ${big.bytes} bytes > ${p.maxFileBytes}` }
      const small = m.files.filter((f) => f.bytes < p.maxFileBytes / 2).length
      return small >= 2
        ? { due: true, reason: `size_based: ${small} files under ${p.maxFileBytes / 2} bytes` }
        : { due: false, reason: `size_based: no file over ${p.maxFileBytes} bytes, ${small} under half of it` }
    }
    case 'time_based': {
      if (n < 2) return { due: false, reason: `time_based: ${n} file` }
      const oldest = Math.min(...m.files.map((f) => Date.parse(f.createdAt)))
      const age = nowMs - oldest
      return age >= p.maxFileAgeMs
        ? { due: true, reason: `time_based: oldest of ${n} files is ${age} ms old >= ${p.maxFileAgeMs}` }
        : { due: false, reason: `time_based: oldest of ${n} files is ${age} ms old < ${p.maxFileAgeMs}` }
    }
  }
}
