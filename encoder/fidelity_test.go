package encoder_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// fidelityCase is one shared reference model.
type fidelityCase struct {
	name   string
	maxAbs float64 // bound on |ours - reference| per component
	dir    func(t testing.TB) string
	slow   bool // checked on a sample of rows under -short
}

var fidelityCases = []fidelityCase{
	{"tiny-bert", 2e-5, nil, false},
	{"tiny-bert-bf16-cls", 2e-5, nil, false},
	// Max pooling without normalisation: components are raw hidden values
	// of magnitude up to ~5, so the absolute bound is scaled accordingly.
	{"tiny-bert-f16-max-sharded", 1e-4, nil, false},
	{"minilm-l6-shape", 2e-5, minilmDir, true},
}

func (c fidelityCase) modelDir(t testing.TB) string {
	if c.dir != nil {
		return c.dir(t)
	}
	return refs.ModelDir(t, c.name)
}

const minCosine = 0.999999

// stats accumulates the worst agreement over rows.
type stats struct {
	worstCos, worstAbs float64
	cosRow, absRow     int
	n                  int
}

func newStats() stats { return stats{worstCos: 2} }

func (s *stats) add(row int, got, want []float32) {
	s.n++
	if c := cosine(got, want); c < s.worstCos {
		s.worstCos, s.cosRow = c, row
	}
	if d := maxAbs(got, want); d > s.worstAbs {
		s.worstAbs, s.absRow = d, row
	}
}

func (s *stats) check(t *testing.T, what string, bound float64) {
	t.Helper()
	t.Logf("%s: %d vectors, worst cosine %.12f (1-cos %.2g, row %d), worst max abs diff %.3g (row %d)",
		what, s.n, s.worstCos, 1-s.worstCos, s.cosRow, s.worstAbs, s.absRow)
	if s.worstCos < minCosine || s.worstAbs > bound {
		t.Errorf("%s: worst cosine %.9f (bound %v), max abs diff %.3g (bound %.0e)", what, s.worstCos, minCosine, s.worstAbs, bound)
	}
}

// embedRows embeds ids in batches of 32 sequences.
func embedRows(t *testing.T, m *encoder.Model, ids [][]int32) []float32 {
	t.Helper()
	dim := m.Dim()
	out := make([]float32, len(ids)*dim)
	var b encoder.Batch
	for lo := 0; lo < len(ids); lo += 32 {
		hi := min(lo+32, len(ids))
		b.Reset()
		for _, s := range ids[lo:hi] {
			b.Add(s)
		}
		if err := m.EmbedBatch(context.Background(), &b, out[lo*dim:hi*dim]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestFidelity embeds every reference row from the reference input ids and
// from our own tokenization, and compares with the sentence-transformers
// float64 embeddings.
func TestFidelity(t *testing.T) {
	for _, c := range fidelityCases {
		t.Run(c.name, func(t *testing.T) {
			rows := refs.Read[refs.Row](t, c.name+".parquet")
			if c.slow && testing.Short() {
				// Every 16th row keeps the long documents' share.
				var sample []refs.Row
				for i := 0; i < len(rows); i += 16 {
					sample = append(sample, rows[i])
				}
				rows = sample
			}
			m := load(t, c.modelDir(t), encoder.WithThreads(2))
			dim := m.Dim()
			ids := make([][]int32, len(rows))
			for i := range rows {
				ids[i] = rows[i].InputIDs
			}
			got := embedRows(t, m, ids)
			st := newStats()
			for i, r := range rows {
				if len(r.Embedding) != dim {
					t.Fatalf("row %d: reference has %d dims, model %d", i, len(r.Embedding), dim)
				}
				st.add(i, got[i*dim:i*dim+dim], r.Embedding)
			}
			st.check(t, c.name+" embedding", c.maxAbs)

			// Our tokenizer must give the reference ids, prompt-free.
			mismatch := 0
			for i, r := range rows {
				if r.Text == nil {
					continue
				}
				mine, _ := m.TokenizeTo(nil, *r.Text, "", 0)
				if !slices.Equal(mine, r.InputIDs) {
					if mismatch < 3 {
						t.Errorf("row %d %.40q: ids %v, reference %v", i, *r.Text, head(mine), head(r.InputIDs))
					}
					mismatch++
				}
			}
			if mismatch > 0 {
				t.Errorf("%d of %d rows tokenized differently", mismatch, len(rows))
			}

			if len(rows[0].EmbeddingQuery) == 0 {
				return
			}
			prompt, err := m.Prompt("query")
			if err != nil {
				t.Fatal(err)
			}
			qids := make([][]int32, len(rows))
			for i, r := range rows {
				text := ""
				if r.Text != nil {
					text = *r.Text
				}
				qids[i], _ = m.TokenizeTo(nil, text, prompt, 0)
			}
			gotQ := embedRows(t, m, qids)
			sq := newStats()
			for i, r := range rows {
				sq.add(i, gotQ[i*dim:i*dim+dim], r.EmbeddingQuery)
			}
			sq.check(t, c.name+" query embedding", c.maxAbs)
		})
	}
}

func head(ids []int32) string {
	if len(ids) > 12 {
		return fmt.Sprint(ids[:12]) + "…"
	}
	return fmt.Sprint(ids)
}

// TestTokenEmbeddingsFidelity compares the contextual token vectors of the
// first 48 corpus texts, encoded as one unpadded batch.
func TestTokenEmbeddingsFidelity(t *testing.T) {
	for _, c := range fidelityCases {
		t.Run(c.name, func(t *testing.T) {
			rows := refs.Read[refs.Row](t, c.name+".parquet")
			toks := refs.Read[refs.TokenRow](t, c.name+".token_embeddings.parquet")
			m := load(t, c.modelDir(t))
			h := m.Hidden()
			var b encoder.Batch
			for i := range toks {
				b.Add(rows[i].InputIDs)
			}
			got := make([]float32, b.Tokens()*h)
			if err := m.TokenEmbeddingsBatch(context.Background(), &b, got); err != nil {
				t.Fatal(err)
			}
			st := newStats()
			for i, tr := range toks {
				if int(tr.NTokens) != len(b.Seq(i)) {
					t.Fatalf("row %d: %d reference tokens, %d ids", i, tr.NTokens, len(b.Seq(i)))
				}
				g := got[b.Starts[i]*h : b.Starts[i+1]*h]
				for k := 0; k < int(tr.NTokens); k++ {
					st.add(i, g[k*h:k*h+h], tr.Values[k*h:k*h+h])
				}
			}
			st.check(t, c.name+" token embeddings", 2e-5)
		})
	}
}
