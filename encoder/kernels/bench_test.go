package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The encoder's GEMM shapes for minilm-l6 (hidden 384, FFN 1536) on 4096
// tokens, written m×k×n as in shared/peers/gemm: QKV/attention output, FFN
// up, FFN down.
var denseShapes = []struct{ m, k, n int }{
	{4096, 384, 384},
	{4096, 384, 1536},
	{4096, 1536, 384},
	{512, 384, 384},
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// reportGFLOPS reports wall-clock GFLOP/s and, where the CPU time is known,
// GFLOP/s per CPU-second times threads (what the kernel reaches on threads
// cores it had to itself). cpu0 is processCPU() at the start of the loop.
func reportGFLOPS(b *testing.B, flops float64, threads int, cpu0 float64) {
	total := flops * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := processCPU() - cpu0; cpu > 0 && cpu0 > 0 {
		b.ReportMetric(total/cpu*float64(threads)/1e9, "cpuGFLOP/s")
	}
}

func BenchmarkDense(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sh := range denseShapes {
		x := randSlice(r, sh.m*sh.k)
		w := randSlice(r, sh.n*sh.k)
		bias := randSlice(r, sh.n)
		dst := make([]float32, sh.m*sh.n)
		for _, c := range []Compute{ComputeFloat32, ComputeInt8} {
			d := NewDenseCompute(c, w, bias, sh.n, sh.k)
			for _, threads := range []int{1, 2} {
				name := fmt.Sprintf("%dx%dx%d/threads=%d", sh.m, sh.k, sh.n, threads)
				if c != ComputeFloat32 {
					// The float32 names stay as they were, for benchstat.
					name = fmt.Sprintf("%dx%dx%d/%v/threads=%d", sh.m, sh.k, sh.n, c, threads)
				}
				benchDense(b, name, d, dst, x, sh.m, threads)
			}
		}
	}
}

// benchDense runs d over m rows of x with a Pool of threads participants;
// GFLOP/s counts 2·m·n·k operations whatever the number format.
func benchDense(b *testing.B, name string, d *Dense, dst, x []float32, m, threads int) {
	{
		{
			b.Run(name, func(b *testing.B) {
				p := NewPool(threads)
				defer p.Close()
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					d.ForwardParallel(p, dst, x, m, nil)
				}
				reportGFLOPS(b, 2*float64(m)*float64(d.Out)*float64(d.In), threads, cpu0)
			})
		}
	}
}

// BenchmarkAttention runs the per-head products of attention for one
// sequence of L tokens and head size 32 inside a fused QKV buffer (stride
// 3·384): scores = Q·Kᵀ (SgemmNT, L×L×32) and context = P·V (SgemmNN,
// L×32×L).
func BenchmarkAttention(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	const hd, ld = 32, 3 * 384
	for _, L := range []int{8, 20, 64, 128, 256} {
		qkv := randSlice(r, L*ld)
		scores := make([]float32, L*L)
		ctx := make([]float32, L*384)
		b.Run(fmt.Sprintf("QK/L=%d", L), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				SgemmNT(L, L, hd, 0.17677669, qkv, ld, qkv[384:], ld, 0, scores, L)
			}
			reportGFLOPS(b, 2*float64(L*L*hd), 1, cpu0)
		})
		b.Run(fmt.Sprintf("PV/L=%d", L), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				SgemmNN(L, hd, L, 1, scores, L, qkv[768:], ld, 0, ctx, 384)
			}
			reportGFLOPS(b, 2*float64(L*L*hd), 1, cpu0)
		})
	}
}

// BenchmarkMicroKernel runs the 6×16 micro-kernel on L1-resident operands:
// the ceiling the packed GEMM can approach.
func BenchmarkMicroKernel(b *testing.B) {
	if !hasAVX2FMA {
		b.Skip("no SIMD kernels on this machine")
	}
	r := rand.New(rand.NewPCG(3, 3))
	const k = 256
	a := randSlice(r, gemmMR*k)
	bp := randSlice(r, gemmNR*k)
	c := make([]float32, gemmMR*gemmNR)
	cpu0 := processCPU()
	for b.Loop() {
		sgemm6x16AVX2(k, &a[0], k, &bp[0], &c[0], gemmNR, 1, 1, nil)
	}
	reportGFLOPS(b, 2*gemmMR*gemmNR*k, 1, cpu0)
}

// BenchmarkQMicroKernel runs the int8 6×16 micro-kernel (int16 pairs,
// VPMADDWD) on L1-resident operands, k = 256 like BenchmarkMicroKernel;
// GFLOP/s counts 2 operations per multiply-add, as there.
func BenchmarkQMicroKernel(b *testing.B) {
	if !hasAVX2FMA {
		b.Skip("no SIMD kernels on this machine")
	}
	const kp = 128
	a := make([]int16, qMR*2*kp)
	bp := make([]int16, qNR*2*kp)
	for i := range a {
		a[i] = int16(i%255 - 127)
	}
	for i := range bp {
		bp[i] = int16(i%253 - 126)
	}
	sa := make([]float32, qMR)
	sw := make([]float32, qNR)
	c := make([]float32, qMR*qNR)
	cpu0 := processCPU()
	for b.Loop() {
		qgemm6x16AVX2(kp, &a[0], 2*kp, &bp[0], &c[0], qNR, &sa[0], &sw[0], 2, nil)
	}
	reportGFLOPS(b, 2*qMR*qNR*2*kp, 1, cpu0)
}

// reportElems reports throughput in elements (floats processed) per second.
func reportElems(b *testing.B, elems float64) {
	b.ReportMetric(elems*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// BenchmarkElementwise runs the row and elementwise kernels on the
// encoder's shapes (4096 tokens, hidden 384, FFN 1536; attention rows of 20
// and 128 scores), SIMD path and reference.
func BenchmarkElementwise(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	const tokens, hidden, inter = 4096, 384, 1536
	x := randSlice(r, tokens*inter)
	orig := append([]float32(nil), x...)
	res := randSlice(r, tokens*hidden)
	gamma := randSlice(r, hidden)
	beta := randSlice(r, hidden)
	saved := hasAVX2FMA
	defer func() { hasAVX2FMA = saved }()
	for _, fast := range []bool{true, false} {
		if fast && !saved {
			continue
		}
		hasAVX2FMA = fast
		name := "simd"
		if !fast {
			name = "ref"
		}
		run := func(kernel string, elems int, f func()) {
			b.Run(kernel+"/"+name, func(b *testing.B) {
				hasAVX2FMA = fast
				b.ReportAllocs()
				for b.Loop() {
					f()
				}
				reportElems(b, float64(elems))
			})
		}
		h := x[:tokens*hidden]
		run("GELU/4096x1536", tokens*inter, func() { copy(x, orig); GELU(x) })
		run("LayerNorm/4096x384", tokens*hidden, func() { LayerNorm(res, h, gamma, beta, tokens, hidden, 1e-12) })
		run("Add/4096x384", tokens*hidden, func() { Add(res, h) })
		for _, n := range []int{20, 128} {
			rows := tokens * hidden / n / 8
			run(fmt.Sprintf("Softmax/rows=%d", n), rows*n, func() {
				copy(x[:rows*n], orig[:rows*n])
				for i := 0; i < rows; i++ {
					Softmax(x[i*n : i*n+n])
				}
			})
		}
	}
}
