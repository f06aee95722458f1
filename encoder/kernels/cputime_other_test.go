//go:build !linux

package kernels

func processCPU() float64 { return 0 }
