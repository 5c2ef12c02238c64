/**
 * Tables → one Parquet file, streamed: each batch becomes a row group whose bytes are sent as soon
 * as it is written, and the footer goes out last. Memory is bounded by one batch.
 */

import { nullColumn } from '../core/table.js'
import type { Schema, Table } from '../core/types.js'
import { type ParquetCodecs, ParquetFileWriter, pageCodec } from '../parquet/index.js'
import type { BatchEncoder } from './text-output.js'

/**
 * A streaming Parquet encoder. The first batch fixes the file's schema (an empty first batch
 * still gives its columns); a later batch's columns are matched by name: a missing one is written
 * as nulls, an extra one is left out. `symbol` and `timestamp` are REQUIRED, every other column
 * OPTIONAL (a later batch may hold nulls). Timestamps are INT64 TIMESTAMP(MICROS, UTC), pages
 * snappy-compressed by `codecs.snappy.compress` (default: hyparquet-writer's pure-JS compressor;
 * the Node server and CLI pass `nativeCodecs()`).
 */
export function parquetEncoder(codecs?: ParquetCodecs): BatchEncoder {
  let schema: Schema | undefined
  let writer: ParquetFileWriter | undefined

  const start = (s: Schema): void => {
    schema = s
    const columns = s.map(({ name, type }) => ({ name, type, required: name === 'symbol' || name === 'timestamp' }))
    writer = new ParquetFileWriter(columns, { codec: pageCodec('snappy', codecs) })
  }

  return {
    push(batch) {
      if (!schema) start(batch.schema)
      if (batch.length === 0) return []
      const columns: Table['columns'] = {}
      for (const { name, type } of schema!) {
        const col = batch.columns[name] ?? nullColumn(type, batch.length)
        if (col.type !== type) throw new Error(`column '${name}' changed type from ${type} to ${col.type} during the response`)
        columns[name] = col
      }
      writer!.writeRowGroup({ length: batch.length, schema: schema!, columns })
      return [writer!.take()]
    },
    finish() {
      if (!schema)
        start([
          { name: 'symbol', type: 'string' },
          { name: 'timestamp', type: 'timestamp' },
        ])
      writer!.finish()
      return [writer!.take()]
    },
    // no room for a record: without its footer the file is unreadable anyway
    fail: () => [],
  }
}
