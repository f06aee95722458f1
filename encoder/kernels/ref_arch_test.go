package kernels

import (
	"math"
	"slices"
	"testing"
)

func TestRotateHalf(t *testing.T) {
	// A rotation by θ of the pair (1, 0) gives (cos θ, sin θ), and rotations
	// keep the norm of every pair.
	const h = 3
	angles := []float64{0.3, -1.2, 2.5}
	cos := make([]float32, h)
	sin := make([]float32, h)
	for i, a := range angles {
		cos[i], sin[i] = float32(math.Cos(a)), float32(math.Sin(a))
	}
	x := []float32{1, 2, -0.5, 0, 3, 4}
	want := make([]float32, 2*h)
	for i, a := range angles {
		p, q := float64(x[i]), float64(x[i+h])
		want[i] = float32(p*math.Cos(a) - q*math.Sin(a))
		want[i+h] = float32(q*math.Cos(a) + p*math.Sin(a))
	}
	RotateHalf(x, cos, sin)
	for i := range x {
		if math.Abs(float64(x[i]-want[i])) > 1e-6 {
			t.Fatalf("RotateHalf: got %v, want %v", x, want)
		}
	}
	for i := 0; i < h; i++ {
		n := math.Hypot(float64(x[i]), float64(x[i+h]))
		orig := [][2]float64{{1, 0}, {2, 3}, {-0.5, 4}}[i]
		if math.Abs(n-math.Hypot(orig[0], orig[1])) > 1e-5 {
			t.Fatalf("pair %d: norm %v changed from %v", i, n, math.Hypot(orig[0], orig[1]))
		}
	}
}

func TestRotateHalfLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("RotateHalf with x of the wrong length did not panic")
		}
	}()
	RotateHalf(make([]float32, 5), make([]float32, 2), make([]float32, 2))
}

func TestAddScaled(t *testing.T) {
	dst := []float32{1, 2, 3, 9}
	AddScaled(dst, []float32{1, -1, 0.5}, 2)
	if !slices.Equal(dst, []float32{3, 0, 4, 9}) {
		t.Fatalf("AddScaled: got %v", dst)
	}
	AddScaled(dst, nil, 5) // an empty x is a no-op, even for a short dst
}

func TestTopK(t *testing.T) {
	cases := []struct {
		x    []float32
		k    int
		want []int32
	}{
		{[]float32{0.1, 0.7, 0.2}, 2, []int32{1, 2}},
		{[]float32{0.5, 0.5, 0.9, 0.5}, 3, []int32{2, 0, 1}},
		{[]float32{-3, -1, -2}, 1, []int32{1}},
		{[]float32{float32(math.NaN()), 1, 2}, 3, []int32{2, 1, 0}},
		{[]float32{4, 3, 2, 1, 0}, 5, []int32{0, 1, 2, 3, 4}},
	}
	for _, c := range cases {
		idx := make([]int32, c.k)
		TopK(idx, c.x)
		if !slices.Equal(idx, c.want) {
			t.Errorf("TopK(%v, %d) = %v, want %v", c.x, c.k, idx, c.want)
		}
	}
}

func TestTopKTooManyPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("TopK with k > len(x) did not panic")
		}
	}()
	TopK(make([]int32, 3), []float32{1, 2})
}
