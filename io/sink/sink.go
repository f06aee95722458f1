package sink

import (
	"context"
	"fmt"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// Batch is a run of consecutive output rows of one input.
//
// The caller owns Record: a Sink must not keep it after Write returns
// (Retain it to keep it longer, and Release it when done).
type Batch struct {
	// Record holds the rows: the input's columns, then the output columns
	// named by the run (the embedding column last for sentence embeddings).
	// Every batch of one Sink has the Sink's schema.
	Record arrow.Record
	// Seq numbers the batches of one Sink from 0, in row order: a Sink may
	// use it as an idempotency key (a database sink that commits per batch
	// can skip a batch it already holds after a restart).
	Seq int
	// FirstRow is the input row (0-based, within the whole input) of the
	// batch's first row, before rows left out by the row-error policy.
	FirstRow int64
	// Rows and Chunks are set for the output of a chunked run (one record
	// row per chunk of a text, pipeline.Config.ChunkTokens): record row i
	// is chunk Chunks[i] of input row Rows[i]. Both are nil otherwise, and
	// record row i is then input row FirstRow+i.
	Rows   []int64
	Chunks []int32
}

// Key returns the stable key of record row i within its input: "<row>"
// with the 0-based input row, or "<row>:<chunk>" for a chunked run. A
// database sink prefixes it with the input's name ("<file>:<row>:<chunk>")
// for default ids that a rerun reproduces.
func (b Batch) Key(i int) string {
	if b.Rows == nil {
		return strconv.FormatInt(b.FirstRow+int64(i), 10)
	}
	return strconv.FormatInt(b.Rows[i], 10) + ":" + strconv.Itoa(int(b.Chunks[i]))
}

// ChunkKeys sets b.Rows and b.Chunks from the int32 chunk_index column
// chunkCol of b.Record, for a chunked output read back from a file: a row
// whose chunk index is 0 begins input row *next, and *next moves on (start
// it at the input's first row, 0, and pass it to every batch in turn).
// That numbering holds when every input row has output rows, as chunked
// runs give unless the row-error policy skipped rows.
func (b *Batch) ChunkKeys(chunkCol string, next *int64) error {
	idx := b.Record.Schema().FieldIndices(chunkCol)
	if len(idx) != 1 {
		return fmt.Errorf("%w: %d columns named %q", ErrColumn, len(idx), chunkCol)
	}
	col, ok := b.Record.Column(idx[0]).(*array.Int32)
	if !ok {
		return fmt.Errorf("%w: column %q is %s, want int32", ErrColumn, chunkCol, b.Record.Column(idx[0]).DataType())
	}
	n := col.Len()
	b.Rows, b.Chunks = make([]int64, n), make([]int32, n)
	for i := 0; i < n; i++ {
		c := col.Value(i)
		if c == 0 {
			*next++
		}
		if *next == 0 || col.IsNull(i) {
			return fmt.Errorf("%w: row %d of the batch: chunk index %d does not follow a chunk 0", ErrColumn, i, c)
		}
		b.Rows[i], b.Chunks[i] = *next-1, c
	}
	return nil
}

// Sink receives the output rows of one run (one file, one task) and makes
// them durable all at once.
//
// Write blocks until the batch is handed to the destination (written to a
// temporary file, sent in a transaction) or ctx is done; it is not durable
// yet. Commit blocks until every batch written is durable (fsynced and
// renamed into place, committed by the database): only after Commit
// returns nil may the caller acknowledge the input (a NATS message, a
// checkpoint). Abort discards what was written; calling it after Commit is a
// no-op that returns nil, so "defer s.Abort(ctx)" is the idiom. Exactly one
// of Commit or Abort ends a Sink. A Sink is used by one goroutine at a time.
type Sink interface {
	Write(ctx context.Context, b Batch) error
	Commit(ctx context.Context) error
	Abort(ctx context.Context) error
}

// File adapts a file Writer (dataset.Create, parquetio, arrowio, jsonlio) to
// a Sink: the file appears at its path, complete, only on Commit.
func File(w fileio.Writer) Sink { return fileSink{w} }

type fileSink struct{ w fileio.Writer }

func (f fileSink) Write(ctx context.Context, b Batch) error { return f.w.Write(ctx, b.Record) }

// Commit implements Sink; the file writers' Commit does not block on
// anything but the disk, so ctx is not consulted.
func (f fileSink) Commit(context.Context) error { return f.w.Commit() }

func (f fileSink) Abort(context.Context) error { return f.w.Abort() }

// Vectors returns the float32 embedding column named column of rec as flat
// row-major values (rec.NumRows()×dim, stride dim; a null row's values are
// present but meaningless) and its validity (nil when no row is null). The
// values are a view into rec, valid while rec is.
func Vectors(rec arrow.Record, column string) (vals []float32, dim int, valid []bool, err error) {
	idx := rec.Schema().FieldIndices(column)
	if len(idx) != 1 {
		return nil, 0, nil, fmt.Errorf("%w: %d columns named %q", ErrColumn, len(idx), column)
	}
	vals, dim, valid, err = ColumnVectors(rec.Column(idx[0]))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("column %q: %w", column, err)
	}
	return vals, dim, valid, nil
}

// ColumnVectors is Vectors for one column, which must be a
// fixed_size_list<float32>.
func ColumnVectors(a arrow.Array) (vals []float32, dim int, valid []bool, err error) {
	col, ok := a.(*array.FixedSizeList)
	if !ok {
		return nil, 0, nil, fmt.Errorf("%w: %s, want fixed_size_list<float32>", ErrColumn, a.DataType())
	}
	f, ok := col.ListValues().(*array.Float32)
	if !ok {
		return nil, 0, nil, fmt.Errorf("%w: a list of %s, want float32", ErrColumn, col.ListValues().DataType())
	}
	dim = int(col.DataType().(*arrow.FixedSizeListType).Len())
	n := col.Len()
	off := col.Offset() * dim
	all := f.Float32Values()
	if len(all) < off+n*dim {
		return nil, 0, nil, fmt.Errorf("%w: %d values for %d rows of %d", ErrColumn, len(all)-off, n, dim)
	}
	vals = all[off : off+n*dim]
	if col.NullN() > 0 {
		valid = make([]bool, n)
		for i := range valid {
			valid[i] = col.IsValid(i)
		}
	}
	return vals, dim, valid, nil
}
