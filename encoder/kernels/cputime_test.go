//go:build linux

package kernels

import "syscall"

// processCPU returns the CPU time this process has used, in seconds. The
// benchmarks report GFLOP/s per CPU second beside wall-clock GFLOP/s so that
// tuning on a machine shared with other work is not swamped by its noise.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
