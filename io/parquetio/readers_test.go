package parquetio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/embedpipe/embedpipe/io/parquetio"
	"github.com/parquet-go/parquet-go"
)

// nullDim is the embedding width of the files the reader tests write.
const nullDim = 32

// nullRows are the rows of those files whose embedding is null (a null
// text under --on-error null, say): in the middle, next to each other, and
// last.
var nullRows = map[int]bool{3: true, 7: true, 8: true, 11: true}

// writeNullEmbeddings writes, through parquetio's Writer, 12 rows of text
// and a fixed_size_list<float32>[nullDim] embedding whose nullRows are
// null, in two row groups; value j of row i is i + j/100.
func writeNullEmbeddings(t *testing.T) string {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "embedding", Type: arrow.FixedSizeListOfNonNullable(nullDim, arrow.PrimitiveTypes.Float32), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	fb := b.Field(1).(*array.FixedSizeListBuilder)
	vb := fb.ValueBuilder().(*array.Float32Builder)
	for i := 0; i < 12; i++ {
		if nullRows[i] {
			b.Field(0).AppendNull()
			fb.AppendNull()
			continue
		}
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("row %d", i))
		fb.Append(true)
		for j := 0; j < nullDim; j++ {
			vb.Append(float32(i) + float32(j)/100)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "null-embeddings.parquet")
	w, err := parquetio.Create(path, schema, parquetio.WriteOptions{RowGroupRows: 6})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkRows fails unless rows (nil for a null embedding) are the rows that
// writeNullEmbeddings wrote.
func checkRows(t *testing.T, reader string, rows [][]float32) {
	t.Helper()
	if len(rows) != 12 {
		t.Fatalf("%s: %d rows, want 12", reader, len(rows))
	}
	for i, v := range rows {
		if nullRows[i] {
			if v != nil {
				t.Errorf("%s: row %d = %v, want null", reader, i, v)
			}
			continue
		}
		if len(v) != nullDim {
			t.Errorf("%s: row %d has %d values, want %d", reader, i, len(v), nullDim)
			continue
		}
		for j, x := range v {
			if want := float32(i) + float32(j)/100; x != want {
				t.Errorf("%s: row %d value %d = %v, want %v", reader, i, j, x, want)
				break
			}
		}
	}
}

// listRows returns the rows of a list or fixed_size_list column, nil for
// a null row.
func listRows(t *testing.T, col *arrow.Chunked) [][]float32 {
	t.Helper()
	var rows [][]float32
	for _, c := range col.Chunks() {
		l, ok := c.(array.ListLike)
		if !ok {
			t.Fatalf("embedding column is %s, want a list", c.DataType())
		}
		vals := l.ListValues().(*array.Float32).Float32Values()
		for i := 0; i < l.Len(); i++ {
			if l.IsNull(i) {
				rows = append(rows, nil)
				continue
			}
			lo, hi := l.ValueOffsets(i)
			rows = append(rows, append([]float32{}, vals[lo:hi]...))
		}
	}
	return rows
}

// TestNullEmbeddingsPqarrowV17 reads a file with null embeddings with
// arrow-go v17's own pqarrow, as a user of that library would: ReadTable
// must neither fail ("expected all lists to be of size=32") nor panic, and
// the nulls must stay nulls.
func TestNullEmbeddingsPqarrowV17(t *testing.T) {
	path := writeNullEmbeddings(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tbl arrow.Table
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("pqarrow.ReadTable panicked: %v", p)
			}
		}()
		tbl, err = pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	}()
	if err != nil {
		t.Fatalf("pqarrow.ReadTable: %v", err)
	}
	defer tbl.Release()
	idx := tbl.Schema().FieldIndices("embedding")
	if len(idx) != 1 {
		t.Fatalf("no embedding column in %s", tbl.Schema())
	}
	field := tbl.Schema().Field(idx[0])
	if !field.Nullable {
		t.Errorf("embedding field %s is not nullable", field)
	}
	if got, ok := field.Metadata.GetValue(parquetio.FixedSizeKey); !ok || got != fmt.Sprint(nullDim) {
		t.Errorf("embedding field metadata %s: %s = %q, want %d", field.Metadata, parquetio.FixedSizeKey, got, nullDim)
	}
	checkRows(t, "pqarrow v17", listRows(t, tbl.Column(idx[0]).Data()))

	// The record reader (batches rather than a table) reads it too.
	f2, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	fr, err := pqarrow.NewFileReader(f2, pqarrow.ArrowReadProperties{BatchSize: 5}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var rows [][]float32
	for {
		rec, err := rr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("record reader: %v", err)
		}
		ch := arrow.NewChunked(rec.Column(1).DataType(), []arrow.Array{rec.Column(1)})
		rows = append(rows, listRows(t, ch)...)
		ch.Release()
	}
	checkRows(t, "pqarrow v17 record reader", rows)
}

