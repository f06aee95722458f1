package kernels

// Mul sets dst[i] *= x[i] for every i in x: the gating product of GLU
// feed-forward blocks (GeGLU, SwiGLU).
func Mul(dst, x []float32) {
	if len(x) == 0 {
		return
	}
	_ = dst[len(x)-1]
	for i, v := range x {
		dst[i] *= v
	}
}

// Scale sets x[i] *= a for every i.
func Scale(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}
