/**
 * Where a lake (and a database backend's archive bucket) keeps its objects. A dataset directory
 * holds only its data: hive partition directories and their `*.parquet` files, so an outside
 * reader pointed at `<dataset>/` (`polars.read_parquet(dir)`, which takes every file under a
 * directory) sees nothing else. Everything else about the dataset lives under `_friday/<dataset>/`:
 *
 * ```
 * <dataset>/<partition path>/part-<ulid>.parquet              data
 * _friday/<dataset>/_dataset.json, _dataset.v<N>.json          dataset document (schema, partitioning)
 * _friday/<dataset>/_common_metadata                           the schema as a Parquet file with no rows
 * _friday/<dataset>/<partition path>/_manifest[.v<N>].json     partition manifests
 * _friday/<dataset>/_maintenance/lease[.v<N>].json             maintenance lease
 * _friday/<dataset>/_maintenance/journal/<path>/<id>.json      compaction journals
 * _friday/<dataset>/_archive/<partition path>/...              archived files and archive manifests
 * _friday/<dataset>/_archive/rows/...                          rows archived by the database backends
 * _oplog/...                                                   the op log (src/oplog/lake-store.ts)
 * ```
 *
 * Dataset names never start with `_` (`checkDatasetName`), so `_friday` and `_oplog` cannot clash.
 */

/** The root of every lake object that is not data. */
export const META_ROOT = '_friday/'

/** `_friday/<dataset>`: the dataset's metadata directory (no trailing slash). */
export const metaDir = (ds: string): string => `${META_ROOT}${ds}`

/** `_friday/<dataset>/_archive/`: archived files (lake) and archived rows (Postgres, MongoDB). */
export const archiveRoot = (ds: string): string => `${metaDir(ds)}/_archive/`

/** `_friday/<dataset>/_archive/rows/`: Parquet batches of rows a database backend's retention archived. */
export const rowArchiveRoot = (ds: string): string => `${archiveRoot(ds)}rows/`
