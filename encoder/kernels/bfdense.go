package kernels

import "math"

// bf16-emulating dense layers (ComputeBF16).
//
// Semantics, those of a bf16 dot product with float32 accumulation
// (VDPBF16PS): every weight, once at load, and every input activation, per
// call, is rounded to the nearest bfloat16 (8 significant bits, ties to
// even; NaN stays NaN, quieted; values past the largest bf16 become ±Inf),
// and the products of those values are summed in float32. The rounded
// values are kept as float32 (a bf16 is the top half of a float32), so the
// layer runs on the ordinary float32 GEMM: on a CPU without AVX512_BF16
// this mode emulates bf16 accuracy at float32 speed and float32 memory,
// with no speed gain. AVX512_BF16 kernels are not implemented (no such CPU
// was available to test them on). The only per-call cost over float32 is
// one pass over the input rows into per-call scratch (AVX2: about 2% of
// the encoder's time on minilm-l6-shape).

// roundBF16Ref returns v rounded to the nearest bfloat16, as a float32. It
// is the reference of RoundBF16To, written from the number format rather
// than its bits: 8 significant bits for normal values, a fixed step of
// 2⁻¹³³ below the smallest normal (bf16 has float32's exponent range, so
// its subnormals are float32's with the low 16 bits cut).
func roundBF16Ref(v float32) float32 {
	if v != v {
		return math.Float32frombits((math.Float32bits(v) | 0x00400000) &^ 0xffff)
	}
	x := float64(v)
	if x == 0 || math.IsInf(x, 0) {
		return v
	}
	if math.Abs(x) < 0x1p-126 {
		return float32(math.RoundToEven(x*0x1p133) * 0x1p-133)
	}
	fr, e := math.Frexp(x) // |fr| in [0.5, 1): 8 bits are fr·2⁸
	// float32 turns a result past MaxFloat32 into ±Inf, as bf16 does.
	return float32(math.Ldexp(math.RoundToEven(fr*256)/256, e))
}

// RoundBF16To writes x rounded to bfloat16 (round to nearest even, NaN
// kept) into dst[:len(x)], as float32 values; dst may alias x. It is
// integer arithmetic on the float32 bits, eight lanes at a time with AVX2
// (bf16_amd64.s), and equals roundBF16Ref on every value.
func RoundBF16To(dst, x []float32) {
	dst = dst[:len(x)]
	n8 := 0
	if hasAVX2FMA && len(x) >= 8 {
		n8 = len(x) &^ 7
		roundBF16AVX2(&dst[0], &x[0], n8)
	}
	for i := n8; i < len(x); i++ {
		v := x[i]
		b := math.Float32bits(v)
		r := (b + 0x7fff + (b>>16)&1) &^ 0xffff
		if v != v {
			r = (b | 0x00400000) &^ 0xffff
		}
		dst[i] = math.Float32frombits(r)
	}
}

// NewDenseBF16 returns a Dense over w (out×in) and bias (out, or nil) that
// computes as a bf16 dot product with float32 accumulation (see
// ComputeBF16): a copy of w rounded to bf16 becomes W (w itself is not
// modified or kept), and Forward, ForwardParallel and ForwardAdd round
// each input row to bf16 before the float32 GEMM. The bias and the sums
// stay float32. On this CPU it is no faster than NewDense.
func NewDenseBF16(w, bias []float32, out, in int) *Dense {
	checkDenseArgs("NewDenseBF16", w, bias, out, in)
	wb := make([]float32, len(w))
	RoundBF16To(wb, w)
	d := NewDense(wb, bias, out, in)
	d.bf16 = true
	return d
}

// bf16Input returns x (rows×In) rounded to bf16 in s's scratch, which
// grows only when needed, so steady-state calls do not allocate.
func (s *scratch) bf16Input(x []float32, n int) []float32 {
	if cap(s.xb) < n {
		s.xb = make([]float32, n)
	}
	xb := s.xb[:n]
	RoundBF16To(xb, x[:n])
	return xb
}
