package pgsink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/pgvector/pgvector-go"
)

// sparseTestType is the pipeline's sparse vector column type.
var sparseTestType = arrow.StructOf(
	arrow.Field{Name: "indices", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
	arrow.Field{Name: "values", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32)},
)

// sparseRecord builds a record of (text, embedding) rows from the given
// vectors; a nil indices slice is a null vector.
func sparseRecord(t *testing.T, idx [][]int32, val [][]float32) arrow.Record {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String},
		{Name: "embedding", Type: sparseTestType, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	sb := b.Field(1).(*array.StructBuilder)
	ib, vb := sb.FieldBuilder(0).(*array.ListBuilder), sb.FieldBuilder(1).(*array.ListBuilder)
	for i := range idx {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprint("row ", i))
		if idx[i] == nil {
			sb.AppendNull() // and a null to each child
			continue
		}
		sb.Append(true)
		ib.Append(true)
		ib.ValueBuilder().(*array.Int32Builder).AppendValues(idx[i], nil)
		vb.Append(true)
		vb.ValueBuilder().(*array.Float32Builder).AppendValues(val[i], nil)
	}
	return b.NewRecord()
}

// TestSparseRoundTrip writes sparse vectors (index 0 and the last index
// included) by COPY binary and reads them back as pgvector-go values and as
// pgvector's text form, whose indices are 1-based; a zero value is left
// out; the table is sparsevec(dim) and an HNSW index uses the distance's
// sparsevec operator class.
func TestSparseRoundTrip(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	const dim = 30522
	idx := [][]int32{{0, 5, dim - 1}, {7}, nil, {1, 2, 3, 100}}
	val := [][]float32{{0.5, 1.25, 3e-7}, {2}, nil, {0.1, 0, 0.3, 9.75}}
	rec := sparseRecord(t, idx, val)
	defer rec.Release()
	s := open(t, Options{URL: url, Table: "sp", Precision: PrecisionSparse, Dim: dim, Index: IndexHNSW, Distance: IP}, rec.Schema())
	if _, err := s.Write(ctx, Batch{RunKey: "r", Record: rec, Keys: keysOf(0, 4)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	c := connect(t, url)
	var typ, def string
	if err := c.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sp'::regclass AND attname = 'embedding'").Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT indexdef FROM pg_indexes WHERE tablename = 'sp' AND indexdef LIKE '%hnsw%'").Scan(&def); err != nil {
		t.Fatal(err)
	}
	if typ != "sparsevec(30522)" || !strings.Contains(def, "sparsevec_ip_ops") {
		t.Fatalf("column %s, index %s", typ, def)
	}
	for i := range idx {
		var v *pgvector.SparseVector
		var text *string
		if err := c.QueryRow(ctx, "SELECT embedding, embedding::text FROM sp WHERE id = $1", keysOf(i, i+1)[0]).Scan(&v, &text); err != nil {
			t.Fatal(err)
		}
		if idx[i] == nil {
			if v != nil || text != nil {
				t.Fatalf("row %d: %v, want null", i, v)
			}
			continue
		}
		var wi []int32
		var wv []float32
		var wt []string
		for k, x := range idx[i] {
			if val[i][k] != 0 {
				wi, wv = append(wi, x), append(wv, val[i][k])
				wt = append(wt, strconv.Itoa(int(x)+1)+":"+strconv.FormatFloat(float64(val[i][k]), 'g', -1, 32))
			}
		}
		if v.Dimensions() != dim || !slices.Equal(v.Indices(), wi) || !slices.Equal(v.Values(), wv) {
			t.Fatalf("row %d: %d dims %v %v, want %v %v", i, v.Dimensions(), v.Indices(), v.Values(), wi, wv)
		}
		// pgvector prints 1-based indices: the text form proves the binary
		// copy stored the 0-based ones where pgvector means them.
		var txt pgvector.SparseVector
		if err := txt.Parse(*text); err != nil || !slices.Equal(txt.Indices(), wi) || !slices.Equal(txt.Values(), wv) {
			t.Fatalf("row %d: text %s (%v), want 1-based %s", i, *text, err, strings.Join(wt, ","))
		}
		if !strings.HasPrefix(*text, "{"+wt[0]+",") && *text != "{"+wt[0]+"}/30522" {
			t.Fatalf("row %d: text %s, want it to start with %s", i, *text, wt[0])
		}
	}
	// Inner products as pgvector computes them (<#> is their negative).
	var ip float64
	q := pgvector.NewSparseVectorFromMap(map[int32]float32{5: 2, 100: 1, 3: -1}, dim)
	if err := c.QueryRow(ctx, "SELECT -(embedding <#> $1) FROM sp WHERE id = $2", q, keysOf(3, 4)[0]).Scan(&ip); err != nil {
		t.Fatal(err)
	}
	if want := 9.75 - 0.3; math.Abs(ip-want) > 1e-5 {
		t.Fatalf("inner product %v, want %v", ip, want)
	}
}

// TestSparseRefusals: what pgvector cannot hold is refused with the reason
// and writes nothing — IVFFlat, a missing or oversized dimension, a table of
// another shape, and rows over the entry limit (1,000 with HNSW), out of
// order, outside the dimension or not finite.
func TestSparseRefusals(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	rec := sparseRecord(t, [][]int32{{1, 2}}, [][]float32{{1, 2}})
	defer rec.Release()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Index: IndexIVFFlat, Dim: 10}, "IVFFlat does not index sparsevec"},
		{Options{}, "needs its dimension"},
		{Options{Dim: 2000000000}, "1 to 1000000000 dimensions"},
		{Options{Dim: 10, Index: IndexHNSW, Distance: Hamming}, "hamming does not apply to sparsevec"},
	} {
		o := tc.o
		o.URL, o.Table, o.Precision = url, "refused", PrecisionSparse
		if err := Check(ctx, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check %+v: %v, want %q", tc.o, err, tc.want)
		}
		if _, err := Open(ctx, o, rec.Schema()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open %+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	c := connect(t, url)
	if _, err := c.Exec(ctx, "CREATE TABLE dense (id text PRIMARY KEY, text text, embedding vector(10)); CREATE TABLE narrow (id text PRIMARY KEY, text text, embedding sparsevec(9))"); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]string{
		"dense":  `column "embedding" is vector(10), this run writes sparsevec(10)`,
		"narrow": `column "embedding" is sparsevec(9), this run writes sparsevec(10)`,
	} {
		_, err := Open(ctx, Options{URL: url, Table: table, Precision: PrecisionSparse, Dim: 10}, rec.Schema())
		if !errors.Is(err, ErrTableShape) || !strings.Contains(err.Error(), want) {
			t.Errorf("table %s: %v, want %q", table, err, want)
		}
	}

	many := make([]int32, MaxSparseIndexEntries+1)
	ones := make([]float32, len(many))
	for i := range many {
		many[i], ones[i] = int32(3*i), 1
	}
	huge := make([]int32, MaxSparseEntries+1)
	hugeVals := make([]float32, len(huge))
	for i := range huge {
		huge[i], hugeVals[i] = int32(i), 0.5
	}
	for _, tc := range []struct {
		name string
		idx  []int32
		val  []float32
		o    Options
		want string
	}{
		{"hnsw limit", many, ones, Options{Index: IndexHNSW}, "1001 non-zero entries; pgvector's HNSW index takes sparse vectors of at most 1000 (--sparse-top-k 1000"},
		{"limit", huge, hugeVals, Options{}, "16001 non-zero entries; pgvector's sparsevec holds at most 16000 (--sparse-top-k 16000"},
		{"order", []int32{4, 2}, []float32{1, 1}, Options{}, "index 2 after 4"},
		{"repeat", []int32{4, 4}, []float32{1, 1}, Options{}, "index 4 after 4"},
		{"range", []int32{1, 100000}, []float32{1, 1}, Options{}, "index 100000 outside sparsevec(100000)"},
		{"negative", []int32{-1}, []float32{1}, Options{}, "index -1 outside"},
		{"nan", []int32{1}, []float32{float32(math.NaN())}, Options{}, "value NaN"},
		{"lengths", []int32{1, 2}, []float32{1}, Options{}, "2 indices and 1 values"},
	} {
		r := sparseRecord(t, [][]int32{{1}, tc.idx}, [][]float32{{1}, tc.val})
		o := tc.o
		o.URL, o.Table, o.Precision, o.Dim = url, "rows_"+strings.ReplaceAll(tc.name, " ", "_"), PrecisionSparse, 100000
		s := open(t, o, r.Schema())
		_, err := s.Write(ctx, Batch{RunKey: "r", Record: r, Keys: keysOf(0, 2), Where: "batch 0"})
		r.Release()
		if !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "batch 0: row 1: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want row 1 and %q", tc.name, err, tc.want)
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+o.Table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows written (%v), want none", tc.name, n, err)
		}
	}
	// Without an index, the same 1,001 entries fit (pgvector takes 16,000).
	r := sparseRecord(t, [][]int32{many}, [][]float32{ones})
	defer r.Release()
	s := open(t, Options{URL: url, Table: "noindex", Precision: PrecisionSparse, Dim: 10000}, r.Schema())
	if _, err := s.Write(ctx, Batch{RunKey: "r", Record: r, Keys: keysOf(0, 1)}); err != nil {
		t.Fatal(err)
	}
	var nnz int
	if err := c.QueryRow(ctx, "SELECT array_length(string_to_array(trim(both '{}' from split_part(embedding::text, '/', 1)), ','), 1) FROM noindex").Scan(&nnz); err != nil || nnz != len(many) {
		t.Fatalf("%d entries stored (%v), want %d", nnz, err, len(many))
	}
}
