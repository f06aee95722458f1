package encoder_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// headSample returns whether reference row i is checked: every row, or
// under -short every fifth row plus the longest ones, which exercise
// truncation.
func headSample(i, tokens int) bool {
	return !testing.Short() || i%5 == 0 || tokens >= 256
}

func f32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// TestFidelityDenseHeads checks the Dense-module models against their
// float64 references: the ids fed to the model exactly, and every
// embedding within cosine 0.999999 and max abs 2e-5.
func TestFidelityDenseHeads(t *testing.T) {
	for _, name := range []string{"tiny-bert-dense", "tiny-bert-dense2"} {
		t.Run(name, func(t *testing.T) {
			rows := refs.ReadJSONL[refs.DenseRow](t, name+".jsonl.gz")
			m := load(t, refs.ModelDir(t, name))
			info := m.Info()
			if len(info.Dense) == 0 || info.Dim != len(rows[0].Embedding) {
				t.Fatalf("Info: %d Dense modules, dim %d; the reference has dim %d", len(info.Dense), info.Dim, len(rows[0].Embedding))
			}
			var ids [][]int32
			var want [][]float64
			for i, r := range rows {
				got, _ := m.TokenizeTo(nil, r.Text, "", 0)
				if !slices.Equal(got, r.InputIDs) {
					t.Fatalf("row %d: ids %v, want %v", i, got, r.InputIDs)
				}
				if headSample(i, len(got)) {
					ids = append(ids, got)
					want = append(want, r.Embedding)
				}
			}
			out := embedRows(t, m, ids)
			st := newStats()
			dim := m.Dim()
			for i := range ids {
				st.add(i, out[i*dim:(i+1)*dim], f32(want[i]))
			}
			st.check(t, name, 2e-5)
		})
	}
}

