package workers

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/embedpipe/embedpipe/io/parquetio"
	"github.com/embedpipe/embedpipe/schemas"
	pgo "github.com/parquet-go/parquet-go"
)

// writePqarrow writes texts with arrow-go's pqarrow directly, as any
// arrow-go program does: a REPEATED schema root, a list<string> and a
// fixed_size_list<float32> column beside the text, 7 rows per row group.
func writePqarrow(t *testing.T, path string, texts []string) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "vec", Type: arrow.FixedSizeListOfNonNullable(2, arrow.PrimitiveTypes.Float32)},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, s := range texts {
		lb := b.Field(0).(*array.ListBuilder)
		lb.Append(true)
		for j := 0; j < i%3; j++ {
			lb.ValueBuilder().(*array.StringBuilder).Append("t")
		}
		b.Field(1).(*array.StringBuilder).Append(s)
		fb := b.Field(2).(*array.FixedSizeListBuilder)
		fb.Append(true)
		fb.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{float32(i), 1}, nil)
	}
	rec := b.NewRecord()
	defer rec.Release()
	tbl := array.NewTableFromRecords(schema, []arrow.Record{rec})
	defer tbl.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pqarrow.WriteTable(tbl, f, 7, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
}

// writeParquetGo writes texts with parquet-go: a required text column
// after a LIST column, 9 rows per row group.
func writeParquetGo(t *testing.T, path string, texts []string) {
	t.Helper()
	type row struct {
		Labels []string `parquet:"labels,list"`
		Text   string   `parquet:"text"`
		N      int32    `parquet:"n"`
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pgo.NewGenericWriter[row](f, pgo.MaxRowsPerRowGroup(9))
	rows := make([]row, len(texts))
	for i, s := range texts {
		rows[i] = row{Labels: []string{"a", "b"}[:i%3%2+1], Text: s, N: int32(i)}
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeEmbedpipe writes texts the way embedpipe writes its outputs
// (parquetio), with an embedding column already there, 10 rows per row
// group: the file of `embed … --output x.parquet` given to submit.
func writeEmbedpipe(t *testing.T, path string, texts []string) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "embedding", Type: arrow.FixedSizeListOfNonNullable(2, arrow.PrimitiveTypes.Float32), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, s := range texts {
		b.Field(0).(*array.StringBuilder).Append(s)
		fb := b.Field(1).(*array.FixedSizeListBuilder)
		fb.Append(true)
		fb.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{float32(i), 1}, nil)
	}
	rec := b.NewRecord()
	defer rec.Release()
	w, err := parquetio.Create(path, schema, parquetio.WriteOptions{RowGroupRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestPlanAnyWriter plans and runs jobs over Parquet files from several
// writers: arrow-go pqarrow (REPEATED root, list columns), parquet-go,
// embedpipe's own output, and pyarrow (parquet-cpp-arrow 25, the shared
// reference file with list and fixed_size_list columns). Every file must
// plan into row-group tasks that the worker's runner embeds, every row
// accounted for.
func TestPlanAnyWriter(t *testing.T) {
	dir := t.TempDir()
	texts := corpus(t)[:40]
	files := map[string]string{}
	files["pqarrow"] = filepath.Join(dir, "pqarrow.parquet")
	writePqarrow(t, files["pqarrow"], texts)
	files["parquet-go"] = filepath.Join(dir, "parquet-go.parquet")
	writeParquetGo(t, files["parquet-go"], texts)
	files["embedpipe"] = filepath.Join(dir, "embedpipe.parquet")
	writeEmbedpipe(t, files["embedpipe"], texts)
	files["pyarrow"] = "../../shared/refs/tiny-bert.parquet"
	runner := &PipelineRunner{Model: tinyModel(t)}
	for writer, path := range files {
		t.Run(writer, func(t *testing.T) {
			r, err := parquetio.Open(path, parquetio.ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := r.NumRows()
			r.Close()
			out := filepath.Join(dir, "out-"+writer)
			job := schemas.Job{Schema: schemas.JobV1, ID: "w-" + writer, Column: "text",
				Output: schemas.Output{Dir: out, Column: "e2"}, Inputs: []schemas.Input{{Path: path}}}
			tasks, total, err := Plan(job, 12)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if total != want || len(tasks) == 0 || (writer != "pyarrow" && len(tasks) < 2) {
				t.Fatalf("plan: %d tasks, %d rows; the file has %d rows", len(tasks), total, want)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			var rows int64
			for _, tk := range tasks {
				part, err := runner.RunTask(context.Background(), tk, path, out)
				if err != nil {
					t.Fatalf("task %d: %v", tk.Index, err)
				}
				if part.Rows != tk.Rows {
					t.Errorf("task %d wrote %d rows, planned %d", tk.Index, part.Rows, tk.Rows)
				}
				rows += part.Rows
			}
			if rows != want {
				t.Errorf("the parts hold %d rows, the file %d", rows, want)
			}
		})
	}
}
