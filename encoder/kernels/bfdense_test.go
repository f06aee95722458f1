package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestRoundBF16 checks RoundBF16To (SIMD and pure Go) against
// roundBF16Ref at odd sizes, on
// random values of every magnitude and on the special cases: ties (to
// even), signed zeros, subnormals, the largest values (which round to
// ±Inf), infinities and NaNs (which stay NaN).
func TestRoundBF16(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1.00390625, 1.01171875, 1.0078125,
		math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), math.Float32frombits(0x3f808001),
		math.Float32frombits(0x00000001), math.Float32frombits(0x80008000), math.Float32frombits(0x00018000),
		math.Float32frombits(0x007fffff), math.Float32frombits(0x00800000), math.MaxFloat32, -math.MaxFloat32,
		math.Float32frombits(0x7f7f7fff), math.Float32frombits(0x7f7f8000),
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0x7f800001), math.Float32frombits(0xff800001), math.Float32frombits(0x7fffffff)}
	// Hand-checked values: ties go to the even bf16, the last float32
	// below a tie rounds down, MaxFloat32 overflows.
	for v, want := range map[float32]float32{
		math.Float32frombits(0x3f808000): 1,
		math.Float32frombits(0x3f818000): math.Float32frombits(0x3f820000),
		math.Float32frombits(0x3f807fff): 1,
		math.Float32frombits(0x3f808001): math.Float32frombits(0x3f810000),
		math.MaxFloat32:                  float32(math.Inf(1)),
		3.14159265:                       3.140625,
	} {
		if got := roundBF16Ref(v); got != want {
			t.Errorf("roundBF16Ref(%v) = %v, want %v", v, got, want)
		}
	}
	withFast(t, func(t *testing.T) { testRoundBF16To(t, special) })
}

// testRoundBF16To is TestRoundBF16's differential part, run with and
// without the SIMD kernels.
func testRoundBF16To(t *testing.T, special []float32) {
	r := rand.New(rand.NewPCG(61, 62))
	for _, n := range []int{0, 1, 7, 8, 31, 33, 255, 1001} {
		x := make([]float32, n)
		for i := range x {
			switch {
			case i < len(special) && n > 100:
				x[i] = special[i]
			case i%3 == 0:
				x[i] = math.Float32frombits(r.Uint32()) // every exponent, NaNs included
			default:
				x[i] = float32(r.NormFloat64())
			}
		}
		got := make([]float32, n+1)
		got[n] = 42 // guard
		RoundBF16To(got, x)
		if got[n] != 42 {
			t.Fatalf("n=%d: RoundBF16To wrote past len(x)", n)
		}
		for i, v := range x {
			want := roundBF16Ref(v)
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: RoundBF16To(%#08x) = %#08x, want %#08x", n, math.Float32bits(v), math.Float32bits(got[i]), math.Float32bits(want))
			}
			if b := math.Float32bits(got[i]); b&0xffff != 0 || (v != v) != (got[i] != got[i]) {
				t.Fatalf("n=%d: %#08x rounds to %#08x: not a bf16 or NaN not kept", n, math.Float32bits(v), b)
			}
		}
		// In place.
		y := append([]float32(nil), x...)
		RoundBF16To(y, y)
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(got[i]) {
				t.Fatalf("n=%d: in-place RoundBF16To differs at %d", n, i)
			}
		}
	}
}

// TestDenseBF16 checks the bf16 Dense at odd sizes, with and without a
// pool and an activation, and ForwardAdd: bit for bit against the float32
// Dense over the bf16-rounded weights and inputs (the definition of the
// mode), and against the pure-Go reference GEMM on those values within
// float32 summation error.
func TestDenseBF16(t *testing.T) {
	withFast(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(63, 64))
		pools := []*Pool{nil, NewPool(2), NewPool(3)}
		defer func() {
			for _, p := range pools {
				p.Close()
			}
		}()
		for _, out := range []int{1, 17, 33, 384} {
			for _, in := range []int{1, 7, 65, 383} {
				for _, rows := range []int{0, 1, 7, 127} {
					_, w := guarded(r, out*in)
					w0 := append([]float32(nil), w...)
					var bias []float32
					if out%2 == 1 {
						_, bias = guarded(r, out)
					}
					d := NewDenseBF16(w, bias, out, in)
					if d.Compute() != ComputeBF16 {
						t.Fatalf("Compute() = %v", d.Compute())
					}
					for i := range w {
						if math.Float32bits(w[i]) != math.Float32bits(w0[i]) {
							t.Fatal("NewDenseBF16 modified its weights")
						}
					}
					wb := make([]float32, len(w))
					RoundBF16To(wb, w)
					f := NewDense(wb, bias, out, in)
					_, x := guarded(r, rows*in)
					x0 := append([]float32(nil), x...)
					xb := make([]float32, len(x))
					RoundBF16To(xb, x)
					name := fmt.Sprintf("out=%d in=%d rows=%d", out, in, rows)

					ref := make([]float32, rows*out)
					sgemmNTRef(rows, out, in, 1, xb, in, wb, in, 0, ref, out)
					if bias != nil {
						addBiasRowsRef(ref, bias, rows, out)
					}
					for pi, p := range pools {
						for _, act := range []func([]float32){nil, reluRef} {
							want := make([]float32, rows*out)
							f.ForwardParallel(p, want, xb, rows, act)
							full, dst := guarded(r, rows*out)
							d.ForwardParallel(p, dst, x, rows, act)
							checkGuards(t, full, name+" dst")
							equalBits(t, fmt.Sprintf("%s pool=%d act=%v", name, pi, act != nil), dst, want)
							if act == nil {
								for i := range ref {
									if e := math.Abs(float64(dst[i] - ref[i])); e > 1e-5*float64(in)*(1+math.Abs(float64(ref[i]))) {
										t.Fatalf("%s: [%d] = %v, reference %v", name, i, dst[i], ref[i])
									}
								}
							}
						}
						full, dst := guarded(r, rows*out)
						want := append([]float32(nil), dst...)
						f.ForwardAdd(p, want, xb, rows)
						d.ForwardAdd(p, dst, x, rows)
						checkGuards(t, full, name+" dst")
						equalBits(t, fmt.Sprintf("%s pool=%d ForwardAdd", name, pi), dst, want)
					}
					for i := range x {
						if math.Float32bits(x[i]) != math.Float32bits(x0[i]) {
							t.Fatalf("%s: Forward modified its input", name)
						}
					}
				}
			}
		}
	})
}

func TestDenseBF16Allocs(t *testing.T) {
	r := rand.New(rand.NewPCG(65, 66))
	_, a := guarded(r, 64*1536)
	_, w := guarded(r, 1536*384)
	c := make([]float32, 64*1536)
	up := NewDenseBF16(w, nil, 1536, 384)
	down := NewDenseBF16(w, nil, 384, 1536)
	p := NewPool(2)
	defer p.Close()
	cases := map[string]func(){
		"Forward":         func() { up.Forward(c, a, 64) },
		"ForwardParallel": func() { up.ForwardParallel(p, c, a, 64, GELU) },
		"ForwardAdd":      func() { down.ForwardAdd(p, c, a, 64) },
	}
	for name, f := range cases {
		f()
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}
