package kernels

// This file holds the kernels that only some architectures need: rotary
// position embeddings, the scaled accumulation of mixture-of-experts outputs
// and top-k selection for their routers. They are plain Go; each is cheap next
// to the GEMMs of the same layer.

// RotateHalf applies a rotary position embedding in the "rotate half"
// (GPT-NeoX) layout to one head vector x of 2·h floats, h = len(cos): for
// i < h, the pair (x[i], x[i+h]) is rotated by the angle whose cosine and sine
// are cos[i] and sin[i]:
//
//	x[i]   = x[i]·cos[i] − x[i+h]·sin[i]
//	x[i+h] = x[i+h]·cos[i] + x[i]·sin[i]
//
// This is Hugging Face's q·cos + rotate_half(q)·sin with cos and sin each
// holding their h distinct values once rather than twice.
func RotateHalf(x, cos, sin []float32) {
	h := len(cos)
	if len(sin) != h || len(x) != 2*h {
		panic("kernels: RotateHalf length mismatch")
	}
	lo, hi := x[:h], x[h:2*h]
	for i, c := range cos {
		s := sin[i]
		a, b := lo[i], hi[i]
		lo[i] = a*c - b*s
		hi[i] = b*c + a*s
	}
}

// AddScaled sets dst[i] += a·x[i] for every i in x: the weighted sum of the
// outputs of the experts a token is routed to.
func AddScaled(dst, x []float32, a float32) {
	if len(x) == 0 {
		return
	}
	_ = dst[len(x)-1]
	for i, v := range x {
		dst[i] += a * v
	}
}

// TopK writes into idx the indices of the len(idx) largest values of x, the
// largest first; among equal values the lower index comes first. It needs
// len(idx) <= len(x) and is meant for the few experts of a router, so it is a
// selection in O(len(x)·len(idx)).
func TopK(idx []int32, x []float32) {
	k := len(idx)
	if k > len(x) {
		panic("kernels: TopK asks for more indices than values")
	}
	for n := 0; n < k; n++ {
		best := -1
		for j, v := range x {
			taken := false
			for _, t := range idx[:n] {
				if int(t) == j {
					taken = true
					break
				}
			}
			// NaN never wins a comparison; take it only when nothing else is
			// left so that k indices are always written.
			if !taken && (best < 0 || v > x[best] || (x[best] != x[best] && v == v)) {
				best = j
			}
		}
		idx[n] = int32(best)
	}
}
