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

// scoreInput writes the first n reference pairs of tiny-reranker (and
// every truncation pair) as a JSONL file with query and document columns,
// plus one row with a null document, and returns the path and the pairs.
func scoreInput(t *testing.T, n int) (string, []refs.PairRow) {
	t.Helper()
	rows := refs.ReadJSONL[refs.PairRow](t, "tiny-reranker.jsonl.gz")
	var picked []refs.PairRow
	for i, r := range rows {
		if i < n || r.Pair != "corpus" {
			picked = append(picked, r)
		}
	}
	var b strings.Builder
	for _, r := range picked {
		js, _ := json.Marshal(map[string]any{"id": len(b.String()), "query": r.Query, "document": r.Passage})
		b.Write(append(js, '\n'))
	}
	b.WriteString(`{"id": -1, "query": "q", "document": null}` + "\n")
	path := filepath.Join(t.TempDir(), "pairs.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, picked
}

// TestScoreJSONL runs score on reference pairs (long pairs truncated
// longest first included) and checks the score and logit columns against
// the float64 reference within 2e-5, and that a null document gives null
// scores.
func TestScoreJSONL(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	model := refs.ModelDir(t, "tiny-reranker")
	in, want := scoreInput(t, 40)
	out := filepath.Join(t.TempDir(), "scored.jsonl")
	if err := runScore(context.Background(), []string{"--model", model, "--input", in, "--output", out, "--quiet",
		"--query-column", "query", "--document-column", "document", "--chunk-rows", "16"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("%d output rows, want %d", len(lines), len(want)+1)
	}
	worst := 0.0
	for i, line := range lines {
		var r struct {
			Query string   `json:"query"`
			Score *float64 `json:"score"`
			Logit *float64 `json:"logit"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if i == len(want) {
			if r.Score != nil || r.Logit != nil {
				t.Errorf("null document: score %v, logit %v, want nulls", r.Score, r.Logit)
			}
			continue
		}
		if r.Score == nil || r.Logit == nil || r.Query != want[i].Query {
			t.Fatalf("row %d: %s", i, line)
		}
		worst = max(worst, math.Abs(*r.Score-want[i].Score), math.Abs(*r.Logit-want[i].Logit))
	}
	t.Logf("%d pairs, worst |diff| of score and logit %.3g", len(want), worst)
	if worst > 2e-5 {
		t.Errorf("worst diff %.3g > 2e-5", worst)
	}
}

// TestScoreParquet writes Parquet and reads it back with the Arrow reader:
// score and logit are float32 columns beside the input's.
func TestScoreParquet(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	model := refs.ModelDir(t, "tiny-reranker")
	in, want := scoreInput(t, 10)
	out := filepath.Join(t.TempDir(), "scored.parquet")
	if err := runScore(context.Background(), []string{"--model", model, "--input", in, "--output", out, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.Open(out, dataset.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sch := r.Schema()
	for _, name := range []string{"score", "logit"} {
		idx := sch.FieldIndices(name)
		if len(idx) != 1 || sch.Field(idx[0]).Type.ID() != arrow.FLOAT32 {
			t.Fatalf("schema %v: want a float32 %q column", sch, name)
		}
	}
	rows := 0
	for {
		c, err := r.Next(context.Background())
		if err != nil {
			break
		}
		sc := c.Record.Column(sch.FieldIndices("score")[0]).(*array.Float32)
		for i := 0; i < sc.Len(); i++ {
			if rows < len(want) && math.Abs(float64(sc.Value(i))-want[rows].Score) > 2e-5 {
				t.Errorf("row %d: score %v, want %v", rows, sc.Value(i), want[rows].Score)
			}
			rows++
		}
		c.Record.Release()
	}
	if rows != len(want)+1 {
		t.Errorf("%d rows read back, want %d", rows, len(want)+1)
	}
}

// TestScoreRefusesEmbeddingModel checks that score names the problem when
// given a model that is not a cross-encoder.
func TestScoreRefusesEmbeddingModel(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"query": "a", "document": "b"}`+"\n"), 0o644)
	err := runScore(context.Background(), []string{"--model", "../../testdata/tiny-bert", "--input", in, "--output", in + ".out.jsonl", "--quiet"})
	if err == nil || !strings.Contains(err.Error(), "cross-encoder") {
		t.Fatalf("got %v, want a cross-encoder error", err)
	}
}
