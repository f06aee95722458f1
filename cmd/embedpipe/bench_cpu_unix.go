//go:build unix

package main

import "syscall"

// processCPUSeconds returns the user+system CPU time of this process, for
// bench's tokens per CPU second (the figure that holds on a shared
// machine), or 0 when it is not known.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
