//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// hasAVX2FMA selects the AVX2+FMA kernels. It is read once at start-up; the
// tests flip it to exercise both paths on the same machine.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX

// sgemm6x16AVX2 computes the 6×16 tile C = alpha·A·B (acc == 0) or
// C += alpha·A·B (acc != 0), where A is six rows of k floats with row stride
// lda and B is a packed panel of k rows of 16 floats. It is the micro-kernel
// of the packed GEMM in gemm.go; see gemmOp.rows for its contract. A non-nil
// pf is prefetched towards L2 (k×64 bytes from it): the next B panel.
//
//go:noescape
func sgemm6x16AVX2(k int, a *float32, lda int, b *float32, c *float32, ldc int, alpha float32, acc int, pf *float32)

// The elementwise and row kernels of simd_amd64.s. Each works on n
// consecutive floats (any n >= 0, the last n%8 with masked loads and
// stores); the wrappers in kernels.go document their semantics.

//go:noescape
func geluAVX2(x *float32, n int)

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func expSumAVX2(x *float32, n int, shift float32) float32

//go:noescape
func scaleAVX2(x *float32, n int, s float32)

//go:noescape
func sumAVX2(x *float32, n int) float32

//go:noescape
func sumSqDevAVX2(x *float32, n int, mean float32) float32

//go:noescape
func normAVX2(dst, x, gamma, beta *float32, n int, mean, inv float32)

//go:noescape
func addAVX2(dst, x *float32, n int)

//go:noescape
func siluAVX2(x *float32, n int)

//go:noescape
func geluTanhAVX2(x *float32, n int)

// qgemm6x16AVX2 computes the 6×16 int32 tile acc = A·B of the int8 Dense:
// A is six rows of kp int16 pairs (row stride lda int16s), B a packed
// panel of kp pairs of 16 columns (qweights.packed). mode 0 stores acc to
// raw; mode 1 stores (float32(acc)·sa[r])·sw[j] to the C rows (stride
// ldc); mode 2 adds that to them. See qgemmOp.rows.
//
//go:noescape
func qgemm6x16AVX2(kp int, a *int16, lda int, b *int16, c *float32, ldc int, sa, sw *float32, mode int, raw *[qMR * qNR]int32)

// absMaxAVX2 returns max|x[i]| over n floats, n a multiple of 8.
//
//go:noescape
func absMaxAVX2(x *float32, n int) float32

// quantAVX2 sets q[i] = roundEven(x[i]·inv) for n floats, n a multiple of
// 8 (the caller guarantees |x[i]·inv| < 32767.5).
//
//go:noescape
func quantAVX2(q *int16, x *float32, n int, inv float32)

// roundBF16AVX2 is RoundBF16To on n floats, n a multiple of 8
// (bf16_amd64.s); dst may alias x.
//
//go:noescape
func roundBF16AVX2(dst, x *float32, n int)
