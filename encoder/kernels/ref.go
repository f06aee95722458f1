package kernels

import "math"

// This file holds the pure-Go reference kernels. They define the exact
// semantics of the exported kernels, which dispatch to them under the purego
// build tag or on CPUs without the SIMD extensions the fast paths need, and
// the differential tests compare every fast path against them.

// sgemmNTRef computes C[m×n] = alpha·A[m×k]·B[n×k]ᵀ + beta·C, with row strides
// lda, ldb and ldc. With beta == 0, C is overwritten and its old contents
// (even NaN) are ignored.
func sgemmNTRef(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
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

// sgemmNNRef computes C[m×n] = alpha·A[m×k]·B[k×n] + beta·C, with row strides
// lda, ldb and ldc. With beta == 0, C is overwritten.
func sgemmNNRef(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
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

// addBiasRowsRef adds bias (length cols) to each of the rows of x (rows×cols).
func addBiasRowsRef(x, bias []float32, rows, cols int) {
	for i := 0; i < rows; i++ {
		r := x[i*cols : i*cols+cols]
		for j, b := range bias {
			r[j] += b
		}
	}
}

// addRef sets dst[i] += x[i] for every i in x.
func addRef(dst, x []float32) {
	_ = dst[len(x)-1]
	for i, v := range x {
		dst[i] += v
	}
}

// softmaxRef replaces x with exp(x-max)/Σexp(x-max). Entries equal to -Inf
// become 0; a row of only -Inf becomes all zeros rather than NaN.
func softmaxRef(x []float32) {
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

// layerNormRef normalises each row of x (rows×dim) to zero mean and unit
// variance (biased variance, as PyTorch), then scales by gamma and adds beta
// (beta may be nil). dst may alias x.
func layerNormRef(dst, x, gamma, beta []float32, rows, dim int, eps float32) {
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

// rmsNormRef scales each row of x (rows×dim) by 1/sqrt(mean(x²)+eps) and by
// gamma. dst may alias x.
func rmsNormRef(dst, x, gamma []float32, rows, dim int, eps float32) {
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

// geluRef applies the exact (erf) GELU, x·Φ(x), in place.
func geluRef(x []float32) {
	for i, v := range x {
		x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

// geluTanhRef applies the tanh approximation of GELU (gelu_new,
// gelu_pytorch_tanh) in place.
func geluTanhRef(x []float32) {
	const c = 0.7978845608028654 // sqrt(2/pi)
	for i, v := range x {
		f := float64(v)
		x[i] = float32(0.5 * f * (1 + math.Tanh(c*(f+0.044715*f*f*f))))
	}
}

// reluRef applies max(x, 0) in place.
func reluRef(x []float32) {
	for i, v := range x {
		if v < 0 {
			x[i] = 0
		}
	}
}

// siluRef applies x·sigmoid(x) in place.
func siluRef(x []float32) {
	for i, v := range x {
		x[i] = float32(float64(v) / (1 + math.Exp(-float64(v))))
	}
}
