/**
 * Body formats of the HTTP API (and the CLI's files): JSON, NDJSON, CSV and Parquet in, the same
 * out. Web standards only (runs on Workers).
 *
 * Media types. In (`Content-Type`, parameters ignored): `application/json`;
 * `application/x-ndjson` (also `application/ndjson`, `application/jsonl`); `text/csv`;
 * `text/tab-separated-values` (CSV split at tabs);
 * `application/vnd.apache.parquet` (also `application/parquet`, `application/x-parquet`).
 * Anything else is a 415. Out: `?format=json|ndjson|jsonl|csv|parquet` wins, else `Accept`
 * (q-values honoured; `*\/*`, none or nothing supported → JSON); an unknown `format` is a 400.
 *
 * Input values (every body is read as a stream and capped at the byte limit: 413 as soon as it
 * is passed, or upfront from Content-Length):
 * - JSON: an array of row objects; anything else at the top level is a 400 on field `body`, an
 *   element that is not an object a 400 on that `row`. A syntax error names the first element
 *   that does not parse (`row`, and the `line` it starts on).
 * - NDJSON: one JSON object per line (blank lines skipped, CRLF accepted). A line that does not
 *   parse or is not an object is a 400 naming `row` (0-based) and `line` (1-based).
 * - CSV and NDJSON: every error naming a row also names its body line (1-based; blank lines
 *   count, a BOM or CRLF does not shift it), also those the storage finds after parsing
 *   (`withBodyLines` over the error and the parsed columns).
 * - JSON and NDJSON values go to the storage unchanged; it rejects NaN/Infinity, objects and
 *   arrays, bad times... naming row and field. An integer literal outside ±(2^53 − 1) is kept
 *   exact as a BigInt (an int64 column); other numbers are float64.
 * - CSV (RFC 4180, comma-separated, UTF-8, LF or CRLF): the first line is the header (names
 *   trimmed; an empty or duplicate name is a 400 on field `header`, line 1). Blank lines are
 *   skipped. Cells (not trimmed): empty → null; `true` / `false` (lower case) → boolean; a finite number (`/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/`)
 *   → number, an integer beyond ±(2^53 − 1) → BigInt; anything else → string. The `symbol`
 *   column is always text. The time column (`timestamp`, `datetime` or `date`) keeps ISO strings
 *   as strings; its numbers are epoch counts in the write's `time_unit` (below). A row with
 *   another number of cells than the
 *   header is a 400 naming `row` and `line` (the line where the row starts; quoted fields may
 *   span lines).
 * - Epoch numbers in a time column (any format; in Parquet a raw INT64/DOUBLE `timestamp`
 *   without a TIMESTAMP type) are read in `time_unit` (s, ms, us, ns) from their text, exactly:
 *   a fraction below the µs, an ns count not a multiple of 1000 or a time outside the accepted
 *   range is a 400 naming row and field. With no unit they are milliseconds and a value below
 *   1e11 in magnitude is refused as probably seconds (`epochToUs` in core/time.ts).
 * - Column options (`ColumnOptions`): renames, declared types (`types=volume:int64`: exact or a
 *   400 naming row and field), one symbol for every row, the CSV delimiter (TSV).
 * - JSON, NDJSON and CSV columns are handed over typed, with no object per row: a numbers-only
 *   column as a Float64Array, a time column of ISO strings as `EpochMicros` (read once here,
 *   to exactly the microseconds the storage's own parser gives), anything else as an array.
 * - Parquet: a whole file (buffered: Parquet is read from its footer), decoded to a Table; bytes
 *   that are not Parquet are a 400 on field `body` ("not a Parquet file: ..."). It needs a
 *   string `symbol` and a TIMESTAMP `timestamp` column; columns of other shapes (nested,
 *   INT96, fixed-length) are left out.
 *
 * Output values:
 * - JSON / NDJSON rows: `{"symbol":"AAPL","timestamp":"2024-01-02T14:30:00.123456Z",...}`, keys in
 *   schema order; times are ISO-8601 UTC with microseconds when not zero; float NaN → null; int64
 *   → a JSON number when |v| <= 2^53, else a string (JSON.parse would round it); booleans; nulls.
 * - CSV: a header line and CRLF-terminated rows with the same cell text (null → empty cell, the
 *   empty string → `""`, int64 always as digits); fields with a comma, quote or line break are
 *   quoted, quotes doubled.
 * - Parquet: one file, a row group per batch (streamed as they are written); `symbol` and
 *   `timestamp` REQUIRED, other columns OPTIONAL; timestamps INT64 TIMESTAMP(MICROS, UTC); snappy.
 * - A streamed response takes its columns from the first batch: for CSV and Parquet a later batch
 *   with other columns gets nulls for missing ones and loses extra ones (scan batches of one
 *   dataset share a schema).
 *
 * Round trips: what a format writes, parseBody reads back to the same stored rows, with these
 * limits (Parquet has none):
 * - JSON/NDJSON: an int64 beyond ±2^53 comes out as a string, which reads back as a string (send
 *   it as a bare integer literal, or use CSV or Parquet, which keep it exact).
 * - CSV: a string column's values that look like numbers or booleans (`42`, `true`) read back as
 *   such, and an empty string reads back as null.
 * - JSON/NDJSON/CSV: a timestamp column other than the key comes out as ISO text and reads back
 *   as text; an int64 column whose values all fit in ±2^53 reads back as numbers, so it is created
 *   as float64 in a new dataset (an existing int64 column takes them).
 */

export { type BodyFormat, bodyFormat, OUTPUT_CONTENT_TYPES, type OutputFormat, outputFormat } from './media-types.js'
export { parseBody } from './parse-body.js'
export { encodeTable, streamErrorRecord, tableResponse } from './response.js'
export { withBodyLines } from './row-lines.js'
