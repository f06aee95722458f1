//go:build !unix

package main

// processCPUSeconds returns 0: the CPU time is not known on this system.
func processCPUSeconds() float64 { return 0 }