// TestFidelitySparse checks tiny-splade against its float64 reference:
// every reference entry above 1e-4 present, every value (ours or the
// reference's, the other taken as 0 where absent) within 2e-5, and indices
// ascending.
func TestFidelitySparse(t *testing.T) {
	rows := refs.ReadJSONL[refs.SparseRow](t, "tiny-splade.jsonl.gz")
	m := load(t, refs.ModelDir(t, "tiny-splade"), encoder.WithThreads(2))
	if info := m.Info(); info.Kind != encoder.KindSparse || info.Sparse == nil || info.Sparse.Vocab != 30522 {
		t.Fatalf("Info: kind %q, sparse %+v", info.Kind, info.Sparse)
	}
	var b encoder.Batch
	var sv encoder.SparseVectors
	var checked []int
	for i, r := range rows {
		got, _ := m.TokenizeTo(nil, r.Text, "", 0)
		if !slices.Equal(got, r.InputIDs) {
			t.Fatalf("row %d: ids %v, want %v", i, got, r.InputIDs)
		}
		if headSample(i, len(got)) {
			b.Add(got)
			checked = append(checked, i)
		}
		if b.Len() == 32 || (i == len(rows)-1 && b.Len() > 0) {
			if err := m.EmbedSparseBatch(context.Background(), &b, encoder.SparseOptions{}, &sv); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if sv.Len() != len(checked) {
		t.Fatalf("%d sparse vectors for %d sequences", sv.Len(), len(checked))
	}
	worst, worstRow, missing, entries := 0.0, -1, 0, 0
	for k, i := range checked {
		idx, val := sv.Vector(k)
		if !slices.IsSorted(idx) {
			t.Fatalf("row %d: indices not ascending", i)
		}
		ref := rows[i]
		got := make(map[int32]float64, len(idx))
		for j, x := range idx {
			got[x] = float64(val[j])
		}
		entries += len(idx)
		for j, x := range ref.Indices {
			g, ok := got[x]
			if !ok && ref.Values[j] > 1e-4 {
				missing++
				t.Errorf("row %d: reference entry %d (%.6g) missing", i, x, ref.Values[j])
			}
			if d := math.Abs(g - ref.Values[j]); d > worst {
				worst, worstRow = d, i
			}
			delete(got, x)
		}
		for _, g := range got { // ours only: the reference has 0
			if g > worst {
				worst, worstRow = g, i
			}
		}
	}
	t.Logf("tiny-splade: %d vectors, %d entries, worst abs diff %.3g (row %d), %d reference entries above 1e-4 missing",
		len(checked), entries, worst, worstRow, missing)
	if worst > 2e-5 {
		t.Errorf("worst abs diff %.3g > 2e-5 (row %d)", worst, worstRow)
	}
}

// TestFidelityReranker checks tiny-reranker against its float64
// reference: pair ids and token types exact (truncation of long pairs
// included), logit and score within 2e-5.
func TestFidelityReranker(t *testing.T) {
	rows := refs.ReadJSONL[refs.PairRow](t, "tiny-reranker.jsonl.gz")
	m := load(t, refs.ModelDir(t, "tiny-reranker"))
	info := m.Info()
	if info.Kind != encoder.KindCrossEncoder || info.CrossEncoder == nil || info.CrossEncoder.Activation != "Sigmoid" || m.NumLabels() != 1 {
		t.Fatalf("Info: kind %q, cross-encoder %+v", info.Kind, info.CrossEncoder)
	}
	var b encoder.Batch
	var worstL, worstS float64
	worstRow, truncatedPairs := -1, 0
	flush := func(first int) {
		n := b.Len()
		logits, scores := make([]float32, n), make([]float32, n)
		if err := m.ScoreBatch(context.Background(), &b, logits, scores); err != nil {
			t.Fatal(err)
		}
		for k := range n {
			r := rows[first+k]
			dl, ds := math.Abs(float64(logits[k])-r.Logit), math.Abs(float64(scores[k])-r.Score)
			if dl > worstL {
				worstL, worstRow = dl, first+k
			}
			worstS = math.Max(worstS, ds)
		}
		b.Reset()
	}
	first := 0
	for i, r := range rows {
		n0 := len(b.IDs)
		tr, err := m.AppendPairTo(&b, r.Query, r.Passage, 0)
		if err != nil {
			t.Fatal(err)
		}
		if tr {
			truncatedPairs++
		}
		if !slices.Equal(b.IDs[n0:], r.InputIDs) {
			t.Fatalf("row %d (%s): ids %v, want %v", i, r.Pair, b.IDs[n0:], r.InputIDs)
		}
		if !slices.Equal(b.Types[n0:], r.TokenTypeIDs) {
			t.Fatalf("row %d (%s): token types %v, want %v", i, r.Pair, b.Types[n0:], r.TokenTypeIDs)
		}
		if b.Len() == 32 {
			flush(first)
			first = i + 1
		}
	}
	if b.Len() > 0 {
		flush(first)
	}
	t.Logf("tiny-reranker: %d pairs (%d truncated), worst |logit diff| %.3g (row %d), worst |score diff| %.3g",
		len(rows), truncatedPairs, worstL, worstRow, worstS)
	if worstL > 2e-5 || worstS > 2e-5 {
		t.Errorf("worst logit diff %.3g, score diff %.3g (bound 2e-5)", worstL, worstS)
	}
	if truncatedPairs == 0 {
		t.Error("no pair was truncated: the reference's long pairs were not exercised")
	}
}

// TestHeadErrors checks that bad head configurations are refused with the
// error class and the key named, and that each kind of model refuses the
// calls of the others.
func TestHeadErrors(t *testing.T) {
	splade := refs.ModelDir(t, "tiny-splade")
	rr := refs.ModelDir(t, "tiny-reranker")
	rrCfg := filepath.Join(rr, "config.json")
	cases := []struct {
		name  string
		src   string
		edits map[string]string
		want  error
		says  []string
	}{
		{"splade pooling", splade, map[string]string{"1_SpladePooling/config.json": `{"pooling_strategy": "mean"}`},
			encoder.ErrUnsupported, []string{"pooling_strategy", "max, sum"}},
		{"splade activation", splade, map[string]string{"1_SpladePooling/config.json": `{"activation_function": "gelu"}`},
			encoder.ErrUnsupported, []string{"activation_function", "log1p_relu"}},
		{"splade width", splade, map[string]string{"1_SpladePooling/config.json": `{"word_embedding_dimension": 100}`},
			encoder.ErrConfig, []string{"100", "30522"}},
		{"cross activation", rr, map[string]string{"config.json": editJSON(t, rrCfg, map[string]any{"sentence_transformers": map[string]any{"activation_fn": "torch.nn.Softplus"}})},
			encoder.ErrUnsupported, []string{"Softplus", "Sigmoid"}},
		{"cross labels", rr, map[string]string{"config.json": editJSON(t, rrCfg, map[string]any{"id2label": map[string]any{"zero": "A"}})},
			encoder.ErrConfig, []string{"id2label"}},
		{"cross label count", rr, map[string]string{"config.json": editJSON(t, rrCfg, map[string]any{"id2label": map[string]any{"0": "A", "1": "B"}})},
			encoder.ErrWeights, []string{"classifier"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := encoder.Load(variant(t, c.src, c.edits))
			if err == nil || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	ctx := context.Background()
	var b encoder.Batch
	b.Add([]int32{101, 7592, 102})
	sp, ce, dense := load(t, splade), load(t, rr), load(t, "../testdata/tiny-bert")
	var sv encoder.SparseVectors
	out := make([]float32, 32)
	for what, err := range map[string]error{
		"EmbedBatch on a sparse encoder":    sp.EmbedBatch(ctx, &b, make([]float32, sp.Dim())),
		"EmbedBatch on a cross-encoder":     ce.EmbedBatch(ctx, &b, out),
		"ScoreBatch on a sparse encoder":    sp.ScoreBatch(ctx, &b, out, out),
		"EmbedSparseBatch on a dense model": dense.EmbedSparseBatch(ctx, &b, encoder.SparseOptions{}, &sv),
		"EmbedSparseBatch with negative k":  sp.EmbedSparseBatch(ctx, &b, encoder.SparseOptions{TopK: -1}, &sv),
		"ScoreBatch with a short buffer":    ce.ScoreBatch(ctx, &b, out[:0:0], nil),
	} {
		if err == nil {
			t.Errorf("%s: no error", what)
		}
	}
}
