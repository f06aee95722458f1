// Package parquetio reads and writes Parquet files as Arrow records.
//
// Two libraries are used, each where it is the better tool:
//
//   - github.com/apache/arrow/go/v17/parquet/pqarrow decodes and encodes the
//     data. It maps Parquet to Arrow with full type fidelity (temporal,
//     decimal, list, struct, dictionary columns pass through unchanged) and,
//     when writing, stores the Arrow schema in the file metadata so that an
//     embedding column reads back as fixed_size_list<float32>[dim] rather
//     than a plain list. Records are the project's in-memory row-batch form,
//     so no conversion layer is needed.
//   - github.com/parquet-go/parquet-go reads the footer only (RowGroups): it
//     opens a file's metadata without building Arrow schemas or allocators,
//     which is what the NATS job splitter needs to cut a big file into
//     row-group tasks cheaply.
//
// Reading can be restricted to a row-group range [lo, hi). Each row group is
// read on its own, in chunks of at most ChunkRows rows, so a chunk never spans
// two row groups and the chunking of a file is the same on every run.
// Decoding errors (and panics inside the decoder caused by corrupt bytes) are
// returned as errors wrapping fileio.ErrCorrupt that name the file, the row
// group and the first row of the chunk being read.
package parquetio
