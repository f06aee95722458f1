package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/internal/refs"
)

func writeJSONL(t *testing.T, path string, texts []*string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, s := range texts {
		enc.Encode(map[string]*string{"text": s})
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTokenEmbeddingsMatchReference checks --output-value token_embeddings
// against the sentence-transformers token embeddings.
func TestTokenEmbeddingsMatchReference(t *testing.T) {
	m := loadTinyBert(t)
	want := refs.Read[refs.TokenRow](t, "tiny-bert.token_embeddings.parquet")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var texts []*string
	for _, r := range want {
		texts = append(texts, r.Text)
	}
	writeJSONL(t, in, texts)
	out := filepath.Join(dir, "out.parquet")
	if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, OutputValue: TokenEmbeddings}); err != nil {
		t.Fatal(err)
	}
	tbl := readOutput(t, out)
	col := tbl.Column(tbl.Schema().FieldIndices("embedding")[0]).Data().Chunk(0).(*array.List)
	fl := col.ListValues().(*array.FixedSizeList)
	vals := fl.ListValues().(*array.Float32).Float32Values()
	h := m.Hidden()
	var worst float64
	for i, w := range want {
		lo, hi := col.ValueOffsets(i)
		if int(hi-lo) != int(w.NTokens) {
			t.Fatalf("row %d: %d tokens, want %d", i, hi-lo, w.NTokens)
		}
		got := vals[int(lo)*h : int(hi)*h]
		for k := range w.Values {
			worst = math.Max(worst, math.Abs(float64(got[k]-w.Values[k])))
		}
	}
	if worst > 2e-5 {
		t.Fatalf("max abs diff %g", worst)
	}
}

// TestTokenizeMatchesReference checks the tokenize flow's input_ids (with
// the model's truncation) against the reference ids, and that max-length 0
// does not truncate.
func TestTokenizeMatchesReference(t *testing.T) {
	m := loadTinyBert(t)
	want := refs.Read[refs.Row](t, "tiny-bert.parquet")
	dir := t.TempDir()
	out := filepath.Join(dir, "ids.parquet")
	sum, err := Tokenize(context.Background(), m, TokenizeConfig{Input: Input{Path: corpusPath(t)}, Output: out, MaxLength: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.RowsOut != int64(len(want)) {
		t.Fatalf("summary %+v", sum)
	}
	ids := readIDs(t, out)
	for i, w := range want {
		if !slices.Equal(ids[i], w.InputIDs) {
			t.Fatalf("row %d: ids %v, want %v", i, ids[i], w.InputIDs)
		}
	}
	full := filepath.Join(dir, "full.jsonl")
	if _, err := Tokenize(context.Background(), m, TokenizeConfig{Input: Input{Path: corpusPath(t)}, Output: full, MaxLength: 0}); err != nil {
		t.Fatal(err)
	}
	longer := 0
	for i, ids := range readIDs(t, full) {
		if len(ids) > m.MaxSeqLen() {
			longer++
		} else if !slices.Equal(ids, want[i].InputIDs) {
			t.Fatalf("row %d: untruncated ids differ from reference", i)
		}
	}
	if longer == 0 {
		t.Fatal("max-length 0 truncated every text")
	}
}

func readIDs(t *testing.T, path string) [][]int32 {
	tbl := readOutput(t, path)
	var out [][]int32
	for _, ch := range tbl.Column(tbl.Schema().FieldIndices("input_ids")[0]).Data().Chunks() {
		l := ch.(*array.List)
		var vals []int32
		switch v := l.ListValues().(type) {
		case *array.Int32:
			vals = v.Int32Values()
		case *array.Int64: // JSONL reads numbers back as int64
			for _, x := range v.Int64Values() {
				vals = append(vals, int32(x))
			}
		}
		for r := 0; r < l.Len(); r++ {
			lo, hi := l.ValueOffsets(r)
			out = append(out, vals[lo:hi])
		}
	}
	return out
}