// TestNullEmbeddingsParquetio reads the file back with parquetio itself:
// the column is a fixed_size_list again, its nulls intact.
func TestNullEmbeddingsParquetio(t *testing.T) {
	path := writeNullEmbeddings(t)
	r, err := parquetio.Open(path, parquetio.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := r.Schema().Field(1)
	if ft, ok := f.Type.(*arrow.FixedSizeListType); !ok || ft.Len() != nullDim || !f.Nullable || f.Metadata.FindKey(parquetio.FixedSizeKey) >= 0 {
		t.Fatalf("embedding field read back as %s, want a nullable fixed_size_list[%d] without %s", f, nullDim, parquetio.FixedSizeKey)
	}
	var rows [][]float32
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ch := arrow.NewChunked(c.Record.Column(1).DataType(), []arrow.Array{c.Record.Column(1)})
		rows = append(rows, listRows(t, ch)...)
		ch.Release()
		c.Record.Release()
	}
	checkRows(t, "parquetio", rows)
}

// TestNullEmbeddingsParquetGo reads the file with parquet-go, which knows
// nothing of Arrow: a null embedding is a null list.
func TestNullEmbeddingsParquetGo(t *testing.T) {
	path := writeNullEmbeddings(t)
	type row struct {
		Text      *string   `parquet:"text,optional"`
		Embedding []float32 `parquet:"embedding,optional,list"`
	}
	got, err := parquet.ReadFile[row](path)
	if err != nil {
		t.Fatalf("parquet-go: %v", err)
	}
	rows := make([][]float32, len(got))
	for i, r := range got {
		rows[i] = r.Embedding
		if (r.Text == nil) != nullRows[i] {
			t.Errorf("parquet-go: row %d text %v", i, r.Text)
		}
	}
	checkRows(t, "parquet-go", rows)
}

// TestNullEmbeddingsArrowGoV18 reads the file with arrow-go v18's pqarrow,
// in the separate module testdata/readers/arrowv18 (the project itself
// stays on v17). It needs the module proxy or a module cache holding v18.
func TestNullEmbeddingsArrowGoV18(t *testing.T) {
	if testing.Short() {
		t.Skip("builds arrow-go v18")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	path := writeNullEmbeddings(t)
	cmd := exec.Command(gobin, "run", ".", path)
	cmd.Dir = filepath.Join("..", "..", "testdata", "readers", "arrowv18")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("arrow-go v18 reader: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var rows [][]float32
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("arrow-go v18 reader printed %q: %v", out, err)
	}
	checkRows(t, "pqarrow v18", rows)
}

// TestNullEmbeddingsDuckDBLanceDB reads the file with DuckDB, as the README
// shows (the column is FLOAT[], cast to FLOAT[dim]), and stores those rows
// in a LanceDB table with a fixed_size_list vector column and reads them
// back, through testdata/readers/node (installed by .ci/run with npm ci).
func TestNullEmbeddingsDuckDBLanceDB(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "readers", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Skip("DuckDB and LanceDB are not installed: run (cd testdata/readers/node && npm ci) to enable this test")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node command")
	}
	path, err := filepath.Abs(writeNullEmbeddings(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "read.mjs", path, fmt.Sprint(nullDim))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node read.mjs: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got struct {
		DuckDBType string      `json:"duckdb_type"`
		DuckDB     [][]float32 `json:"duckdb"`
		LanceDB    [][]float32 `json:"lancedb"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node read.mjs printed %.300q: %v", out, err)
	}
	if got.DuckDBType != "FLOAT[]" {
		t.Errorf("DuckDB reads the column as %s, want FLOAT[] (as the README says)", got.DuckDBType)
	}
	checkRows(t, "DuckDB", got.DuckDB)
	checkRows(t, "LanceDB", got.LanceDB)
}
