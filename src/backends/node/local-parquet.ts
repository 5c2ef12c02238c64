/** The `local_parquet` backend: the Parquet lake on the local filesystem (Node/Bun only). */

import { resolve } from 'node:path'
import { lakeOptionsFromConfig } from '../../config/factory.js'
import type { FridayConfig } from '../../config/schema.js'
import { LakeStorage } from '../../lake/lake-storage.js'
import type { LakeCodecOptions } from '../../lake/options.js'
import { createLocalFsStore } from './local-fs-store.js'
import { nodeLakeCodecs } from './native-codecs.js'

/**
 * The lake's driver under `config.storage.local_parquet.base_dir`, resolved against the working
 * directory, with `codecs` (default: native Snappy and node:crypto's SHA-256, `nodeLakeCodecs()`).
 */
export function localParquetFactory(config: FridayConfig, codecs: LakeCodecOptions = nodeLakeCodecs()): LakeStorage {
  const local = config.storage.local_parquet
  const store = createLocalFsStore({
    baseDir: resolve(process.cwd(), local.base_dir),
    dirMode: local.dir_mode,
    fileMode: local.file_mode,
    fsync: local.fsync,
  })
  // The local store enforces ifNoneMatch '*' atomically (exclusive link), so the lake can always demand it.
  return new LakeStorage({
    backend: 'local_parquet',
    store,
    requireConditionalWrites: true,
    ...lakeOptionsFromConfig(local, config),
    ...codecs,
  })
}
