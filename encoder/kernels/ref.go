package kernels

import "math"

// Dense is a fully connected layer y = x·Wᵀ + b with W stored as Out×In
// row-major, the PyTorch nn.Linear layout. A Dense is immutable after
// NewDense and safe for concurrent use.
type Dense struct {
	Out, In int
	W       []float32 // Out×In, row-major
	Bias    []float32 // Out, or nil
}

// NewDense returns a Dense over w (out×in) and bias (out, or nil). It keeps
// references to both slices; the caller must not modify them afterwards.
func NewDense(w, bias []float32, out, in int) *Dense {
	if len(w) != out*in {
		panic("kernels: NewDense weight size mismatch")
	}
	if bias != nil && len(bias) != out {
		panic("kernels: NewDense bias size mismatch")
	}
	return &Dense{Out: out, In: in, W: w, Bias: bias}
}

// Forward writes rows×Out results of x (rows×In) · Wᵀ + b into dst.
func (d *Dense) Forward(dst, x []float32, rows int) {
	if len(x) < rows*d.In || len(dst) < rows*d.Out {
		panic("kernels: Dense.Forward buffer too small")
	}
	SgemmNT(rows, d.Out, d.In, 1, x, d.In, d.W, d.In, 0, dst, d.Out)
	if d.Bias != nil {
		AddBiasRows(dst, d.Bias, rows, d.Out)
	}
}

// SgemmNT computes C[m×n] = alpha·A[m×k]·B[n×k]ᵀ + beta·C, with row strides
// lda, ldb and ldc. With beta == 0, C is overwritten and its old contents
// (even NaN) are ignored.
func SgemmNT(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		ar := a[i*lda : i*lda+k]
		cr := c[i*ldc : i*ldc+n]
		for j := 0; j < n; j++ {
			br := b[j*ldb : j*ldb+k]
			var s float32
			for p, v := range ar {
				s += v * br[p]
			}
			if beta == 0 {
				cr[j] = alpha * s
			} else {
				cr[j] = alpha*s + beta*cr[j]
			}
		}
	}
}

// SgemmNN computes C[m×n] = alpha·A[m×k]·B[k×n] + beta·C, with row strides
// lda, ldb and ldc. With beta == 0, C is overwritten.
func SgemmNN(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		cr := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(cr)
		} else if beta != 1 {
			for j := range cr {
				cr[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			av := alpha * a[i*lda+p]
			if av == 0 {
				continue
			}
			br := b[p*ldb : p*ldb+n]
			for j, bv := range br {
				cr[j] += av * bv
			}
		}
	}
}

// AddBiasRows adds bias (length cols) to each of the rows of x (rows×cols).
func AddBiasRows(x, bias []float32, rows, cols int) {
	for i := 0; i < rows; i++ {
		r := x[i*cols : i*cols+cols]
		for j, b := range bias {
			r[j] += b
		}
	}
}

// Add sets dst[i] += x[i] for every i in x.
func Add(dst, x []float32) {
	_ = dst[len(x)-1]
	for i, v := range x {
		dst[i] += v
	}
}

// Softmax replaces x with exp(x-max)/Σexp(x-max). Entries equal to -Inf
// become 0; a row of only -Inf becomes all zeros rather than NaN.
func Softmax(x []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mx), -1) {
		clear(x)
		return
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - mx)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// LayerNorm normalises each row of x (rows×dim) to zero mean and unit
// variance (biased variance, as PyTorch), then scales by gamma and adds beta
// (beta may be nil). dst may alias x.
func LayerNorm(dst, x, gamma, beta []float32, rows, dim int, eps float32) {
	for i := 0; i < rows; i++ {
		r := x[i*dim : i*dim+dim]
		o := dst[i*dim : i*dim+dim]
		var mean float64
		for _, v := range r {
			mean += float64(v)
		}
		mean /= float64(dim)
		var vs float64
		for _, v := range r {
			d := float64(v) - mean
			vs += d * d
		}
		inv := 1 / math.Sqrt(vs/float64(dim)+float64(eps))
		for j, v := range r {
			y := float32((float64(v) - mean) * inv)
			y *= gamma[j]
			if beta != nil {
				y += beta[j]
			}
			o[j] = y
		}
	}
}

// RMSNorm scales each row of x (rows×dim) by 1/sqrt(mean(x²)+eps) and by
// gamma. dst may alias x.
func RMSNorm(dst, x, gamma []float32, rows, dim int, eps float32) {
	for i := 0; i < rows; i++ {
		r := x[i*dim : i*dim+dim]
		o := dst[i*dim : i*dim+dim]
		var ss float64
		for _, v := range r {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(dim)+float64(eps)))
		for j, v := range r {
			o[j] = gamma[j] * (v * inv)
		}
	}
}

// GELU applies the exact (erf) GELU, x·Φ(x), in place.
func GELU(x []float32) {
	for i, v := range x {
		x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

// GELUTanh applies the tanh approximation of GELU (gelu_new,
// gelu_pytorch_tanh) in place.
func GELUTanh(x []float32) {
	const c = 0.7978845608028654 // sqrt(2/pi)
	for i, v := range x {
		f := float64(v)
		x[i] = float32(0.5 * f * (1 + math.Tanh(c*(f+0.044715*f*f*f))))
	}
}

// ReLU applies max(x, 0) in place.
func ReLU(x []float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

// SiLU applies x·sigmoid(x) in place.
func SiLU(x []float32) {
	for i, v := range x {
		x[i] = float32(float64(v) / (1 + math.Exp(-float64(v))))
	}
}
