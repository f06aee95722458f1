package kernels

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The portable GEMM: on builds without the assembly kernels (non-amd64, the
// purego tag) and on CPUs without AVX2+FMA, SgemmNT, SgemmNN and Dense run
// on gonum's pure-Go BLAS (gonum.org/v1/gonum/blas/gonum), whose inner
// loops are its unrolled float32 dot and axpy kernels. The product is cut
// here into blocks of portableMB rows × portableNB columns, small enough
// that gonum computes each on the calling goroutine (it starts goroutines,
// and allocates, from four 64×64 tiles up); Dense spreads the row blocks
// over its Pool like the SIMD GEMM, so the portable path is parallel and
// still allocation-free. The loops of ref.go stay the documented ground
// truth: the differential tests compare these functions with them.

const (
	portableMB = 64  // rows per gonum call: one gonum block
	portableNB = 192 // columns per gonum call: three gonum blocks, below its parallel threshold
)

var portableBLAS gonum.Implementation

// portableRows computes rows i0…i1-1 of g on gonum, block by block, then
// its bias and activation.
func (g *gemmOp) portableRows(i0, i1 int) {
	tB := blas.NoTrans
	if g.bT {
		tB = blas.Trans
	}
	for ic := i0; ic < i1; ic += portableMB {
		mc := min(portableMB, i1-ic)
		for jc := 0; jc < g.n; jc += portableNB {
			nc := min(portableNB, g.n-jc)
			b := g.b[jc:]
			if g.bT {
				b = g.b[jc*g.ldb:]
			}
			portableBLAS.Sgemm(blas.NoTrans, tB, mc, nc, g.k, g.alpha, g.a[ic*g.lda:], g.lda, b, g.ldb, g.beta, g.c[ic*g.ldc+jc:], g.ldc)
		}
		g.epilogue(ic, mc)
	}
}
