package kernels

import "math"

// Dynamic int8 dense layers (ComputeInt8).
//
// Semantics, which the pure-Go reference (qdenseRef) defines and the AVX2
// path reproduces bit for bit:
//
//   - Weights, once at load, per output channel j: m = max|W[j,:]|,
//     sw[j] = m/127, q = clamp(roundEven(W[j,i]·(127/m)), ±127) as int8
//     (all zeros and sw[j] = 0 when m = 0).
//   - Activations, per call and per row i, the same with 127/max|x[i,:]|:
//     symmetric int8 with a float32 scale sa[i].
//   - acc[i,j] = Σ qa[i,p]·qw[j,p] in int32 (exact: |acc| ≤ 127²·k, which
//     fits for k < 133,000).
//   - y[i,j] = (float32(acc)·sa[i])·sw[j], then + bias[j] (Forward) or
//     dst[i,j] + y[i,j] then + bias[j] (ForwardAdd), all in float32.
//
// Symmetric activations (no zero point) were chosen because the encoder's
// int8 inputs are mostly LayerNorm outputs, roughly centred, and because
// they need no per-column weight-sum correction; per-row (per-token) scales
// instead of ONNX Runtime's one scale per tensor keep a token with large
// outliers from coarsening every other token. On AVX2 the values are
// widened to int16 and multiplied with VPMADDWD, which cannot saturate
// (ONNX Runtime's VPMADDUBSW u8×s8 pairs can).

const qmax = 127

// qweights is the quantized form of a Dense's weights.
type qweights struct {
	q     []int8    // Out×In, row-major (the reference reads it)
	scale []float32 // Out: sw
	// packed is q widened to int16 in the panel layout of the AVX2
	// micro-kernel (nil without it): panels of qNR columns, kp = In/2
	// rounded up pairs each; within a panel, pair p of column j is at
	// 2·(p·qNR + j). Columns past Out and the odd k are zero.
	packed []int16
	kp     int
}

const (
	qMR = 6
	qNR = 16
)

// quantizeRowRef writes the symmetric int8 values of x into q and returns
// the row's scale (max|x|/127, 0 for an all-zero row).
func quantizeRowRef[T int8 | int16](q []T, x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, float32(math.Abs(float64(v))))
	}
	if m == 0 {
		clear(q[:len(x)])
		return 0
	}
	inv := qmax / m
	for i, v := range x {
		r := math.RoundToEven(float64(v * inv))
		q[i] = T(max(-qmax, min(qmax, r)))
	}
	return m / qmax
}

func quantizeWeights(w []float32, out, in int, pack bool) *qweights {
	qw := &qweights{q: make([]int8, out*in), scale: make([]float32, out), kp: (in + 1) / 2}
	for j := 0; j < out; j++ {
		qw.scale[j] = quantizeRowRef(qw.q[j*in:j*in+in], w[j*in:j*in+in])
	}
	if pack {
		kp := qw.kp
		qw.packed = make([]int16, roundUp(out, qNR)*kp*2)
		for j := 0; j < out; j++ {
			pan := qw.packed[j/qNR*qNR*kp*2:]
			jj := j % qNR
			for i, v := range qw.q[j*in : j*in+in] {
				pan[2*((i/2)*qNR+jj)+i%2] = int16(v)
			}
		}
	}
	return qw
}

// NewDenseInt8 returns a Dense over w (out×in) and bias (out, or nil) that
// computes with dynamic int8 (see ComputeInt8): the weights are quantized
// once here; Forward, ForwardParallel and ForwardAdd quantize each input
// row, multiply in int32 and dequantize in float32. W keeps w, which the
// int8 path does not read.
func NewDenseInt8(w, bias []float32, out, in int) *Dense {
	checkDenseArgs("NewDenseInt8", w, bias, out, in)
	return &Dense{Out: out, In: in, W: w, Bias: bias, q: quantizeWeights(w, out, in, hasAVX2FMA && out > 0 && in > 0)}
}

// NewDenseCompute returns NewDense, NewDenseInt8 or NewDenseBF16
// according to c. It
// panics on an unknown mode, a programmer error (ParseCompute validates
// user input).
func NewDenseCompute(c Compute, w, bias []float32, out, in int) *Dense {
	switch c {
	case ComputeFloat32:
		return NewDense(w, bias, out, in)
	case ComputeInt8:
		return NewDenseInt8(w, bias, out, in)
	case ComputeBF16:
		return NewDenseBF16(w, bias, out, in)
	}
	panic("kernels: NewDenseCompute: unknown compute mode " + c.String())
}

// Compute reports the number format of d's products.
func (d *Dense) Compute() Compute {
	if d.q != nil {
		return ComputeInt8
	}
	if d.bf16 {
		return ComputeBF16
	}
	return ComputeFloat32
}

// qdenseRef is the reference of the int8 Dense: rows of x quantized into
// qa (scratch of In values), acc, dequantization, then bias (and act). With
// add, the products are added to dst before the bias.
func qdenseRef(d *Dense, dst, x []float32, rows int, add bool, act func([]float32), s *scratch) {
	in, out, qw := d.In, d.Out, d.q
	qa := s.qaBuf(in)
	for i := 0; i < rows; i++ {
		sa := quantizeRowRef(qa[:in], x[i*in:i*in+in])
		r := dst[i*out : i*out+out]
		for j := range r {
			wr := qw.q[j*in : j*in+in]
			var acc int32
			for p, a := range qa[:in] {
				acc += int32(a) * int32(wr[p])
			}
			y := float32(acc) * sa * qw.scale[j]
			if add {
				r[j] += y
			} else {
				r[j] = y
			}
		}
		if d.Bias != nil {
			addRef(r, d.Bias)
		}
		if act != nil {
			act(r)
		}
	}
}

