package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/io/dataset"
)

// sparseInput writes the first n texts of the tiny-splade reference as a
// JSONL file (and a null text) and returns its path and the rows.
func sparseInput(t *testing.T, n int) (string, []refs.SparseRow) {
	t.Helper()
	rows := refs.ReadJSONL[refs.SparseRow](t, "tiny-splade.jsonl.gz")[:n]
	var b strings.Builder
	for _, r := range rows {
		js, _ := json.Marshal(map[string]any{"text": r.Text})
		b.Write(append(js, '\n'))
	}
	b.WriteString(`{"text": null}` + "\n")
	path := filepath.Join(t.TempDir(), "texts.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, rows
}

// TestEmbedSparseJSONL runs embed on tiny-splade: each row gets
// {"indices": [...], "values": [...]} matching the reference (entries above
// 1e-4 present, values within 2e-5), a null text a null vector, and
// --sparse-top-k keeps the K largest weights in index order.
func TestEmbedSparseJSONL(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	model := refs.ModelDir(t, "tiny-splade")
	in, want := sparseInput(t, 40)
	type vec struct {
		Indices []int32   `json:"indices"`
		Values  []float64 `json:"values"`
	}
	run := func(extra ...string) []*vec {
		out := filepath.Join(t.TempDir(), "sparse.jsonl")
		args := append([]string{"--model", model, "--input", in, "--output", out, "--quiet", "--chunk-rows", "16"}, extra...)
		if err := runEmbed(context.Background(), args); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var got []*vec
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var r struct {
				Embedding *vec `json:"embedding"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			got = append(got, r.Embedding)
		}
		if len(got) != len(want)+1 || got[len(want)] != nil {
			t.Fatalf("%d rows (last %v), want %d and a null", len(got), got[len(got)-1], len(want)+1)
		}
		return got[:len(want)]
	}
	worst := 0.0
	for i, g := range run() {
		ref := map[int32]float64{}
		for j, x := range want[i].Indices {
			ref[x] = want[i].Values[j]
		}
		seen := map[int32]bool{}
		for j, x := range g.Indices {
			if j > 0 && x <= g.Indices[j-1] {
				t.Fatalf("row %d: indices not ascending", i)
			}
			worst = math.Max(worst, math.Abs(g.Values[j]-ref[x]))
			seen[x] = true
		}
		for x, v := range ref {
			if !seen[x] {
				if v > 1e-4 {
					t.Errorf("row %d: reference entry %d (%g) missing", i, x, v)
				}
				worst = math.Max(worst, v)
			}
		}
	}
	t.Logf("%d sparse vectors, worst abs diff %.3g", len(want), worst)
	if worst > 2e-5 {
		t.Errorf("worst abs diff %.3g > 2e-5", worst)
	}
	for i, g := range run("--sparse-top-k", "3") {
		if len(g.Indices) != min(3, len(want[i].Indices)) {
			t.Fatalf("row %d: top-3 has %d entries", i, len(g.Indices))
		}
		// The three largest reference weights are the ones kept.
		floor := math.Inf(1)
		for _, v := range g.Values {
			floor = math.Min(floor, v)
		}
		larger := 0
		for _, v := range want[i].Values {
			if v > floor+2e-5 {
				larger++
			}
		}
		if larger > 3 {
			t.Errorf("row %d: %d reference weights exceed the smallest kept one", i, larger)
		}
	}
}

// TestEmbedSparseParquet writes tiny-splade's sparse vectors to Parquet and
// reads them back with the Arrow reader as struct<indices: list<int32>,
// values: list<float32>>.
func TestEmbedSparseParquet(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	model := refs.ModelDir(t, "tiny-splade")
	in, want := sparseInput(t, 10)
	out := filepath.Join(t.TempDir(), "sparse.parquet")
	if err := runEmbed(context.Background(), []string{"--model", model, "--input", in, "--output", out, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.Open(out, dataset.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, ok := r.Schema().FieldsByName("embedding")
	if !ok {
		t.Fatalf("schema %v has no embedding column", r.Schema())
	}
	st, ok := f[0].Type.(*arrow.StructType)
	if !ok || st.NumFields() != 2 || st.Field(0).Name != "indices" || st.Field(1).Name != "values" ||
		!arrow.TypeEqual(st.Field(0).Type, arrow.ListOf(arrow.PrimitiveTypes.Int32)) ||
		!arrow.TypeEqual(st.Field(1).Type, arrow.ListOf(arrow.PrimitiveTypes.Float32)) {
		t.Fatalf("embedding column is %s, want struct<indices: list<int32>, values: list<float32>>", f[0].Type)
	}
	rows := 0
	for {
		c, err := r.Next(context.Background())
		if err != nil {
			break
		}
		col := c.Record.Column(r.Schema().FieldIndices("embedding")[0]).(*array.Struct)
		idx := col.Field(0).(*array.List)
		for i := 0; i < col.Len(); i++ {
			if rows < len(want) {
				lo, hi := idx.ValueOffsets(i)
				if n := int(hi - lo); n < len(want[rows].Indices)/2 || col.IsNull(i) {
					t.Errorf("row %d: %d entries, the reference has %d", rows, n, len(want[rows].Indices))
				}
			} else if !col.IsNull(i) {
				t.Errorf("row %d: null text, non-null vector", rows)
			}
			rows++
		}
		c.Record.Release()
	}
	if rows != len(want)+1 {
		t.Errorf("%d rows read back, want %d", rows, len(want)+1)
	}
}
