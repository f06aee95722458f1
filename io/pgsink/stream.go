package pgsink

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/schemas"
)

// StreamWriter upserts the embedded records of a stream ("embedpipe stream
// --to postgres://…") into a table of (id text primary key, text text,
// meta jsonb, embedding vector(dim)). Each Store is one transaction and is
// idempotent by id, which makes at-least-once delivery exactly-once in the
// table. NUL characters, which PostgreSQL text cannot hold, are stored as
// U+FFFD in the text column (the embedding is of the text as received). It
// reconnects after a failed transaction. A StreamWriter is used
// by one goroutine at a time.
type StreamWriter struct {
	o      Options
	schema *arrow.Schema
	dim    int
	s      *Sink
	mem    memory.Allocator
}

// NewStreamWriter opens the table for float32 embeddings of dim dimensions
// (creating it if missing) and builds the index asked for, which pgvector
// then maintains row by row.
func NewStreamWriter(ctx context.Context, o Options, dim int) (*StreamWriter, error) {
	if o.Precision != "" && o.Precision != "float32" {
		return nil, fmt.Errorf("%w: streams carry float32 embeddings, not %s", ErrPrecision, o.Precision)
	}
	if o.IDColumn != "" {
		return nil, fmt.Errorf("%w: stream rows are keyed by the record id; no id column", ErrOptions)
	}
	if o.EmbeddingColumn == "" {
		o.EmbeddingColumn = "embedding"
	}
	w := &StreamWriter{o: o, dim: dim, mem: memory.NewGoAllocator()}
	w.schema = arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String},
		{Name: "meta", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: arrow.NewMetadata([]string{PGTypeKey}, []string{"jsonb"})},
		{Name: o.EmbeddingColumn, Type: arrow.FixedSizeListOfNonNullable(int32(dim), arrow.PrimitiveTypes.Float32)},
	}, nil)
	if err := w.open(ctx); err != nil {
		return nil, err
	}
	if _, err := w.s.Finish(ctx); err != nil {
		w.Close(ctx)
		return nil, err
	}
	return w, nil
}

func (w *StreamWriter) open(ctx context.Context) error {
	s, err := Open(ctx, w.o, w.schema)
	if err != nil {
		return err
	}
	w.s = s
	return nil
}

// Store upserts one batch: ids[i] and recs[i] with embedding
// vecs[i*dim:(i+1)*dim]. Of records repeating an id within the batch the
// last wins, as separate upserts in order would give. It has the shape of
// workers.StreamConfig.Store.
func (w *StreamWriter) Store(ctx context.Context, ids []string, recs []schemas.Record, vecs []float32, dim int) error {
	if dim != w.dim || len(ids) != len(recs) || len(vecs) != len(recs)*dim {
		return fmt.Errorf("%w: %d ids, %d records, %d values of dim %d (table holds %d)", ErrRow, len(ids), len(recs), len(vecs), dim, w.dim)
	}
	last := make(map[string]int, len(ids))
	for i, id := range ids {
		last[id] = i
	}
	b := array.NewRecordBuilder(w.mem, w.schema)
	defer b.Release()
	text := b.Field(0).(*array.StringBuilder)
	meta := b.Field(1).(*array.StringBuilder)
	emb := b.Field(2).(*array.FixedSizeListBuilder)
	vals := emb.ValueBuilder().(*array.Float32Builder)
	keys := make([]string, 0, len(last))
	for i, id := range ids {
		if last[id] != i {
			continue
		}
		keys = append(keys, id)
		// PostgreSQL text cannot hold NUL; the embedding is of the text as
		// sent, the stored copy has U+FFFD in their place.
		text.Append(strings.ReplaceAll(recs[i].Text, "\x00", "\uFFFD"))
		if len(recs[i].Meta) == 0 {
			meta.AppendNull()
		} else {
			meta.Append(string(recs[i].Meta))
		}
		emb.Append(true)
		vals.AppendValues(vecs[i*dim:(i+1)*dim], nil)
	}
	rec := b.NewRecord()
	defer rec.Release()
	if w.s == nil {
		if err := w.open(ctx); err != nil {
			return err
		}
	}
	_, err := w.s.Write(ctx, Batch{Record: rec, Keys: keys, Where: fmt.Sprintf("stream batch of %d records", len(keys))})
	if err != nil && !errors.Is(err, ErrRow) {
		// The connection may be gone (server restart): start afresh next time.
		w.s.Close(context.Background())
		w.s = nil
	}
	return err
}

// Close closes the connection.
func (w *StreamWriter) Close(ctx context.Context) error {
	if w.s == nil {
		return nil
	}
	return w.s.Close(ctx)
}
