package kernels

import "math"

// Dense is a fully connected layer y = x·Wᵀ + b with W stored as Out×In
// row-major, the PyTorch nn.Linear layout. A Dense is immutable after
// NewDense and safe for concurrent use.
type Dense struct {
	Out, In int
	W       []float32 // Out×In, row-major
	Bias    []float32 // Out, or nil

	// packed is W in the panel layout of the packed GEMM, built once by
	// NewDense when the fast kernels are in use (nil otherwise).
	packed []float32
	// q is the int8 form of W of a NewDenseInt8 layer (nil otherwise),
	// which then computes with it instead of W.
	q *qweights
	// bf16 marks a NewDenseBF16 layer: W holds bf16 values and each input
	// is rounded to bf16 before the float32 GEMM.
	bf16 bool
}

// NewDense returns a Dense over w (out×in) and bias (out, or nil). It keeps
// references to both slices; the caller must not modify them afterwards.
// When the SIMD kernels are in use it also keeps a pre-packed copy of w
// (out×in floats, rounded up to 16 outputs).
func NewDense(w, bias []float32, out, in int) *Dense {
	checkDenseArgs("NewDense", w, bias, out, in)
	d := &Dense{Out: out, In: in, W: w, Bias: bias}
	if hasAVX2FMA && out > 0 && in > 0 {
		d.packed = make([]float32, packedLen(out, in))
		packBT(d.packed, w, in, out, in)
	}
	return d
}

// checkDenseArgs panics, naming the constructor ctor, when w is not out×in
// or bias is neither nil nor of length out: a programmer error.
func checkDenseArgs(ctor string, w, bias []float32, out, in int) {
	if len(w) != out*in {
		panic("kernels: " + ctor + " weight size mismatch")
	}
	if bias != nil && len(bias) != out {
		panic("kernels: " + ctor + " bias size mismatch")
	}
}

// Forward writes rows×Out results of x (rows×In) · Wᵀ + b into dst, on the
// calling goroutine.
func (d *Dense) Forward(dst, x []float32, rows int) {
	d.ForwardParallel(nil, dst, x, rows, nil)
}

// ForwardParallel is Forward split by rows across the participants of p
// (a nil p runs on the calling goroutine), followed by act (nil for none)
// applied to the rows×Out results. act must be elementwise, like GELU or
// ReLU: it is applied block by block, by the goroutine that computed the
// block, while the block is still in cache, so the result equals
// Forward followed by act(dst[:rows*Out]).
func (d *Dense) ForwardParallel(p *Pool, dst, x []float32, rows int, act func([]float32)) {
	d.forward(p, dst, x, rows, false, act)
}

// ForwardAdd adds rows×Out results of x (rows×In) · Wᵀ + b to dst, split
// across the participants of p like ForwardParallel (nil p: the calling
// goroutine). It is the residual connection of a transformer block fused
// into the projection: no temporary and no separate Add pass.
func (d *Dense) ForwardAdd(p *Pool, dst, x []float32, rows int) {
	d.forward(p, dst, x, rows, true, nil)
}

// forward is ForwardParallel (add false: dst is overwritten) and ForwardAdd
// (add true: the results are added to dst; act must be nil).
func (d *Dense) forward(p *Pool, dst, x []float32, rows int, add bool, act func([]float32)) {
	if rows < 0 || len(x) < rows*d.In || len(dst) < rows*d.Out {
		panic("kernels: Dense.Forward buffer too small")
	}
	if rows == 0 || d.Out == 0 {
		return
	}
	if d.q != nil {
		d.forwardInt8(p, dst, x, rows, add, act)
		return
	}
	if d.bf16 {
		s := getScratch()
		x = s.bf16Input(x, rows*d.In)
		defer putScratch(s)
	}
	var beta float32
	if add {
		beta = 1
	}
	if d.packed == nil || !hasAVX2FMA {
		if d.In == 0 {
			scaleC(rows, d.Out, beta, dst, d.Out)
			g := gemmOp{n: d.Out, c: dst, ldc: d.Out, bias: d.Bias, act: act}
			g.epilogue(0, rows)
			return
		}
		g := gemmOp{portable: true, bT: true, n: d.Out, k: d.In, alpha: 1, a: x, lda: d.In, b: d.W, ldb: d.In, beta: beta, c: dst, ldc: d.Out, bias: d.Bias, act: act}
		p.gemm(&g, rows)
		return
	}
	g := gemmOp{n: d.Out, k: d.In, alpha: 1, a: x, lda: d.In, bp: d.packed, beta: beta, c: dst, ldc: d.Out, bias: d.Bias, act: act}
	p.gemm(&g, rows)
}

