package arch_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/kernels"
)

func randVec(r *rand.Rand, n int, a float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((2*r.Float64() - 1) * a)
	}
	return v
}

func randDense(r *rand.Rand, out, in int) *kernels.Dense {
	return kernels.NewDense(randVec(r, out*in, 1/math.Sqrt(float64(in))), randVec(r, out, 0.1), out, in)
}

// naiveLinear computes x·Wᵀ+b for one row in float64.
func naiveLinear(d *kernels.Dense, x []float32) []float64 {
	y := make([]float64, d.Out)
	for o := range y {
		s := 0.0
		if d.Bias != nil {
			s = float64(d.Bias[o])
		}
		for i := 0; i < d.In; i++ {
			s += float64(d.W[o*d.In+i]) * float64(x[i])
		}
		y[o] = s
	}
	return y
}

// rowBias is a ScoreBias that adds head·0.1·(j-i), to check the hook is
// applied per head and position.
type rowBias struct{}

func (rowBias) AddScoreBias(sc []float32, ld, head, i0, rows, j0, cols int) {
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			sc[i*ld+j] += float32(head) * 0.1 * float32(j0+j-i0-i)
		}
	}
}

// negateKeys is a QKTransform that flips the sign of every key of the
// sequence's first token, to check the hook sees the right rows.
type negateKeys struct{}

func (negateKeys) TransformQK(q, k []float32, ld, n, heads, kvHeads, headDim int) {
	for j := 0; j < kvHeads*headDim; j++ {
		k[j] = -k[j]
	}
}

// TestAttentionAgainstNaive checks multi-head and grouped-query attention
// with every mask kind and both hooks against a float64 transcription of
// the definition, on a batch of sequences of odd lengths.
func TestAttentionAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const hidden = 24
	for _, tc := range []struct {
		heads, kvHeads int
		mask           arch.Mask
		bias, qk       bool
	}{
		{4, 4, arch.Mask{}, false, false},
		{4, 2, arch.Mask{}, false, false},
		{6, 1, arch.Mask{Causal: true}, false, false},
		{4, 2, arch.Mask{Window: 4}, true, false},
		{3, 3, arch.Mask{Causal: true, Window: 6}, true, true},
	} {
		t.Run(fmt.Sprintf("%d-%d-%+v-%v-%v", tc.heads, tc.kvHeads, tc.mask, tc.bias, tc.qk), func(t *testing.T) {
			hd := 8
			qkvOut := (tc.heads + 2*tc.kvHeads) * hd
			a := arch.NewAttention(randDense(r, qkvOut, hidden), randDense(r, hidden, tc.heads*hd), tc.heads, tc.kvHeads, hd)
			a.Mask = tc.mask
			if tc.bias {
				a.Bias = rowBias{}
			}
			if tc.qk {
				a.QK = negateKeys{}
			}
			starts := []int{0, 1, 6, 6, 13}
			T := starts[len(starts)-1]
			x := randVec(r, T*hidden, 1)
			dst := make([]float32, T*hidden)
			var s arch.Scratch
			a.Forward(dst, x, starts, a.Buffers(&s, 0, T, 7))

			for si := 0; si+1 < len(starts); si++ {
				o, n := starts[si], starts[si+1]-starts[si]
				qkv := make([][]float64, n)
				for i := range n {
					qkv[i] = naiveLinear(a.QKV, x[(o+i)*hidden:(o+i+1)*hidden])
				}
				if tc.qk && n > 0 {
					for j := 0; j < tc.kvHeads*hd; j++ {
						qkv[0][tc.heads*hd+j] = -qkv[0][tc.heads*hd+j]
					}
				}
				ctx := make([][]float64, n)
				for i := range ctx {
					ctx[i] = make([]float64, tc.heads*hd)
				}
				for h := 0; h < tc.heads; h++ {
					kv := h / (tc.heads / tc.kvHeads)
					for i := 0; i < n; i++ {
						lo, hi := tc.mask.Range(i, n)
						w := make([]float64, n)
						mx := math.Inf(-1)
						for j := lo; j < hi; j++ {
							d := 0.0
							for c := 0; c < hd; c++ {
								d += qkv[i][h*hd+c] * qkv[j][(tc.heads+kv)*hd+c]
							}
							w[j] = d / math.Sqrt(float64(hd))
							if tc.bias {
								w[j] += float64(h) * 0.1 * float64(j-i)
							}
							mx = math.Max(mx, w[j])
						}
						sum := 0.0
						for j := lo; j < hi; j++ {
							w[j] = math.Exp(w[j] - mx)
							sum += w[j]
						}
						for j := lo; j < hi; j++ {
							for c := 0; c < hd; c++ {
								ctx[i][h*hd+c] += w[j] / sum * qkv[j][(tc.heads+tc.kvHeads+kv)*hd+c]
							}
						}
					}
				}
				for i := range n {
					c32 := make([]float32, len(ctx[i]))
					for c, v := range ctx[i] {
						c32[c] = float32(v)
					}
					want := naiveLinear(a.Out, c32)
					got := dst[(o+i)*hidden : (o+i+1)*hidden]
					for c := range want {
						if d := math.Abs(float64(got[c]) - want[c]); d > 1e-5 {
							t.Fatalf("sequence %d token %d dim %d: got %v, want %v", si, i, c, got[c], want[c])
						}
					}
				}
			}
		})
	}
}