// qaBuf returns s.qa with at least n values, growing it only when needed.
func (s *scratch) qaBuf(n int) []int16 {
	if cap(s.qa) < n {
		s.qa = make([]int16, n)
	}
	return s.qa[:n]
}

// qgemmOp is one int8 Dense product over rows of a, quantized per row
// block into the participant's scratch.
type qgemmOp struct {
	d   *Dense
	a   []float32
	c   []float32
	add bool
	act func([]float32)
}

// qBlockBytes bounds the quantized A rows of one row block, so that they
// stay in L2 while every weight panel streams past them.
const qBlockBytes = 192 << 10

// rows computes rows i0…i1-1. Goroutines may run disjoint row ranges of
// one qgemmOp at once, each with its own scratch.
func (g *qgemmOp) rows(i0, i1 int, s *scratch) {
	d, qw := g.d, g.d.q
	in, n, kp := d.In, d.Out, qw.kp
	lda := 2 * kp
	mcMax := max(qMR, qBlockBytes/(2*lda)/qMR*qMR)
	mode := 1
	if g.add {
		mode = 2
	}
	for ic := i0; ic < i1; ic += mcMax {
		mc := min(mcMax, i1-ic)
		mpad := roundUp(mc, qMR)
		qa := s.qaBuf(mpad * lda)
		if cap(s.qs) < mpad {
			s.qs = make([]float32, mpad)
		}
		qs := s.qs[:mpad]
		for r := 0; r < mc; r++ {
			row := qa[r*lda : r*lda+lda]
			qs[r] = quantizeRow(row, g.a[(ic+r)*in:(ic+r)*in+in])
			if in < lda {
				row[in] = 0
			}
		}
		clear(qa[mc*lda:])
		clear(qs[mc:])
		full := mc / qMR * qMR
		for jr := 0; jr < n; jr += qNR {
			pan := &qw.packed[jr*lda]
			w := min(qNR, n-jr)
			var sw *float32
			if w == qNR {
				sw = &qw.scale[jr]
			}
			for ir := 0; ir < mpad; ir += qMR {
				if w == qNR && ir < full {
					qgemm6x16AVX2(kp, &qa[ir*lda], lda, pan, &g.c[(ic+ir)*n+jr], n, &qs[ir], sw, mode, nil)
					continue
				}
				qgemm6x16AVX2(kp, &qa[ir*lda], lda, pan, nil, 0, nil, nil, 0, &s.itile)
				g.merge(ic+ir, min(qMR, mc-ir), jr, w, qs[ir:], &s.itile)
			}
		}
		for i := ic; i < ic+mc; i++ {
			r := g.c[i*n : i*n+n]
			if d.Bias != nil {
				Add(r, d.Bias)
			}
		}
		if g.act != nil {
			g.act(g.c[ic*n : (ic+mc)*n])
		}
	}
}

// merge dequantizes the top-left rows×cols of a raw int32 tile into C at
// row i, column j, as the micro-kernel's modes 1 and 2 do.
func (g *qgemmOp) merge(i, rows, j, cols int, sa []float32, t *[qMR * qNR]int32) {
	n, sw := g.d.Out, g.d.q.scale[j:j+cols]
	for r := 0; r < rows; r++ {
		d := g.c[(i+r)*n+j : (i+r)*n+j+cols]
		for c, acc := range t[r*qNR : r*qNR+cols] {
			y := float32(acc) * sa[r] * sw[c]
			if g.add {
				d[c] += y
			} else {
				d[c] = y
			}
		}
	}
}

// quantizeRow is quantizeRowRef[int16] with the AVX2 kernels where the
// CPU has them; the results are identical.
func quantizeRow(q []int16, x []float32) float32 {
	if !hasAVX2FMA || len(x) < 8 {
		return quantizeRowRef(q, x)
	}
	n8 := len(x) &^ 7
	m := absMaxAVX2(&x[0], n8)
	for _, v := range x[n8:] {
		m = max(m, float32(math.Abs(float64(v))))
	}
	if m == 0 {
		clear(q[:len(x)])
		return 0
	}
	inv := qmax / m
	quantAVX2(&q[0], &x[0], n8, inv)
	for i := n8; i < len(x); i++ {
		r := math.RoundToEven(float64(x[i] * inv))
		q[i] = int16(max(-qmax, min(qmax, r)))
	}
	return m / qmax
}

// forwardInt8 runs the int8 product of d (add: accumulate into dst) and
// act over rows, split across the participants of p.
func (d *Dense) forwardInt8(p *Pool, dst, x []float32, rows int, add bool, act func([]float32)) {
	if d.q.packed == nil || !hasAVX2FMA {
		s := getScratch()
		qdenseRef(d, dst, x, rows, add, act, s)
		putScratch(s)
		return
	}
	if d.In == 0 {
		// Nothing to multiply: the products are zero.
		for i := 0; i < rows; i++ {
			r := dst[i*d.Out : i*d.Out+d.Out]
			if !add {
				clear(r)
			}
			if d.Bias != nil {
				Add(r, d.Bias)
			}
		}
		if act != nil {
			act(dst[:rows*d.Out])
		}
		return
	}
	g := qgemmOp{d: d, a: x, c: dst, add: add, act: act}
	p.qgemm(&g, rows)
}
