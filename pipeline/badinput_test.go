package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/parquetio"
)

// writeTexts writes a Parquet file with an id column and a text column of
// the given Arrow string type (nil entries are nulls).
func writeTexts(t testing.TB, path string, typ arrow.DataType, texts []*string, rowGroupRows int) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "text", Type: typ, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, s := range texts {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		switch tb := b.Field(1).(type) {
		case *array.StringBuilder:
			if s == nil {
				tb.AppendNull()
			} else {
				tb.Append(*s)
			}
		case *array.LargeStringBuilder:
			if s == nil {
				tb.AppendNull()
			} else {
				tb.Append(*s)
			}
		case *array.BinaryDictionaryBuilder:
			if s == nil {
				tb.AppendNull()
			} else if err := tb.AppendString(*s); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unsupported builder %T", tb)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	w, err := parquetio.Create(path, schema, parquetio.WriteOptions{RowGroupRows: rowGroupRows})
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

func sp(s string) *string { return &s }

func TestBadInputAccounting(t *testing.T) {
	m := loadTinyBert(t)
	texts := []*string{sp("hello"), sp(""), sp("   "), nil, sp("bad \xff\xfe utf8"), sp(strings.Repeat("long text ", 100)), sp("hello"), nil}
	for _, typ := range []arrow.DataType{
		arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString,
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String},
	} {
		t.Run(typ.String(), func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.parquet")
			writeTexts(t, in, typ, texts, 3)
			out := filepath.Join(dir, "out.parquet")
			sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, ChunkRows: 2})
			if err != nil {
				t.Fatal(err)
			}
			if sum.RowsIn != 8 || sum.RowsOut != 8 || sum.Nulls != 2 || sum.InvalidUTF8 != 1 || sum.Truncated != 1 {
				t.Fatalf("summary %+v", sum)
			}
			tbl := readOutput(t, out)
			if !arrow.TypeEqual(tbl.Schema().Field(1).Type, typ) {
				t.Fatalf("text column type %s, want %s", tbl.Schema().Field(1).Type, typ)
			}
			got, _ := embeddings(t, tbl, "embedding")
			if got[3] != nil || got[7] != nil || got[1] == nil || got[2] == nil {
				t.Fatal("nulls in must be nulls out, empty and blank texts embedded")
			}
			// Empty and blank texts both tokenize to [CLS][SEP].
			for d := range got[1] {
				if got[1][d] != got[2][d] || got[0][d] != got[6][d] {
					t.Fatal("identical token sequences gave different embeddings")
				}
			}
			// The invalid bytes are embedded as U+FFFD.
			want := make([]float32, m.Dim())
			if err := m.Embed(context.Background(), []string{"bad \uFFFD utf8"}, "", want); err != nil {
				t.Fatal(err)
			}
			for d := range want {
				if got[4][d] != want[d] {
					t.Fatalf("invalid UTF-8 row differs from its U+FFFD replacement at dim %d", d)
				}
			}
		})
	}
}

func TestMissingColumnAndCorruptFile(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	texts := make([]*string, 40)
	for i := range texts {
		texts[i] = sp(strings.Repeat("word ", i))
	}
	writeTexts(t, in, arrow.BinaryTypes.String, texts, 10)
	_, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, "o.parquet"), Column: "body"})
	if !errors.Is(err, fileio.ErrMissingColumn) || !strings.Contains(err.Error(), `"id" "text"`) {
		t.Fatalf("missing column: %v", err)
	}
	_, err = Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, "o.parquet"), Column: "id"})
	if !errors.Is(err, fileio.ErrColumnType) {
		t.Fatalf("integer text column: %v", err)
	}
	data, _ := os.ReadFile(in)
	rgs, _ := parquetio.RowGroups(in)
	off := 4 + rgs[0].CompressedBytes + rgs[1].CompressedBytes
	for i := off; i < off+rgs[2].CompressedBytes; i++ {
		data[i] ^= 0x33
	}
	bad := filepath.Join(dir, "bad.parquet")
	os.WriteFile(bad, data, 0o644)
	out := filepath.Join(dir, "bad-out.parquet")
	_, err = Run(context.Background(), m, Config{Inputs: []Input{{Path: bad}}, Output: out})
	if !errors.Is(err, fileio.ErrCorrupt) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "row group 2") {
		t.Fatalf("corrupt row group: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed run left an output file")
	}
}

