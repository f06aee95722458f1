package fileio

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
)

// DefaultChunkRows is the number of rows a reader puts in one Chunk when the
// caller does not say: large enough to amortise per-chunk costs, small enough
// that a chunk of long texts stays a few megabytes.
const DefaultChunkRows = 2048

// Chunk is a run of consecutive rows of one input file.
//
// The receiver of a Chunk owns Record and must call Record.Release when done.
type Chunk struct {
	// Record holds the rows, with every column of the file.
	Record arrow.Record
	// Seq numbers the chunks of one reader from 0. For a given file, range and
	// chunk size, chunk Seq always holds the same rows, which is what makes it
	// usable as a checkpoint key.
	Seq int
	// RowGroup is the Parquet row group the rows come from, or the record
	// batch index for Arrow IPC files; -1 for formats without groups.
	RowGroup int
	// FirstRow is the 0-based index, within the whole file, of the first row.
	FirstRow int64
	// ReplacedUTF8 lists the rows (0-based within the chunk) whose source
	// bytes held invalid UTF-8 that the decoder already replaced with U+FFFD
	// (JSON decoders do this); formats that keep raw bytes leave it nil.
	ReplacedUTF8 []int
	// BadRows lists the rows the reader could not decode (a line that is not
	// JSON, a value of another type than its column's), with the reason; the
	// Record holds a null in every column for each. Only readers asked to
	// keep bad rows fill it (dataset.ReadOptions.KeepBadRows); the others end
	// the read at the first one.
	BadRows []BadRow
}

// BadRow is a row of a Chunk that its reader could not decode.
type BadRow struct {
	// Row is the row's 0-based index within the chunk.
	Row int
	// Err says why, naming the line or record of the file.
	Err error
}

// Where names row (a file row index) of the chunk's file at path for error
// messages: "path: row group G, row R", or "path: row R" for formats
// without groups (RowGroup -1), which have no row group to name.
func (c Chunk) Where(path string, row int64) string {
	if c.RowGroup < 0 {
		return fmt.Sprintf("%s: row %d", path, row)
	}
	return fmt.Sprintf("%s: row group %d, row %d", path, c.RowGroup, row)
}

// WhereGroup is Where for the chunk as a whole: "path: row group G", or
// "path: rows from R" for formats without groups.
func (c Chunk) WhereGroup(path string) string {
	if c.RowGroup < 0 {
		return fmt.Sprintf("%s: rows from %d", path, c.FirstRow)
	}
	return fmt.Sprintf("%s: row group %d", path, c.RowGroup)
}

// Reader yields the rows of one input file as Chunks, in file order.
//
// Next blocks until the next chunk is decoded or ctx is done; it returns
// io.EOF after the last chunk. A Reader is used by one goroutine at a time.
// Close releases the file; it is safe to call after an error.
type Reader interface {
	Schema() *arrow.Schema
	Next(ctx context.Context) (Chunk, error)
	Close() error
}

// Writer writes records of one schema to a file that appears at its final
// path only when Commit succeeds.
//
// Write does not retain rec after it returns. Commit flushes, fsyncs and
// renames the temporary file into place; Abort removes it. Exactly one of
// Commit or Abort must be called; calling Abort after Commit is a no-op, so
// "defer w.Abort()" is the idiom.
type Writer interface {
	Write(ctx context.Context, rec arrow.Record) error
	Commit() error
	Abort() error
}

// CheckWrite is the check a Writer's Write makes before it writes rec:
// ctx's error, or ErrSchemaMismatch naming path when rec's schema is not
// schema.
func CheckWrite(ctx context.Context, path string, rec arrow.Record, schema *arrow.Schema) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !rec.Schema().Equal(schema) {
		return fmt.Errorf("%s: %w: got %s, want %s", path, ErrSchemaMismatch, rec.Schema(), schema)
	}
	return nil
}
