//go:build !amd64 || purego

package kernels

// hasAVX2FMA is false without assembly: every kernel runs its reference.
var hasAVX2FMA = false

func sgemm6x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int, alpha float32, acc int) {
	panic("kernels: no assembly kernels in this build")
}