// noSpecialsModel copies tiny-bert without its post-processor, so that an
// empty text gives no tokens at all: a real row the encoder rejects.
func noSpecialsModel(t *testing.T) *encoder.Model {
	t.Helper()
	src := filepath.Join(repoRoot(), "testdata", "tiny-bert")
	dst := t.TempDir()
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "tokenizer.json" {
			var tj map[string]any
			if err := json.Unmarshal(data, &tj); err != nil {
				t.Fatal(err)
			}
			tj["post_processor"] = nil
			data, _ = json.Marshal(tj)
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	m, err := encoder.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOnError(t *testing.T) {
	m := noSpecialsModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	writeTexts(t, in, arrow.BinaryTypes.String, []*string{sp("a"), sp(""), sp("b"), nil, sp("")}, 100)
	out := filepath.Join(dir, "out.parquet")

	_, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out})
	if !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "row 1") || !strings.Contains(err.Error(), in) {
		t.Fatalf("on-error fail: %v", err)
	}

	errsPath := filepath.Join(dir, "errors.jsonl")
	sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, OnError: OnErrorSkip, ErrorsPath: errsPath, Resume: false})
	if err != nil {
		t.Fatal(err)
	}
	if sum.RowsIn != 5 || sum.RowsOut != 3 || sum.Skipped != 2 || sum.Nulls != 1 {
		t.Fatalf("skip summary %+v", sum)
	}
	tbl := readOutput(t, out)
	ids := tbl.Column(0).Data().Chunk(0).(*array.Int64).Int64Values()
	if len(ids) != 3 || ids[0] != 0 || ids[1] != 2 || ids[2] != 3 {
		t.Fatalf("kept ids %v, want [0 2 3]", ids)
	}
	lines, _ := os.ReadFile(errsPath)
	if n := strings.Count(string(lines), "\n"); n != 2 || !strings.Contains(string(lines), `"row":4`) {
		t.Fatalf("errors file:\n%s", lines)
	}

	sum, err = Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, OnError: OnErrorNull})
	if err != nil {
		t.Fatal(err)
	}
	if sum.RowsOut != 5 || sum.Errors != 2 {
		t.Fatalf("null summary %+v", sum)
	}
	got, _ := embeddings(t, readOutput(t, out), "embedding")
	if got[1] != nil || got[4] != nil || got[0] == nil || got[3] != nil {
		t.Fatal("on-error null: wrong null pattern")
	}
}

// TestFailedRunSummary runs two inputs, the second with a corrupt row
// group: the summary counts only the first file, whose output was written,
// names where the run stopped, and is the same on every run.
func TestFailedRunSummary(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	texts := make([]*string, 40)
	for i := range texts {
		texts[i] = sp(strings.Repeat("word ", 1+i))
	}
	writeTexts(t, good, arrow.BinaryTypes.String, texts, 10)
	writeTexts(t, bad, arrow.BinaryTypes.String, texts, 10)
	data, _ := os.ReadFile(bad)
	rgs, _ := parquetio.RowGroups(bad)
	off := 4 + rgs[0].CompressedBytes + rgs[1].CompressedBytes
	for i := off; i < off+rgs[2].CompressedBytes; i++ {
		data[i] ^= 0x33
	}
	os.WriteFile(bad, data, 0o644)
	var first Summary
	for run := 0; run < 3; run++ {
		out := filepath.Join(dir, "out")
		os.RemoveAll(out)
		sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: good}, {Path: bad}}, Output: out, ChunkRows: 5, Resume: false})
		if !errors.Is(err, fileio.ErrCorrupt) {
			t.Fatalf("run %d: err = %v, want a corrupt-file error", run, err)
		}
		if sum.RowsIn != 40 || sum.RowsOut != 40 || sum.Files != 1 || len(sum.Outputs) != 1 {
			t.Fatalf("run %d: summary counts rows_in %d, rows_out %d, files %d, outputs %v; want only a.parquet's 40 rows",
				run, sum.RowsIn, sum.RowsOut, sum.Files, sum.Outputs)
		}
		for _, o := range sum.Outputs {
			if _, err := os.Stat(o); err != nil {
				t.Fatalf("summary lists output %s: %v", o, err)
			}
		}
		if sum.Stopped == nil || sum.Stopped.Input != bad || !strings.Contains(sum.Stopped.Error, "row group 2") || sum.Stopped.Interrupted {
			t.Fatalf("run %d: stopped = %+v, want b.parquet, row group 2", run, sum.Stopped)
		}
		if _, err := os.Stat(sum.Stopped.Output); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the failed file's output %s exists", sum.Stopped.Output)
		}
		if run == 0 {
			first = sum
		} else if sum.RowsOut != first.RowsOut || sum.Tokens != first.Tokens || sum.Embedded != first.Embedded || sum.Batches != first.Batches {
			t.Fatalf("run %d counts %+v differ from run 0's %+v", run, sum, first)
		}
	}
}
