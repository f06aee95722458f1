package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol
}

func TestGELUDifferential(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		sizes := append([]int{0}, oddSizes...)
		for _, n := range append(sizes, 4096) {
			full, x := guarded(r, n)
			for i := range x {
				x[i] = float32((r.Float64()*2 - 1) * 14) // the tails too
			}
			if n > 8 {
				x[0], x[1], x[2], x[3] = 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30
				x[4], x[5], x[6], x[7] = 300, -300, 0.9277*math.Sqrt2, -0.9277*math.Sqrt2
			}
			want := append([]float32(nil), x...)
			geluRef(want)
			in := append([]float32(nil), x...)
			GELU(x)
			checkGuards(t, full, "GELU")
			for i := range x {
				tol := 1e-6*math.Abs(float64(want[i])) + 1e-7*math.Max(1, math.Abs(float64(in[i])))
				if !near(float64(x[i]), float64(want[i]), tol) {
					t.Fatalf("n=%d: GELU(%v) = %v, want %v", n, in[i], x[i], want[i])
				}
			}
		}
	})
}

// TestGELUDenseGrid checks GELU on a dense grid of [-8, 8]: within 1e-6
// relative where |GELU(x)| >= 0.1 and within 1e-7 absolute below that. (The
// SIMD erfc is built for erf's accuracy, so far in the negative tail, where
// GELU(x) is below 0.005, its relative error grows to a few 1e-5 while the
// absolute error stays under 3e-8 — below float32 resolution of the values
// it is added to.)
func TestGELUDenseGrid(t *testing.T) {
	withFast(t, func(t *testing.T) {
		var x []float32
		for v := -8.0; v <= 8.0; v += 1.0 / 1024 {
			x = append(x, float32(v))
		}
		in := append([]float32(nil), x...)
		want := append([]float32(nil), x...)
		geluRef(want)
		GELU(x)
		var worst float64
		worstAt := 0
		for i := range x {
			e := math.Abs(float64(x[i]-want[i])) / math.Max(math.Abs(float64(want[i])), 0.1)
			if e > worst {
				worst, worstAt = e, i
			}
		}
		if worst > 1e-6 {
			t.Fatalf("GELU(%v) = %v, want %v: error %.3g of max(|want|, 0.1), want <= 1e-6", in[worstAt], x[worstAt], want[worstAt], worst)
		}
	})
}

func TestSoftmaxDifferential(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, n := range append(oddSizes, 1000) {
			for variant := 0; variant < 4; variant++ {
				full, x := guarded(r, n)
				for i := range x {
					x[i] *= 8
				}
				switch variant {
				case 1: // masked keys
					for i := 0; i < n; i += 3 {
						x[i] = float32(math.Inf(-1))
					}
					if x[n-1] == float32(math.Inf(-1)) && n > 1 {
						x[n-1] = 2
					}
				case 2: // a whole masked row
					for i := range x {
						x[i] = float32(math.Inf(-1))
					}
				case 3: // a wide range: some exps underflow
					for i := range x {
						x[i] *= 40
					}
				}
				want := append([]float32(nil), x...)
				softmaxRef(want)
				Softmax(x)
				checkGuards(t, full, "Softmax")
				for i := range x {
					if !near(float64(x[i]), float64(want[i]), 2e-6*float64(want[i])+1e-9) {
						t.Fatalf("n=%d variant %d: [%d] = %v, want %v", n, variant, i, x[i], want[i])
					}
				}
			}
		}
	})
}

