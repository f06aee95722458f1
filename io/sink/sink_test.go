package sink_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/sink"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "text", Type: arrow.BinaryTypes.String},
	{Name: "embedding", Type: arrow.FixedSizeListOfNonNullable(3, arrow.PrimitiveTypes.Float32), Nullable: true},
}, nil)

// record builds rows texts with vectors vecs (3 floats each); a nil vector
// is a null row.
func record(texts []string, vecs [][]float32) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(texts, nil)
	lb := b.Field(1).(*array.FixedSizeListBuilder)
	vb := lb.ValueBuilder().(*array.Float32Builder)
	for _, v := range vecs {
		if v == nil {
			lb.AppendNull() // the builder adds the null row's 3 child values
			continue
		}
		lb.Append(true)
		vb.AppendValues(v, nil)
	}
	return b.NewRecord()
}

// TestVectors reads the flat values and validity of an embedding column,
// of a sliced record too, and refuses a column of another type.
func TestVectors(t *testing.T) {
	rec := record([]string{"a", "b", "c"}, [][]float32{{1, 2, 3}, nil, {7, 8, 9}})
	defer rec.Release()
	vals, dim, valid, err := sink.Vectors(rec, "embedding")
	if err != nil {
		t.Fatal(err)
	}
	if dim != 3 || len(vals) != 9 || vals[0] != 1 || vals[8] != 9 || len(valid) != 3 || !valid[0] || valid[1] || !valid[2] {
		t.Fatalf("vals %v dim %d valid %v", vals, dim, valid)
	}
	sl := rec.NewSlice(2, 3)
	defer sl.Release()
	vals, _, valid, err = sink.Vectors(sl, "embedding")
	if err != nil || len(vals) != 3 || vals[0] != 7 || valid != nil {
		t.Fatalf("slice: %v %v %v", vals, valid, err)
	}
	if _, _, _, err := sink.Vectors(rec, "text"); !errors.Is(err, sink.ErrColumn) {
		t.Fatalf("text column: %v", err)
	}
	if _, _, _, err := sink.Vectors(rec, "nope"); !errors.Is(err, sink.ErrColumn) {
		t.Fatalf("missing column: %v", err)
	}
}

// TestFileSink: a file appears only on Commit, with every batch written;
// Abort leaves nothing.
func TestFileSink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.parquet")
	w, err := dataset.Create(path, schema)
	if err != nil {
		t.Fatal(err)
	}
	s := sink.File(w)
	defer s.Abort(ctx)
	for seq, texts := range [][]string{{"a", "b"}, {"c"}} {
		vecs := make([][]float32, len(texts))
		for i := range vecs {
			vecs[i] = []float32{float32(seq), float32(i), 1}
		}
		rec := record(texts, vecs)
		err := s.Write(ctx, sink.Batch{Record: rec, Seq: seq})
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("output exists before Commit")
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	r, err := dataset.Open(path, dataset.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rows := 0
	for {
		c, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows += int(c.Record.NumRows())
		c.Record.Release()
	}
	if rows != 3 {
		t.Fatalf("%d rows, want 3", rows)
	}

	aborted := filepath.Join(dir, "aborted.parquet")
	w, err = dataset.Create(aborted, schema)
	if err != nil {
		t.Fatal(err)
	}
	s = sink.File(w)
	rec := record([]string{"x"}, [][]float32{{1, 1, 1}})
	defer rec.Release()
	if err := s.Write(ctx, sink.Batch{Record: rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("after Abort the directory holds %d entries, want only out.parquet", len(ents))
	}
}

// TestBatchKeys checks the stable row keys: the input row without chunks,
// "<row>:<chunk>" from a chunk_index column read back across batches, and
// an error for a batch that begins inside a row no batch began.
func TestBatchKeys(t *testing.T) {
	rec := record([]string{"a", "b"}, [][]float32{{1, 2, 3}, {4, 5, 6}})
	defer rec.Release()
	if b := (sink.Batch{Record: rec, FirstRow: 40}); b.Key(0) != "40" || b.Key(1) != "41" {
		t.Fatalf("keys %q %q", b.Key(0), b.Key(1))
	}
	chunkSchema := arrow.NewSchema([]arrow.Field{{Name: "chunk_index", Type: arrow.PrimitiveTypes.Int32}}, nil)
	chunks := func(idx ...int32) arrow.Record {
		bld := array.NewRecordBuilder(memory.DefaultAllocator, chunkSchema)
		defer bld.Release()
		bld.Field(0).(*array.Int32Builder).AppendValues(idx, nil)
		return bld.NewRecord()
	}
	var next int64
	var keys []string
	for _, idx := range [][]int32{{0, 1, 2, 0}, {1, 0, 0, 1}} {
		r := chunks(idx...)
		b := sink.Batch{Record: r}
		if err := b.ChunkKeys("chunk_index", &next); err != nil {
			t.Fatal(err)
		}
		for i := range idx {
			keys = append(keys, b.Key(i))
		}
		r.Release()
	}
	if got := strings.Join(keys, " "); got != "0:0 0:1 0:2 1:0 1:1 2:0 3:0 3:1" || next != 4 {
		t.Fatalf("keys %s, next %d", got, next)
	}
	r := chunks(1, 0)
	defer r.Release()
	next = 0
	b := sink.Batch{Record: r}
	if err := b.ChunkKeys("chunk_index", &next); !errors.Is(err, sink.ErrColumn) {
		t.Fatalf("a batch starting at chunk 1: %v", err)
	}
	if err := (&sink.Batch{Record: rec}).ChunkKeys("chunk_index", &next); !errors.Is(err, sink.ErrColumn) {
		t.Fatalf("no chunk column: %v", err)
	}
}
