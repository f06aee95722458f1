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
	saveKC, saveMC := gemmKC, gemmMC
	defer func() { gemmKC, gemmMC = saveKC, saveMC }()
	type cfg struct {
		kc, mc int
	}
	cfgs := []cfg{{384, 240}, {384, 144}, {384, 336}, {256, 240}}
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
					gemmKC, gemmMC = c.kc, c.mc
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
				fmt.Printf("%dx%dx%d kc=%d mc=%d: median %.1f max %.1f cpuGFLOP/s\n", m, k, n, c.kc, c.mc, res[i][len(res[i])/2], res[i][len(res[i])-1])
			}
		}
	}
}
