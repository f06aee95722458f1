package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var oddSizes = []int{1, 3, 7, 17, 33, 65, 127, 383}

const guard = 37 // guard floats on each side of every buffer

var guardVal = float32(math.Float32frombits(0x7fc0beef)) // a NaN with a payload

// guarded returns a buffer of n floats with guard values on both sides and
// random contents (or the value fill when not NaN).
func guarded(r *rand.Rand, n int) (full, buf []float32) {
	full = make([]float32, n+2*guard)
	for i := range full {
		full[i] = guardVal
	}
	buf = full[guard : guard+n]
	for i := range buf {
		buf[i] = float32(r.NormFloat64())
	}
	return full, buf
}

func checkGuards(t *testing.T, full []float32, name string) {
	t.Helper()
	n := len(full) - 2*guard
	for i := 0; i < guard; i++ {
		if math.Float32bits(full[i]) != math.Float32bits(guardVal) || math.Float32bits(full[guard+n+i]) != math.Float32bits(guardVal) {
			t.Fatalf("%s: guard value overwritten", name)
		}
	}
}

// withFast runs f once for every kernel path this machine supports: the
// references and, where the CPU has them, the SIMD kernels.
func withFast(t *testing.T, f func(t *testing.T)) {
	saved := hasAVX2FMA
	defer func() { hasAVX2FMA = saved }()
	paths := []bool{false}
	if saved {
		paths = append(paths, true)
	}
	for _, fast := range paths {
		hasAVX2FMA = fast
		t.Run(fmt.Sprintf("simd=%v", fast), f)
	}
}

// closeGemm compares got with want where each entry is a sum of k products:
// the bound scales with the magnitudes summed (mag) as float32 rounding does.
func closeGemm(got, want, mag float32) bool {
	return math.Abs(float64(got-want)) <= 2e-6*float64(mag)+1e-6
}

type gemmCase struct {
	m, n, k     int
	lda, ldb    int
	ldc         int
	alpha, beta float32
}

func gemmCases() []gemmCase {
	var cs []gemmCase
	for _, m := range oddSizes {
		for _, n := range []int{1, 7, 17, 33, 383} {
			for _, k := range []int{1, 3, 33, 257, 383} {
				if m*n*k > 4e6 {
					continue
				}
				cs = append(cs, gemmCase{m: m, n: n, k: k, lda: k, ldb: max(n, k), ldc: n, alpha: 1, beta: 0})
			}
		}
	}
	cs = append(cs,
		gemmCase{m: 20, n: 20, k: 32, lda: 384, ldb: 384, ldc: 23, alpha: 0.17677669, beta: 0},
		gemmCase{m: 13, n: 32, k: 13, lda: 15, ldb: 384, ldc: 384, alpha: 1, beta: 1},
		gemmCase{m: 150, n: 40, k: 600, lda: 601, ldb: 603, ldc: 41, alpha: -0.5, beta: 0.25},
		gemmCase{m: 7, n: 5, k: 0, lda: 1, ldb: 5, ldc: 5, alpha: 1, beta: 0.5},
		gemmCase{m: 7, n: 5, k: 0, lda: 0, ldb: 0, ldc: 5, alpha: 1, beta: 0},
		gemmCase{m: 300, n: 48, k: 520, lda: 520, ldb: 520, ldc: 48, alpha: 1, beta: 1},
	)
	return cs
}

func testSgemm(t *testing.T, nt bool) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range gemmCases() {
		m, n, k := tc.m, tc.n, tc.k
		var brows, bcols int
		if nt {
			brows, bcols = n, k
		} else {
			brows, bcols = k, n
		}
		ldb := max(tc.ldb, bcols)
		_, a := guarded(r, max(0, (m-1)*tc.lda+k))
		_, b := guarded(r, max(0, (brows-1)*ldb+bcols))
		cfull, c := guarded(r, (m-1)*tc.ldc+n)
		want := make([]float32, len(c))
		copy(want, c)
		if tc.beta == 0 {
			for i := range c {
				c[i] = float32(math.NaN()) // beta == 0 must ignore old contents
			}
		}
		if nt {
			sgemmNTRef(m, n, k, tc.alpha, a, tc.lda, b, ldb, tc.beta, want, tc.ldc)
			SgemmNT(m, n, k, tc.alpha, a, tc.lda, b, ldb, tc.beta, c, tc.ldc)
		} else {
			sgemmNNRef(m, n, k, tc.alpha, a, tc.lda, b, ldb, tc.beta, want, tc.ldc)
			SgemmNN(m, n, k, tc.alpha, a, tc.lda, b, ldb, tc.beta, c, tc.ldc)
		}
		checkGuards(t, cfull, "C")
		for i := 0; i < m; i++ {
			for j := 0; j < tc.ldc && i*tc.ldc+j < len(c); j++ {
				idx := i*tc.ldc + j
				if j >= n {
					if math.Float32bits(c[idx]) != math.Float32bits(float32(math.NaN())) && tc.beta == 0 {
						t.Fatalf("%+v: C[%d,%d] outside n was written", tc, i, j)
					}
					continue
				}
				var mag float32
				for p := 0; p < k; p++ {
					var bv float32
					if nt {
						bv = b[j*ldb+p]
					} else {
						bv = b[p*ldb+j]
					}
					mag += float32(math.Abs(float64(a[i*tc.lda+p] * bv)))
				}
				mag = mag*float32(math.Abs(float64(tc.alpha))) + float32(math.Abs(float64(want[idx])))
				if !closeGemm(c[idx], want[idx], mag) {
					t.Fatalf("%+v: C[%d,%d] = %v, want %v", tc, i, j, c[idx], want[idx])
				}
			}
		}
	}
}

