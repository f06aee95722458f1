//go:build !amd64 || purego

package kernels

// hasAVX2FMA is false without assembly: every kernel runs its reference.
var hasAVX2FMA = false

func sgemm6x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int, alpha float32, acc int, pf *float32) {
	panic(noasm)
}

func geluAVX2(x *float32, n int)                                      { panic(noasm) }
func maxAVX2(x *float32, n int) float32                               { panic(noasm) }
func expSumAVX2(x *float32, n int, shift float32) float32             { panic(noasm) }
func scaleAVX2(x *float32, n int, s float32)                          { panic(noasm) }
func sumAVX2(x *float32, n int) float32                               { panic(noasm) }
func sumSqDevAVX2(x *float32, n int, mean float32) float32            { panic(noasm) }
func normAVX2(dst, x, gamma, beta *float32, n int, mean, inv float32) { panic(noasm) }
func addAVX2(dst, x *float32, n int)                                  { panic(noasm) }

const noasm = "kernels: no assembly kernels in this build"

func siluAVX2(x *float32, n int)     { panic(noasm) }
func geluTanhAVX2(x *float32, n int) { panic(noasm) }

func qgemm6x16AVX2(kp int, a *int16, lda int, b *int16, c *float32, ldc int, sa, sw *float32, mode int, raw *[qMR * qNR]int32) {
	panic(noasm)
}
func absMaxAVX2(x *float32, n int) float32               { panic(noasm) }
func quantAVX2(q *int16, x *float32, n int, inv float32) { panic(noasm) }
func roundBF16AVX2(dst, x *float32, n int)               { panic(noasm) }