func TestMaskRange(t *testing.T) {
	for _, c := range []struct {
		m          arch.Mask
		i, n       int
		wantLo, hi int
	}{
		{arch.Mask{}, 3, 10, 0, 10},
		{arch.Mask{Causal: true}, 3, 10, 0, 4},
		{arch.Mask{Window: 4}, 3, 10, 1, 6},
		{arch.Mask{Window: 4}, 0, 10, 0, 3},
		{arch.Mask{Window: 4}, 9, 10, 7, 10},
		{arch.Mask{Causal: true, Window: 4}, 5, 10, 3, 6},
	} {
		lo, hi := c.m.Range(c.i, c.n)
		if lo != c.wantLo || hi != c.hi {
			t.Errorf("%+v.Range(%d, %d) = %d, %d; want %d, %d", c.m, c.i, c.n, lo, hi, c.wantLo, c.hi)
		}
	}
}

// TestGatedMLP checks the in-place GLU compaction against the definition.
func TestGatedMLP(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const hidden, inter, rows = 12, 20, 9
	up := randDense(r, 2*inter, hidden)
	down := randDense(r, hidden, inter)
	m := &arch.MLP{Up: up, Down: down, Act: kernels.SiLU, Gated: true, Inter: inter}
	x := randVec(r, rows*hidden, 1)
	dst := make([]float32, rows*hidden)
	m.Forward(dst, x, make([]float32, m.BufferLen(rows)), rows)
	for i := range rows {
		u := naiveLinear(up, x[i*hidden:(i+1)*hidden])
		g := make([]float32, inter)
		for j := range g {
			a := u[j]
			g[j] = float32(a / (1 + math.Exp(-a)) * u[inter+j])
		}
		want := naiveLinear(down, g)
		for c := range want {
			if d := math.Abs(float64(dst[i*hidden+c]) - want[c]); d > 1e-5 {
				t.Fatalf("row %d dim %d: got %v, want %v", i, c, dst[i*hidden+c], want[c])
			}
		}
	}
}

// TestForwardAddAliases checks the fused residual forms against the plain
// ones followed by an addition, with dst aliasing x as the layers use them.
func TestForwardAddAliases(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const hidden, inter = 24, 40
	starts := []int{0, 5, 6, 17}
	T := starts[len(starts)-1]
	x := randVec(r, T*hidden, 1)
	a := arch.NewAttention(randDense(r, 3*hidden, hidden), randDense(r, hidden, hidden), 4, 4, hidden/4)
	for _, gated := range []bool{false, true} {
		up := randDense(r, inter, hidden)
		if gated {
			up = randDense(r, 2*inter, hidden)
		}
		m := &arch.MLP{Up: up, Down: randDense(r, hidden, inter), Act: kernels.GELU, Gated: gated, Inter: inter}
		var s arch.Scratch
		plain := make([]float32, T*hidden)
		a.Forward(plain, x, starts, a.Buffers(&s, 0, T, 11))
		fused := append([]float32(nil), x...)
		a.ForwardAdd(fused, fused, starts, a.Buffers(&s, 0, T, 11))
		for i := range plain {
			if d := math.Abs(float64(fused[i]) - float64(x[i]+plain[i])); d > 1e-5 {
				t.Fatalf("attention ForwardAdd [%d]: %v, want %v", i, fused[i], x[i]+plain[i])
			}
		}
		m.ForwardPool(nil, plain, x, make([]float32, m.BufferLen(T)), T)
		fused = append(fused[:0], x...)
		m.ForwardAddPool(nil, fused, fused, make([]float32, m.BufferLen(T)), T)
		for i := range plain {
			if d := math.Abs(float64(fused[i]) - float64(x[i]+plain[i])); d > 1e-5 {
				t.Fatalf("MLP (gated %v) ForwardAddPool [%d]: %v, want %v", gated, i, fused[i], x[i]+plain[i])
			}
		}
	}
}

