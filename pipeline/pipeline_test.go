package pipeline

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func loadTinyBert(t testing.TB) *encoder.Model {
	t.Helper()
	m, err := encoder.Load(filepath.Join(repoRoot(), "testdata", "tiny-bert"), encoder.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readOutput reads every record of an output file into one table.
func readOutput(t testing.TB, path string) arrow.Table {
	t.Helper()
	r, err := dataset.Open(path, dataset.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []arrow.Record
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, c.Record)
	}
	return array.NewTableFromRecords(r.Schema(), recs)
}

// embeddings returns the fixed-size float32 embedding column of tbl as rows
// (nil for null rows) and its width.
func embeddings(t testing.TB, tbl arrow.Table, name string) ([][]float32, int) {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) == 0 {
		t.Fatalf("no column %q in %s", name, tbl.Schema())
	}
	ft, ok := tbl.Schema().Field(idx[0]).Type.(*arrow.FixedSizeListType)
	if !ok || ft.Elem().ID() != arrow.FLOAT32 {
		t.Fatalf("column %q has type %s, want fixed_size_list<float32>", name, tbl.Schema().Field(idx[0]).Type)
	}
	dim := int(ft.Len())
	var out [][]float32
	for _, ch := range tbl.Column(idx[0]).Data().Chunks() {
		fl := ch.(*array.FixedSizeList)
		vals := fl.ListValues().(*array.Float32).Float32Values()
		for r := 0; r < fl.Len(); r++ {
			if fl.IsNull(r) {
				out = append(out, nil)
				continue
			}
			s, e := fl.ValueOffsets(r)
			out = append(out, vals[s:e])
		}
	}
	return out, dim
}

func corpusPath(t testing.TB) string {
	return filepath.Join(refs.Shared(t), "refs", "corpus.public.jsonl")
}

// TestCorpusMatchesSentenceTransformers embeds the public corpus through the
// whole pipeline and compares with the sentence-transformers reference.
func TestCorpusMatchesSentenceTransformers(t *testing.T) {
	m := loadTinyBert(t)
	want := refs.Read[refs.Row](t, "tiny-bert.parquet")
	out := filepath.Join(t.TempDir(), "out.parquet")
	sum, err := Run(context.Background(), m, Config{
		Inputs: []Input{{Path: corpusPath(t)}}, Output: out, ChunkRows: 500, BatchSize: 16, MaxBatchTokens: 1024, Workers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.RowsIn != int64(len(want)) || sum.RowsOut != sum.RowsIn {
		t.Fatalf("summary %+v, want %d rows in and out", sum, len(want))
	}
	tbl := readOutput(t, out)
	got, dim := embeddings(t, tbl, "embedding")
	if dim != m.Dim() || len(got) != len(want) {
		t.Fatalf("got %d rows of dim %d, want %d of %d", len(got), dim, len(want), m.Dim())
	}
	texts, _ := fileio.NewTextColumn(tbl.Column(0).Data().Chunk(0))
	var worst float64
	for i, w := range want {
		if i < texts.Len() {
			if s, ok := texts.Value(i); ok && w.Text != nil && s != *w.Text {
				t.Fatalf("row %d text %q, reference %q", i, s, *w.Text)
			}
		}
		if got[i] == nil {
			t.Fatalf("row %d: null embedding", i)
		}
		for d := range w.Embedding {
			worst = math.Max(worst, math.Abs(float64(got[i][d]-w.Embedding[d])))
		}
	}
	if worst > 2e-5 {
		t.Fatalf("max abs diff %g > 2e-5", worst)
	}
	t.Logf("max abs diff %.3g over %d rows; summary %+v", worst, len(want), sum)
	if _, err := os.Stat(checkpointDir(out)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint directory left behind: %v", err)
	}
}
