/** `friday ls`: the datasets of the lake, or the partitions of one dataset, as aligned tables or JSON. */

import type { DataStorage } from '../core/types.js'
import { CliError } from './errors.js'
import { countOf, formatBytes, renderTable } from './text.js'

/** One line per dataset: rows, partitions, files, size, symbols, time range. */
export async function listDatasets(storage: DataStorage, json: boolean): Promise<string> {
  const names = await storage.listDatasets()
  const described = await Promise.all(names.map((name) => storage.describe(name)))
  const datasets = described.filter((d) => d !== null)
  if (json) return JSON.stringify(datasets, null, 2)
  if (datasets.length === 0) return '(no datasets)'
  return renderTable(
    ['DATASET', 'ROWS', 'PARTITIONS', 'FILES', 'SIZE', 'SYMBOLS', 'FIRST', 'LAST'],
    datasets.map((d) => [
      d.name,
      String(d.rows),
      String(d.partitions),
      String(d.files),
      formatBytes(d.bytes),
      String(d.symbols.length),
      d.firstTimestamp ?? '-',
      d.lastTimestamp ?? '-',
    ]),
    [false, true, true, true, true, true, false, false],
  )
}

/** A dataset's summary line, then one line per partition: path, rows, files, size, manifest version, time range. */
export async function listPartitions(storage: DataStorage, dataset: string, json: boolean): Promise<string> {
  const description = await storage.describe(dataset)
  if (!description) throw new CliError(`dataset '${dataset}' not found`)
  const partitions = await storage.listPartitions(dataset)
  if (json) return JSON.stringify({ dataset: description, partitions }, null, 2)
  const d = description
  const symbols = d.symbols.length <= 5 ? d.symbols.join(', ') : `${d.symbols.slice(0, 5).join(', ')}, ...`
  const head =
    `${d.name}: ${countOf(d.rows, 'row')}, ${countOf(d.partitions, 'partition')} (by ${d.partitionBy.join('/')}), ${countOf(d.files, 'file')}, ` +
    `${formatBytes(d.bytes)}; ${countOf(d.symbols.length, 'symbol')} (${symbols}); ${d.firstTimestamp ?? '-'} .. ${d.lastTimestamp ?? '-'}`
  const table = renderTable(
    ['PARTITION', 'ROWS', 'FILES', 'SIZE', 'VERSION', 'FIRST', 'LAST'],
    partitions.map((p) => [
      p.path,
      String(p.rows),
      String(p.files),
      formatBytes(p.bytes),
      String(p.version),
      p.firstTimestamp ?? '-',
      p.lastTimestamp ?? '-',
    ]),
    [false, true, true, true, true, false, false],
  )
  return `${head}\n\n${table}`
}