// probeObserver is an Observer that checks each attention distribution it
// is shown and counts the calls.
type probeObserver struct {
	t     *testing.T
	mask  arch.Mask
	calls int
}

func (p *probeObserver) States(int, []float32, []int, int)   {}
func (p *probeObserver) Routes(int, []int32, []float32, int) {}
func (p *probeObserver) Attention(layer, seq, head, kvHead int, mask arch.Mask, probs []float32, n int) {
	p.calls++
	for i := 0; i < n; i++ {
		lo, hi := p.mask.Range(i, n)
		sum := 0.0
		for j, v := range probs[i*n : i*n+n] {
			if (j < lo || j >= hi) && v != 0 {
				p.t.Fatalf("layer %d seq %d head %d: probability %v at masked key %d of query %d", layer, seq, head, v, j, i)
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-5 {
			p.t.Fatalf("layer %d seq %d head %d query %d: probabilities sum to %v", layer, seq, head, i, sum)
		}
	}
}

// TestAttentionFusedMatchesMaterialized compares the fused attention with
// the materialising path an Observer selects, on sequences long
// enough to span several query tiles and key blocks, with the masks of
// ModernBERT and Qwen3, a score bias and grouped-query heads; it also checks
// that splitting the heads over a Pool changes no bit.
func TestAttentionFusedMatchesMaterialized(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const hidden = 48
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, tc := range []struct {
		heads, kvHeads int
		mask           arch.Mask
		bias           bool
	}{
		{4, 4, arch.Mask{}, true},
		{4, 4, arch.Mask{Window: 128}, false},
		{6, 2, arch.Mask{Causal: true}, false},
	} {
		t.Run(fmt.Sprintf("%d-%d-%+v-%v", tc.heads, tc.kvHeads, tc.mask, tc.bias), func(t *testing.T) {
			hd := 16
			a := arch.NewAttention(randDense(r, (tc.heads+2*tc.kvHeads)*hd, hidden), randDense(r, hidden, tc.heads*hd), tc.heads, tc.kvHeads, hd)
			a.Mask = tc.mask
			if tc.bias {
				a.Bias = rowBias{}
			}
			starts := []int{0, 1, 71, 372}
			T := starts[len(starts)-1]
			x := randVec(r, T*hidden, 1)
			fused := make([]float32, T*hidden)
			var s arch.Scratch
			a.Forward(fused, x, starts, a.Buffers(&s, 0, T, 301))

			pooled := make([]float32, T*hidden)
			s.Pool = pool
			one := []int{0, 301}
			a.Forward(pooled[71*hidden:], x[71*hidden:], one, a.Buffers(&s, 0, 301, 301))
			s.Pool = nil
			solo := make([]float32, 301*hidden)
			a.Forward(solo, x[71*hidden:], one, a.Buffers(&s, 0, 301, 301))
			for i := range solo {
				if math.Float32bits(solo[i]) != math.Float32bits(pooled[71*hidden+i]) {
					t.Fatalf("pooled heads differ at %d: %v vs %v", i, pooled[71*hidden+i], solo[i])
				}
				if d := math.Abs(float64(solo[i] - fused[71*hidden+i])); d > 1e-6 {
					t.Fatalf("sequence alone differs from in batch at %d: %v vs %v", i, solo[i], fused[71*hidden+i])
				}
			}

			obs := &probeObserver{t: t, mask: tc.mask}
			s.Observer = obs
			mat := make([]float32, T*hidden)
			a.Forward(mat, x, starts, a.Buffers(&s, 0, T, 301))
			if want := 3 * tc.heads; obs.calls != want {
				t.Errorf("observer called %d times, want %d (sequences × heads)", obs.calls, want)
			}
			for i := range mat {
				if d := math.Abs(float64(mat[i] - fused[i])); d > 2e-5 {
					t.Fatalf("fused [%d] = %v, materialised %v", i, fused[i], mat[i])
				}
			}
		})
	}
}