func TestSgemmNT(t *testing.T) { withFast(t, func(t *testing.T) { testSgemm(t, true) }) }
func TestSgemmNN(t *testing.T) { withFast(t, func(t *testing.T) { testSgemm(t, false) }) }

func TestDenseForward(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		pools := []*Pool{nil, NewPool(2), NewPool(3)}
		defer func() {
			for _, p := range pools {
				p.Close()
			}
		}()
		for _, out := range []int{1, 17, 33, 384} {
			for _, in := range []int{1, 7, 65, 383} {
				for _, rows := range []int{0, 1, 7, 127, 500} {
					_, w := guarded(r, out*in)
					var bias []float32
					if out%2 == 1 {
						_, bias = guarded(r, out)
					}
					d := NewDense(w, bias, out, in)
					_, x := guarded(r, rows*in)
					want := make([]float32, rows*out)
					sgemmNTRef(rows, out, in, 1, x, in, w, in, 0, want, out)
					if bias != nil {
						addBiasRowsRef(want, bias, rows, out)
					}
					for pi, p := range pools {
						for _, act := range []func([]float32){nil, reluRef} {
							full, dst := guarded(r, rows*out)
							if act == nil && p == nil {
								d.Forward(dst, x, rows)
							} else {
								d.ForwardParallel(p, dst, x, rows, act)
							}
							checkGuards(t, full, "dst")
							for i := 0; i < rows; i++ {
								for j := 0; j < out; j++ {
									wv := want[i*out+j]
									var mag float32
									for q := 0; q < in; q++ {
										mag += float32(math.Abs(float64(x[i*in+q] * w[j*in+q])))
									}
									if act != nil && wv < 0 {
										wv = 0
									}
									if !closeGemm(dst[i*out+j], wv, mag+1) {
										t.Fatalf("out=%d in=%d rows=%d pool=%d act=%v: [%d,%d] = %v, want %v", out, in, rows, pi, act != nil, i, j, dst[i*out+j], wv)
									}
								}
							}
						}
					}
				}
			}
		}
	})
}

func TestPoolFor(t *testing.T) {
	for _, threads := range []int{1, 2, 5} {
		p := NewPool(threads)
		for _, n := range []int{0, 1, 3, 7, 100} {
			hits := make([]int, n)
			p.For(n, 2, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					hits[i]++
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads %d n %d: index %d visited %d times", threads, n, i, h)
				}
			}
		}
		p.Close()
		p.Close()
		ran := false
		p.For(4, 1, func(lo, hi int) { ran = lo == 0 && hi == 4 })
		if !ran {
			t.Fatalf("For after Close did not run the whole range inline")
		}
	}
}

func TestGemmAllocs(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("no SIMD kernels on this machine")
	}
	r := rand.New(rand.NewPCG(5, 6))
	_, a := guarded(r, 64*384)
	_, w := guarded(r, 384*384)
	c := make([]float32, 64*384)
	d := NewDense(w, nil, 384, 384)
	p := NewPool(2)
	defer p.Close()
	cases := map[string]func(){
		"Dense.Forward":         func() { d.Forward(c, a, 64) },
		"Dense.ForwardParallel": func() { d.ForwardParallel(p, c, a, 64, GELU) },
		"Dense.ForwardAdd":      func() { d.ForwardAdd(p, c, a, 64) },
		"SgemmNT":               func() { SgemmNT(20, 20, 32, 1, a, 384, w, 384, 0, c, 20) },
		"SgemmNN":               func() { SgemmNN(20, 32, 20, 1, a, 20, w, 384, 0, c, 384) },
	}
	for name, f := range cases {
		f()
		if n := testing.AllocsPerRun(50, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

func TestDenseForwardAdd(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		p := NewPool(2)
		defer p.Close()
		for _, out := range []int{1, 33, 384} {
			for _, in := range []int{7, 383, 1536} {
				for _, rows := range []int{1, 17, 500} {
					_, w := guarded(r, out*in)
					_, bias := guarded(r, out)
					d := NewDense(w, bias, out, in)
					_, x := guarded(r, rows*in)
					full, dst := guarded(r, rows*out)
					want := append([]float32(nil), dst...)
					y := make([]float32, rows*out)
					sgemmNTRef(rows, out, in, 1, x, in, w, in, 0, y, out)
					addBiasRowsRef(y, bias, rows, out)
					addRef(want, y)
					for _, pool := range []*Pool{nil, p} {
						got := append([]float32(nil), dst...)
						d.ForwardAdd(pool, got, x, rows)
						for i := range want {
							if !closeGemm(got[i], want[i], float32(in)*3+float32(math.Abs(float64(want[i])))) {
								t.Fatalf("out=%d in=%d rows=%d: [%d] = %v, want %v", out, in, rows, i, got[i], want[i])
							}
						}
					}
					d.ForwardAdd(nil, dst, x, rows)
					checkGuards(t, full, "dst")
				}
			}
		}
	})
}
