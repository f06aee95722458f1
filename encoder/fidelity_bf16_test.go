package encoder_test

import (
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
)

// bf16MinCosine is the accuracy bar of ComputeBF16 on every reference row
// (issue: "must keep cosine ≥ 0.999 to the refs on every row").
const bf16MinCosine = 0.999

// bf16Refused are the shared models whose architectures refuse bf16
// because they miss bf16MinCosine (see arch.BuildCompute).
var bf16Refused = map[string]bool{"tiny-qwen3-moe": true}

// TestFidelityBF16 embeds the reference rows of every shared model with
// ComputeBF16 (bf16 weights and linear-layer inputs, float32 sums) and
// checks each row's cosine to the float64 references, under the same
// -short sampling as TestFidelity. It logs the worst cosine and max abs
// diff of each model.
func TestFidelityBF16(t *testing.T) {
	testFidelityCompute(t, encoder.ComputeBF16, bf16MinCosine, bf16Refused)
}
