//go:build !unix

package tokenizer

import "time"

// processCPU is not available here; benchmarks then skip the CPU-time rate.
func processCPU() time.Duration { return 0 }
