//go:build !unix

package encoder_test

// processCPU is unavailable here; benchmarks then omit the CPU-time rate.
func processCPU() float64 { return 0 }
