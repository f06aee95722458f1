package embed_test

import (
	"context"
	"math"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// TestEmbedSpans checks late chunking on ModernBERT (mean pooling, a
// Normalize module) and tiny-bert: one forward pass over two documents,
// and each span's vector equal to the mean of the documents' token
// embeddings over the span, normalized — computed here from
// TokenEmbeddingsTo alone; a span over a whole sequence equals EmbedIDs,
// truncation renormalizes as EmbedIDs does, and bad spans are refused.
func TestEmbedSpans(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"tiny-modernbert", "tiny-bert"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, refs.ModelDir(t, name))
			docs := []string{texts[1], texts[3] + " " + texts[5]}
			e := newEmbedder(t, m, embed.Options{})
			var b encoder.Batch
			b.Reset()
			for _, d := range docs {
				b.Add(mustIDs(e, d))
			}
			n1 := b.Starts[2] - b.Starts[1]
			spans := []encoder.Span{sp(0, 1, 4), sp(0, 3, 9), sp(1, 0, 5), sp(1, 5, n1), sp(0, 0, b.Starts[1])}
			h := m.Hidden()
			tok := make([]float32, b.Tokens()*h)
			if err := e.TokenEmbeddingsTo(ctx, tok, &b); err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(spans)*e.Dim())
			if err := e.EmbedSpans(ctx, got, &b, spans); err != nil {
				t.Fatal(err)
			}
			for i, sp := range spans {
				want := make([]float32, h)
				o := b.Starts[sp.Seq]
				for j := range want {
					var s float64
					for k := o + sp.Lo; k < o+sp.Hi; k++ {
						s += float64(tok[k*h+j])
					}
					want[j] = float32(s / float64(sp.Hi-sp.Lo))
				}
				encoder.Normalize(want)
				closeVec(t, name, i, got[i*h:(i+1)*h], want)
			}
			// The whole first sequence as a span is its sentence embedding.
			whole := make([]float32, 2*e.Dim())
			if err := e.EmbedIDs(ctx, whole, &b); err != nil {
				t.Fatal(err)
			}
			closeVec(t, name, 4, got[4*h:5*h], whole[:h])
			// Truncated: the first 16 dimensions, renormalized.
			et := newEmbedder(t, m, embed.Options{TruncateDim: 16})
			gt := make([]float32, len(spans)*16)
			if err := et.EmbedSpans(ctx, gt, &b, spans); err != nil {
				t.Fatal(err)
			}
			w := append([]float32(nil), got[h:h+16]...)
			encoder.Normalize(w)
			closeVec(t, name+" truncated", 1, gt[16:32], w)
			for _, bad := range [][]encoder.Span{{sp(0, 2, 2)}, {sp(2, 0, 1)}, {sp(1, 0, n1+1)}, {sp(0, -1, 1)}} {
				if err := e.EmbedSpans(ctx, got, &b, bad); err == nil {
					t.Fatalf("span %v accepted", bad)
				}
			}
		})
	}
}

// closeVec asserts got and want agree as the fidelity standard asks:
// cosine ≥ 0.999999 and max abs diff ≤ 2e-5.
func closeVec(t *testing.T, what string, i int, got, want []float32) {
	t.Helper()
	var dot, na, nb, maxd float64
	for j := range got {
		dot += float64(got[j]) * float64(want[j])
		na += float64(got[j]) * float64(got[j])
		nb += float64(want[j]) * float64(want[j])
		maxd = math.Max(maxd, math.Abs(float64(got[j]-want[j])))
	}
	if cos := dot / math.Sqrt(na*nb); cos < 0.999999 || maxd > 2e-5 {
		t.Fatalf("%s span %d: cosine %.9f, max abs diff %.2g", what, i, cos, maxd)
	}
}

func sp(seq, lo, hi int) encoder.Span { return encoder.Span{Seq: seq, Lo: lo, Hi: hi} }
