/**
 * Tables → one Parquet file, streamed: each batch becomes a row group whose bytes are sent as soon
 * as it is written (hyparquet-writer's `ParquetWriter` over a writer whose `flush` hands the bytes
 * on), and the footer goes out last. Memory is bounded by one batch.
 */

import type { SchemaElement } from 'hyparquet'
import { ByteWriter, type ColumnSource, ParquetWriter } from 'hyparquet-writer/src/index.js'
import { microsToInt64 } from '../../parquet/index.js'
import { nullColumn } from '../../table/table.js'
import { BOOL_NULL, type Column, type Schema } from '../../types.js'
import type { BatchEncoder } from './text-output.js'

/** A ByteWriter that gives away what it holds at every flush (after each row group) and at the end. */
class ChunkWriter extends ByteWriter {
  private chunks: Uint8Array[] = []

  flush(): void {
    if (this.index === 0) return
    this.chunks.push(new Uint8Array(this.buffer.slice(0, this.index)))
    this.index = 0
  }

  override finish(): void {
    this.flush()
  }

  take(): Uint8Array[] {
    const chunks = this.chunks
    this.chunks = []
    return chunks
  }
}

/** Our null encodings → what hyparquet-writer takes: typed arrays when there is no null, else arrays with nulls. */
function physicalValues(column: Column): ColumnSource['data'] {
  const n = column.values.length
  switch (column.type) {
    case 'float64': {
      const v = column.values
      if (!v.some(Number.isNaN)) return v
      return Array.from(v, (x) => (Number.isNaN(x) ? null : x)) as ColumnSource['data']
    }
    case 'timestamp': {
      const v = column.values
      if (!v.some(Number.isNaN)) return microsToInt64(v)
      return Array.from(v, (x) => (Number.isNaN(x) ? null : BigInt(x))) as ColumnSource['data']
    }
    case 'int64': {
      const { values, nulls } = column
      if (!nulls?.includes(1)) return values
      const out: (bigint | null)[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = nulls[i] === 1 ? null : values[i]
      return out as ColumnSource['data']
    }
    case 'boolean':
      return Array.from(column.values, (b) => (b === BOOL_NULL ? null : b === 1)) as ColumnSource['data']
    case 'string':
      return column.values as ColumnSource['data']
  }
}

/**
 * A streaming Parquet encoder. The first batch fixes the file's schema (an empty first batch
 * still gives its columns); a later batch's columns are matched by name: a missing one is written
 * as nulls, an extra one is left out. `symbol` and `timestamp` are REQUIRED, every other column
 * OPTIONAL (a later batch may hold nulls). Timestamps are INT64 TIMESTAMP(MICROS, UTC), pages
 * snappy-compressed (hyparquet-writer's own JS codec, which runs on Workers).
 */
export function parquetEncoder(): BatchEncoder {
  let schema: Schema | undefined
  let writer: ChunkWriter | undefined
  let pq: ParquetWriter | undefined
  const timestampElements: SchemaElement[] = []

  const start = (s: Schema): void => {
    schema = s
    writer = new ChunkWriter(64 * 1024)
    const elements: SchemaElement[] = [{ name: 'root', num_children: s.length }]
    for (const { name, type } of s) {
      const required = name === 'symbol' || name === 'timestamp'
      const element: SchemaElement = { name, type: 'INT64', repetition_type: required ? 'REQUIRED' : 'OPTIONAL' }
      if (type === 'string') {
        element.type = 'BYTE_ARRAY'
        element.converted_type = 'UTF8'
        element.logical_type = { type: 'STRING' }
      } else if (type === 'float64') element.type = 'DOUBLE'
      else if (type === 'boolean') element.type = 'BOOLEAN'
      else if (type === 'timestamp') timestampElements.push(element)
      elements.push(element)
    }
    pq = new ParquetWriter({
      writer,
      schema: elements,
      codec: 'SNAPPY',
      createdBy: 'friday-market-data (hyparquet-writer 0.17.0)',
    })
  }

  return {
    push(batch) {
      if (!schema) start(batch.schema)
      if (batch.length === 0) return []
      const columnData: ColumnSource[] = schema!.map(({ name, type }) => {
        const col = batch.columns[name] ?? nullColumn(type, batch.length)
        if (col.type !== type) throw new Error(`column '${name}' changed type from ${type} to ${col.type} during the response`)
        // numeric columns skip the dictionary trial, as in encodeParquet
        const encoding = type === 'float64' || type === 'int64' || type === 'timestamp' ? 'PLAIN' : undefined
        return { name, data: physicalValues(col), encoding }
      })
      // Timestamp pages are written from a plain INT64 element (our values already are INT64
      // micros); the logical type only affects the footer and is set in `finish`.
      pq!.write({ columnData, rowGroupSize: batch.length })
      return writer!.take()
    },
    finish() {
      if (!schema)
        start([
          { name: 'symbol', type: 'string' },
          { name: 'timestamp', type: 'timestamp' },
        ])
      for (const element of timestampElements) {
        element.converted_type = 'TIMESTAMP_MICROS'
        element.logical_type = { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' }
      }
      pq!.finish()
      return writer!.take()
    },
  }
}