func TestNormsDifferential(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, dim := range oddSizes {
			for _, rows := range []int{1, 3, 17} {
				_, x := guarded(r, rows*dim)
				for i := range x {
					x[i] = x[i]*3 + 5 // an offset mean stresses the variance
				}
				_, gamma := guarded(r, dim)
				_, beta := guarded(r, dim)
				for _, withBeta := range []bool{true, false} {
					b := beta
					if !withBeta {
						b = nil
					}
					want := make([]float32, rows*dim)
					layerNormRef(want, x, gamma, b, rows, dim, 1e-12)
					full, dst := guarded(r, rows*dim)
					LayerNorm(dst, x, gamma, b, rows, dim, 1e-12)
					checkGuards(t, full, "LayerNorm")
					alias := append([]float32(nil), x...)
					LayerNorm(alias, alias, gamma, b, rows, dim, 1e-12)
					for i := range want {
						tol := 2e-6 * (1 + math.Abs(float64(want[i])) + math.Abs(float64(gamma[i%dim])))
						if !near(float64(dst[i]), float64(want[i]), tol) || dst[i] != alias[i] {
							t.Fatalf("dim=%d rows=%d beta=%v: [%d] = %v (aliased %v), want %v", dim, rows, withBeta, i, dst[i], alias[i], want[i])
						}
					}
				}
				want := make([]float32, rows*dim)
				rmsNormRef(want, x, gamma, rows, dim, 1e-6)
				full, dst := guarded(r, rows*dim)
				RMSNorm(dst, x, gamma, rows, dim, 1e-6)
				checkGuards(t, full, "RMSNorm")
				for i := range want {
					if !near(float64(dst[i]), float64(want[i]), 2e-6*(1e-3+math.Abs(float64(want[i])))) {
						t.Fatalf("RMSNorm dim=%d rows=%d: [%d] = %v, want %v", dim, rows, i, dst[i], want[i])
					}
				}
			}
		}
	})
}

func TestAddDifferential(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, n := range oddSizes {
			full, dst := guarded(r, n)
			_, x := guarded(r, n)
			want := append([]float32(nil), dst...)
			addRef(want, x)
			Add(dst, x)
			checkGuards(t, full, "Add")
			for i := range want {
				if dst[i] != want[i] {
					t.Fatalf("Add n=%d: [%d] = %v, want %v", n, i, dst[i], want[i])
				}
			}
			for _, rows := range []int{1, 3, 7} {
				full, m := guarded(r, rows*n)
				want := append([]float32(nil), m...)
				addBiasRowsRef(want, x, rows, n)
				AddBiasRows(m, x, rows, n)
				checkGuards(t, full, "AddBiasRows")
				for i := range want {
					if m[i] != want[i] {
						t.Fatalf("AddBiasRows n=%d rows=%d: [%d] = %v, want %v", n, rows, i, m[i], want[i])
					}
				}
			}
		}
	})
}

func TestElementwiseAllocs(t *testing.T) {
	x := make([]float32, 384*3)
	g := make([]float32, 384)
	for i := range g {
		g[i] = 1
	}
	cases := map[string]func(){
		"GELU":      func() { GELU(x) },
		"Softmax":   func() { Softmax(x[:33]) },
		"LayerNorm": func() { LayerNorm(x, x, g, g, 3, 384, 1e-12) },
		"Add":       func() { Add(x, x) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

func TestSigmoidActivationsDifferential(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		acts := []struct {
			name      string
			fast, ref func([]float32)
		}{{"SiLU", SiLU, siluRef}, {"GELUTanh", GELUTanh, geluTanhRef}}
		for _, a := range acts {
			for _, n := range append(oddSizes, 4096) {
				full, x := guarded(r, n)
				for i := range x {
					x[i] = float32((r.Float64()*2 - 1) * 20)
				}
				if n > 4 {
					x[0], x[1], x[2], x[3] = 0, 200, -200, 1e-20
				}
				in := append([]float32(nil), x...)
				want := append([]float32(nil), x...)
				a.ref(want)
				a.fast(x)
				checkGuards(t, full, a.name)
				for i := range x {
					// float32 rounding of the exp argument (~|x|, or ~|x|³ for
					// GELUTanh, in the tails) costs about |argument|·6e-8 relative;
					// the float64 reference itself cancels in 1+tanh far in the
					// negative tail (it returns 0 for GELUTanh(-8)), hence the floor.
					arg := math.Abs(float64(in[i]))
					if a.name == "GELUTanh" {
						arg = 1.6 * math.Abs(arg+0.044715*arg*arg*arg)
					}
					tol := 2e-7*math.Abs(float64(want[i]))*(2+arg) + 1e-15
					if !near(float64(x[i]), float64(want[i]), tol) {
						t.Fatalf("%s n=%d: f(%v) = %v, want %v", a.name, n, in[i], x[i], want[i])
					}
				}
			}
		}
	})
}
