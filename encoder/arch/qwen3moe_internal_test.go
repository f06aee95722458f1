package arch

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (r.Float32()*2 - 1) * scale
	}
	return s
}

// TestMoEMatchesPerToken checks the expert-batched mixture against the
// definition evaluated one token at a time: softmax over the router scores,
// the k best experts, renormalised weights, weighted sum of their MLPs.
func TestMoEMatchesPerToken(t *testing.T) {
	const H, I, E, k, rows = 12, 7, 5, 2, 23
	r := rand.New(rand.NewPCG(1, 2))
	for _, norm := range []bool{true, false} {
		m := &moeFF{k: k, normTopK: norm, hidden: H, inter: I,
			gate: kernels.NewDense(randSlice(r, E*H, 1), nil, E, H)}
		for e := 0; e < E; e++ {
			m.experts = append(m.experts, &MLP{
				Up:   kernels.NewDense(randSlice(r, 2*I*H, 0.5), nil, 2*I, H),
				Down: kernels.NewDense(randSlice(r, H*I, 0.5), nil, H, I),
				Act:  kernels.SiLU, Gated: true, Inter: I,
			})
		}
		x := randSlice(r, rows*H, 1)
		got := make([]float32, rows*H)
		s := &Scratch{}
		m.forward(got, x, s, 0, rows)
		// A second call on the same scratch gives the same result (pooled
		// routes and buffers are fully rewritten).
		again := make([]float32, rows*H)
		m.forward(again, x, s, 0, rows)
		if !slices.Equal(got, again) {
			t.Fatal("second forward on the same scratch differs")
		}
		used := map[int]bool{}
		for tok := 0; tok < rows; tok++ {
			xt := x[tok*H : tok*H+H]
			p := make([]float64, E)
			mx := math.Inf(-1)
			for e := 0; e < E; e++ {
				for j := 0; j < H; j++ {
					p[e] += float64(m.gate.W[e*H+j]) * float64(xt[j])
				}
				mx = math.Max(mx, p[e])
			}
			var z float64
			for e := range p {
				p[e] = math.Exp(p[e] - mx)
				z += p[e]
			}
			order := []int{0, 1, 2, 3, 4}
			slices.SortStableFunc(order, func(a, b int) int {
				switch {
				case p[a] > p[b]:
					return -1
				case p[a] < p[b]:
					return 1
				}
				return 0
			})
			top := order[:k]
			var wsum float64
			for _, e := range top {
				wsum += p[e] / z
			}
			want := make([]float64, H)
			y := make([]float32, H)
			inter := make([]float32, 2*I)
			for _, e := range top {
				used[e] = true
				w := p[e] / z
				if norm {
					w /= wsum
				}
				m.experts[e].Forward(y, xt, inter, 1)
				for j := range want {
					want[j] += w * float64(y[j])
				}
			}
			for j := range want {
				if d := math.Abs(want[j] - float64(got[tok*H+j])); d > 1e-5 {
					t.Fatalf("norm %v, token %d, dim %d: got %v, want %v", norm, tok, j, got[tok*H+j], want[j])
				}
			}
		}
		if len(used) < 3 {
			t.Fatalf("only experts %v were chosen: the test does not exercise the grouping", used)
		}
	}
}
