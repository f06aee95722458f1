// Package dataset picks the format package for a file by its extension and
// expands an input argument (a file, a directory or a glob) into files.
//
// Formats: .parquet (parquetio), .arrow and .feather (Arrow IPC file,
// arrowio), .arrows (Arrow IPC stream, arrowio), .jsonl/.ndjson (jsonlio),
// .csv (csvio, read only). Every reader yields fileio.Chunks; every writer is
// a fileio.Writer whose file appears only on Commit.
package dataset
