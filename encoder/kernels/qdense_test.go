package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestQuantizeRow checks the AVX2 row quantization against the reference,
// value for value and scale bit for bit, at odd lengths.
func TestQuantizeRow(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("no SIMD kernels on this machine")
	}
	r := rand.New(rand.NewPCG(41, 42))
	for _, n := range append([]int{0, 8, 16, 384, 1536}, oddSizes...) {
		for trial := 0; trial < 20; trial++ {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Exp(4*r.Float64()-2))
			}
			if trial == 1 {
				clear(x) // all zero: scale 0
			}
			if trial == 2 && n > 0 {
				// Exact halves after scaling (ties go to even) and the extremes.
				m := float32(127)
				for i := range x {
					x[i] = float32(i%255-127) + 0.5
				}
				x[0] = m + 0.5
			}
			want := make([]int16, n+2)
			got := make([]int16, n+2)
			for i := range got {
				got[i], want[i] = 0x5a5a, 0x5a5a
			}
			ws := quantizeRowRef(want[:n], x)
			gs := quantizeRow(got[:n], x)
			if math.Float32bits(ws) != math.Float32bits(gs) {
				t.Fatalf("n=%d trial %d: scale %v, want %v", n, trial, gs, ws)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("n=%d trial %d: q[%d] = %d, want %d", n, trial, i, got[i], want[i])
				}
			}
		}
	}
}

// TestQgemmKernel checks the int8 micro-kernel's raw int32 tile for exact
// equality with the sums of products, including the extreme values ±127
// at every position, and its dequantizing modes against the Go formula.
func TestQgemmKernel(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("no SIMD kernels on this machine")
	}
	r := rand.New(rand.NewPCG(43, 44))
	for _, kp := range []int{1, 2, 3, 4, 5, 7, 17, 192, 768, 1001} {
		for trial := 0; trial < 3; trial++ {
			lda := 2*kp + 6 // a stride wider than the row
			a := make([]int16, qMR*lda)
			b := make([]int16, kp*2*qNR)
			for i := range a {
				a[i] = int16(r.IntN(255) - 127)
			}
			for i := range b {
				b[i] = int16(r.IntN(255) - 127)
			}
			if trial == 1 {
				for i := range a {
					a[i] = 127
				}
				for i := range b {
					b[i] = -127
				}
			}
			var want [qMR * qNR]int32
			for i := 0; i < qMR; i++ {
				for j := 0; j < qNR; j++ {
					var s int32
					for p := 0; p < 2*kp; p++ {
						s += int32(a[i*lda+p]) * int32(b[2*((p/2)*qNR+j)+p%2])
					}
					want[i*qNR+j] = s
				}
			}
			var raw [qMR * qNR]int32
			qgemm6x16AVX2(kp, &a[0], lda, &b[0], nil, 0, nil, nil, 0, &raw)
			if raw != want {
				t.Fatalf("kp=%d trial %d: raw tile differs from the exact sums", kp, trial)
			}
			sa := make([]float32, qMR)
			sw := make([]float32, qNR)
			for i := range sa {
				sa[i] = r.Float32() / 127
			}
			for i := range sw {
				sw[i] = r.Float32() / 127
			}
			const ldc = qNR + 5
			for mode := 1; mode <= 2; mode++ {
				full, c := guarded(r, (qMR-1)*ldc+qNR)
				old := append([]float32(nil), c...)
				qgemm6x16AVX2(kp, &a[0], lda, &b[0], &c[0], ldc, &sa[0], &sw[0], mode, nil)
				checkGuards(t, full, "c")
				for i := 0; i < qMR; i++ {
					for j := 0; j < ldc && i*ldc+j < len(c); j++ {
						wv := old[i*ldc+j]
						if j < qNR {
							y := float32(want[i*qNR+j]) * sa[i] * sw[j]
							if mode == 1 {
								wv = y
							} else {
								wv += y
							}
						}
						if math.Float32bits(c[i*ldc+j]) != math.Float32bits(wv) {
							t.Fatalf("kp=%d mode %d: c[%d,%d] = %v, want %v", kp, mode, i, j, c[i*ldc+j], wv)
						}
					}
				}
			}
		}
	}
}

