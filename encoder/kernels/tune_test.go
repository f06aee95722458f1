//go:build linux

package kernels

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
)

// threadCPU returns the CPU time of the calling OS thread in seconds.
func threadCPU() float64 {
	var ru syscall.Rusage
	const rusageThread = 1
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// TestTuneBlocks compares GEMM block sizes on the encoder's shapes by
// thread CPU time, interleaving the candidates so that the noise of a
// shared machine hits all alike. It only runs with EMBEDPIPE_TUNE=1; it
// asserts nothing and is a measuring tool, not a test.
func TestTuneBlocks(t *testing.T) {
	if os.Getenv("EMBEDPIPE_TUNE") != "1" || !hasAVX2FMA {
		t.Skip("set EMBEDPIPE_TUNE=1 to run the block-size tuning")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	saveKC, saveMC, savePF := gemmKC, gemmMC, gemmPrefetchB
	defer func() { gemmKC, gemmMC, gemmPrefetchB = saveKC, saveMC, savePF }()
	type cfg struct {
		kc, mc int
		pf     bool
	}
	cfgs := []cfg{{384, 240, true}, {384, 240, false}}
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range []int{160, 500, 1024} {
		for _, sh := range [][2]int{{384, 384}, {384, 1536}, {1536, 384}} {
			k, n := sh[0], sh[1]
			x := randSlice(r, m*k)
			w := randSlice(r, n*k)
			dst := make([]float32, m*n)
			ds := make([]*Dense, len(cfgs))
			for i, c := range cfgs {
				gemmKC, gemmMC = c.kc, c.mc
				ds[i] = NewDense(w, nil, n, k)
			}
			res := make([][]float64, len(cfgs))
			for round := 0; round < 7; round++ {
				for i, c := range cfgs {
					gemmKC, gemmMC, gemmPrefetchB = c.kc, c.mc, c.pf
					ds[i].Forward(dst, x, m)
					t0 := threadCPU()
					calls := max(3, 3*1024/m)
					for j := 0; j < calls; j++ {
						ds[i].Forward(dst, x, m)
					}
					res[i] = append(res[i], 2*float64(m*n*k)*float64(calls)/(threadCPU()-t0)/1e9)
				}
			}
			for i, c := range cfgs {
				slices.Sort(res[i])
				fmt.Printf("%dx%dx%d kc=%d mc=%d pf=%v: median %.1f max %.1f cpuGFLOP/s\n", m, k, n, c.kc, c.mc, c.pf, res[i][len(res[i])/2], res[i][len(res[i])-1])
			}
		}
	}
}

// TestTuneKernelOperands measures the micro-kernel by thread CPU time with
// A in L1 and with A streaming from L2 (240 rows in place, as the packed
// GEMM reads it), B in L1 in both. EMBEDPIPE_TUNE=1 only; asserts nothing.
func TestTuneKernelOperands(t *testing.T) {
	if os.Getenv("EMBEDPIPE_TUNE") != "1" || !hasAVX2FMA {
		t.Skip("set EMBEDPIPE_TUNE=1 to run the kernel operand tuning")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := rand.New(rand.NewPCG(1, 2))
	const k, rows = 384, 240
	a := randSlice(r, rows*k)
	b := randSlice(r, gemmNR*k)
	c := make([]float32, rows*gemmNR)
	for _, mode := range []string{"A in L1", "A from L2", "A in L1", "A from L2"} {
		var res []float64
		for round := 0; round < 9; round++ {
			t0 := threadCPU()
			const reps = 2000
			for j := 0; j < reps; j++ {
				for ir := 0; ir < rows; ir += gemmMR {
					ao := ir * k
					if mode == "A in L1" {
						ao = 0
					}
					sgemm6x16AVX2(k, &a[ao], k, &b[0], &c[ir*gemmNR], gemmNR, 1, 0, nil)
				}
			}
			res = append(res, 2*float64(rows*gemmNR*k)*reps/(threadCPU()-t0)/1e9)
		}
		slices.Sort(res)
		fmt.Printf("%s: median %.1f max %.1f cpuGFLOP/s\n", mode, res[len(res)/2], res[len(res)-1])
	}
}

// TestTuneColdWeights runs Dense on rows×384×1536 with 16 different weight
// matrices in turn (38 MiB packed, more than L3), as the encoder's layers
// do, with and without the next-panel prefetch. EMBEDPIPE_TUNE=1 only.
func TestTuneColdWeights(t *testing.T) {
	if os.Getenv("EMBEDPIPE_TUNE") != "1" || !hasAVX2FMA {
		t.Skip("set EMBEDPIPE_TUNE=1 to run the cold-weights tuning")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	savePF := gemmPrefetchB
	defer func() { gemmPrefetchB = savePF }()
	r := rand.New(rand.NewPCG(1, 2))
	const k, n, layers = 384, 1536, 16
	ds := make([]*Dense, layers)
	for i := range ds {
		ds[i] = NewDense(randSlice(r, n*k), nil, n, k)
	}
	for _, m := range []int{64, 128, 368, 1024} {
		x := randSlice(r, m*k)
		dst := make([]float32, m*n)
		res := map[bool][]float64{}
		for round := 0; round < 5; round++ {
			for _, pf := range []bool{true, false} {
				gemmPrefetchB = pf
				t0 := threadCPU()
				for _, d := range ds {
					d.Forward(dst, x, m)
				}
				res[pf] = append(res[pf], 2*float64(m*n*k)*layers/(threadCPU()-t0)/1e9)
			}
		}
		for _, pf := range []bool{true, false} {
			slices.Sort(res[pf])
			fmt.Printf("cold %dx%dx%d pf=%v: median %.1f cpuGFLOP/s\n", m, k, n, pf, res[pf][len(res[pf])/2])
		}
	}
}