// SgemmNT computes C[m×n] = alpha·A[m×k]·B[n×k]ᵀ + beta·C, with row strides
// lda, ldb and ldc. With beta == 0, C is overwritten and its old contents
// (even NaN) are ignored.
func SgemmNT(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(true, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmNN computes C[m×n] = alpha·A[m×k]·B[k×n] + beta·C, with row strides
// lda, ldb and ldc. With beta == 0, C is overwritten.
func SgemmNN(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemm(false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemm is SgemmNT (bT) or SgemmNN on the calling goroutine: on gonum
// without AVX2 and FMA, else on B packed for the SIMD micro-kernel.
func sgemm(bT bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	brows, bcols := k, n
	if bT {
		brows, bcols = n, k
	}
	checkGemm(m, n, k, a, lda, b, ldb, brows, bcols, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if !hasAVX2FMA {
		g := gemmOp{portable: true, bT: bT, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc}
		g.portableRows(0, m)
		return
	}
	s := getScratch()
	bp := s.packBuf(packedLen(n, k))
	if bT {
		packBT(bp, b, ldb, n, k)
	} else {
		packBN(bp, b, ldb, n, k)
	}
	g := gemmOp{n: n, k: k, alpha: alpha, a: a, lda: lda, bp: bp, beta: beta, c: c, ldc: ldc}
	g.rows(0, m, s)
	putScratch(s)
}

// AddBiasRows adds bias (length cols) to each of the rows of x (rows×cols).
func AddBiasRows(x, bias []float32, rows, cols int) {
	if !hasAVX2FMA || cols == 0 {
		addBiasRowsRef(x, bias, rows, cols)
		return
	}
	_ = x[rows*cols-1]
	_ = bias[cols-1]
	for i := 0; i < rows; i++ {
		addAVX2(&x[i*cols], &bias[0], cols)
	}
}

// Add sets dst[i] += x[i] for every i in x.
func Add(dst, x []float32) {
	if !hasAVX2FMA || len(x) == 0 {
		addRef(dst, x)
		return
	}
	_ = dst[len(x)-1]
	addAVX2(&dst[0], &x[0], len(x))
}

// Softmax replaces x with exp(x-max)/Σexp(x-max). Entries equal to -Inf
// become 0; a row of only -Inf becomes all zeros rather than NaN.
//
// The SIMD path sums in float32 and computes exp with a polynomial of about
// one ulp; it agrees with the reference to a few parts in 10⁷.
func Softmax(x []float32) {
	if !hasAVX2FMA || len(x) == 0 {
		softmaxRef(x)
		return
	}
	mx := maxAVX2(&x[0], len(x))
	if math.IsInf(float64(mx), -1) {
		clear(x)
		return
	}
	s := expSumAVX2(&x[0], len(x), mx)
	scaleAVX2(&x[0], len(x), 1/s)
}

// LayerNorm normalises each row of x (rows×dim) to zero mean and unit
// variance (biased variance, as PyTorch), then scales by gamma and adds beta
// (beta may be nil). dst may alias x.
//
// The SIMD path accumulates in float32 (eight lanes, then a tree), two
// passes: mean, then the sum of squared deviations.
func LayerNorm(dst, x, gamma, beta []float32, rows, dim int, eps float32) {
	if !hasAVX2FMA || rows == 0 || dim == 0 {
		layerNormRef(dst, x, gamma, beta, rows, dim, eps)
		return
	}
	_ = x[rows*dim-1]
	_ = dst[rows*dim-1]
	_ = gamma[dim-1]
	var bp *float32
	if beta != nil {
		bp = &beta[0]
	}
	for i := 0; i < rows; i++ {
		r := &x[i*dim]
		mean := sumAVX2(r, dim) / float32(dim)
		vs := sumSqDevAVX2(r, dim, mean) / float32(dim)
		inv := float32(1 / math.Sqrt(float64(vs)+float64(eps)))
		normAVX2(&dst[i*dim], r, &gamma[0], bp, dim, mean, inv)
	}
}

// RMSNorm scales each row of x (rows×dim) by 1/sqrt(mean(x²)+eps) and by
// gamma. dst may alias x.
func RMSNorm(dst, x, gamma []float32, rows, dim int, eps float32) {
	if !hasAVX2FMA || rows == 0 || dim == 0 {
		rmsNormRef(dst, x, gamma, rows, dim, eps)
		return
	}
	_ = x[rows*dim-1]
	_ = dst[rows*dim-1]
	_ = gamma[dim-1]
	for i := 0; i < rows; i++ {
		r := &x[i*dim]
		ss := sumSqDevAVX2(r, dim, 0) / float32(dim)
		inv := float32(1 / math.Sqrt(float64(ss)+float64(eps)))
		normAVX2(&dst[i*dim], r, &gamma[0], nil, dim, 0, inv)
	}
}

// GELU applies the exact (erf) GELU, x·Φ(x), in place.
//
// The SIMD path evaluates erf in float32 with polynomials (erfc through exp
// of a polynomial for |x|/√2 > 0.93, so the negative tail keeps its relative
// accuracy); it is within about 2e-7·|x| of the float64 reference.
func GELU(x []float32) {
	if !hasAVX2FMA || len(x) == 0 {
		geluRef(x)
		return
	}
	geluAVX2(&x[0], len(x))
}

// GELUTanh applies the tanh approximation of GELU (gelu_new,
// gelu_pytorch_tanh) in place.
//
// The SIMD path uses 0.5·x·(1 + tanh(u)) = x / (1 + exp(−2u)) with the
// vector exp; it is within a few parts in 10⁷ of the float64 reference.
func GELUTanh(x []float32) {
	if !hasAVX2FMA || len(x) == 0 {
		geluTanhRef(x)
		return
	}
	geluTanhAVX2(&x[0], len(x))
}

// ReLU applies max(x, 0) in place.
func ReLU(x []float32) {
	reluRef(x)
}

// SiLU applies x·sigmoid(x) in place.
//
// The SIMD path computes x / (1 + exp(−x)) with the vector exp; it is within
// a few parts in 10⁷ of the float64 reference.
func SiLU(x []float32) {
	if !hasAVX2FMA || len(x) == 0 {
		siluRef(x)
		return
	}
	siluAVX2(&x[0], len(x))
}