// TestDenseInt8 compares the int8 Dense on every path (reference, AVX2,
// pools of 1–3 participants, with an activation, ForwardAdd) with the
// reference bit for bit at odd sizes, with guard values around dst, and
// with the float32 Dense within the quantization error.
func TestDenseInt8(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(45, 46))
		pools := []*Pool{nil, NewPool(2), NewPool(3)}
		defer func() {
			for _, p := range pools {
				p.Close()
			}
		}()
		s := new(scratch)
		for _, out := range []int{1, 17, 33, 384} {
			for _, in := range []int{1, 7, 65, 383, 1536} {
				for _, rows := range []int{0, 1, 7, 127, 500} {
					if rows*out*in > 30e6 {
						continue // the reference is slow; 127 rows cover the blocking
					}
					_, w := guarded(r, out*in)
					var bias []float32
					if out%2 == 1 {
						_, bias = guarded(r, out)
					}
					d := NewDenseInt8(w, bias, out, in)
					f := NewDense(w, bias, out, in)
					_, x := guarded(r, rows*in)
					if rows > 3 {
						clear(x[2*in : 3*in]) // an all-zero row
					}
					name := fmt.Sprintf("out=%d in=%d rows=%d", out, in, rows)
					for pi, p := range pools {
						for _, act := range []func([]float32){nil, reluRef} {
							want := make([]float32, rows*out)
							qdenseRef(d, want, x, rows, false, act, s)
							full, dst := guarded(r, rows*out)
							if act == nil && p == nil {
								d.Forward(dst, x, rows)
							} else {
								d.ForwardParallel(p, dst, x, rows, act)
							}
							checkGuards(t, full, name+" dst")
							equalBits(t, fmt.Sprintf("%s pool=%d act=%v", name, pi, act != nil), dst, want)
						}
						full, dst := guarded(r, rows*out)
						want := append([]float32(nil), dst...)
						qdenseRef(d, want, x, rows, true, nil, s)
						d.ForwardAdd(p, dst, x, rows)
						checkGuards(t, full, name+" dst")
						equalBits(t, fmt.Sprintf("%s pool=%d ForwardAdd", name, pi), dst, want)
					}
					// Against float32: the error of two 8-bit roundings per
					// product, relative to the row's and channel's maxima.
					if rows > 0 && in > 1 {
						got := make([]float32, rows*out)
						ref := make([]float32, rows*out)
						d.Forward(got, x, rows)
						f.Forward(ref, x, rows)
						var num, den float64
						for i := range got {
							e := float64(got[i] - ref[i])
							num += e * e
							den += float64(ref[i]) * float64(ref[i])
						}
						if rel := math.Sqrt(num / den); rel > 0.03 {
							t.Fatalf("%s: int8 relative RMS error %.3g vs float32", name, rel)
						}
					}
				}
			}
		}
	})
}

func equalBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want %v (reference)", what, i, got[i], want[i])
		}
	}
}

func TestDenseInt8Allocs(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("no SIMD kernels on this machine")
	}
	r := rand.New(rand.NewPCG(47, 48))
	_, a := guarded(r, 64*1536)
	_, w := guarded(r, 1536*384)
	c := make([]float32, 64*1536)
	up := NewDenseInt8(w, nil, 1536, 384)
	down := NewDenseInt8(w, nil, 384, 1536)
	p := NewPool(2)
	defer p.Close()
	cases := map[string]func(){
		"Forward":         func() { up.Forward(c, a, 64) },
		"ForwardParallel": func() { up.ForwardParallel(p, c, a, 64, GELU) },
		"ForwardAdd":      func() { down.ForwardAdd(p, c, a, 64) },
	}
	for name, f := range cases {
		f()
		if n := testing.AllocsPerRun(50, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

func TestParseCompute(t *testing.T) {
	for s, want := range map[string]Compute{"": ComputeFloat32, "float32": ComputeFloat32, "int8": ComputeInt8, "bf16": ComputeBF16, "bfloat16": ComputeBF16} {
		if got, err := ParseCompute(s); err != nil || got != want {
			t.Errorf("ParseCompute(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"fp16", "int4", "BF16"} {
		if _, err := ParseCompute(s); err == nil {
			t.Errorf("ParseCompute(%q) succeeded", s)
		}
	}
}
