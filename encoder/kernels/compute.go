package kernels

import (
	"errors"
	"fmt"
)

// Compute is the number format of a model's dense layers (projections and
// feed-forward blocks). Attention products, softmax, norms and activations
// run in float32 in every mode.
type Compute int

// The compute modes.
const (
	// ComputeFloat32 keeps every weight and product in float32: the mode
	// that meets the float32 fidelity bar.
	ComputeFloat32 Compute = iota
	// ComputeInt8 is dynamic int8: weights quantized once at load
	// (symmetric, per output channel), activations per row at run time
	// (symmetric), int32 sums, float32 scales and bias. See NewDenseInt8.
	ComputeInt8
	// ComputeBF16 computes the dense layers as bf16 dot products with
	// float32 accumulation (the semantics of AVX512_BF16's VDPBF16PS):
	// weights rounded to bf16 once at load, input activations per call,
	// float32 sums and bias. This build has no AVX512_BF16 kernels (no
	// such CPU to test them on): it emulates the accuracy exactly with the
	// float32 GEMM on bf16-rounded values, so it is no faster and uses no
	// less memory than ComputeFloat32. See NewDenseBF16.
	ComputeBF16
)

// ErrCompute reports a compute mode that is unknown or not supported here.
var ErrCompute = errors.New("kernels: unsupported compute mode")

// String returns the mode's name as ParseCompute accepts it.
func (c Compute) String() string {
	switch c {
	case ComputeFloat32:
		return "float32"
	case ComputeInt8:
		return "int8"
	case ComputeBF16:
		return "bf16"
	}
	return fmt.Sprintf("Compute(%d)", int(c))
}

// ParseCompute returns the mode called s ("float32", "fp32", "int8",
// "bf16", "bfloat16"). bf16 is accepted on every CPU, but see ComputeBF16:
// without AVX512_BF16 kernels it emulates bf16 accuracy at float32 speed.
func ParseCompute(s string) (Compute, error) {
	switch s {
	case "", "float32", "fp32", "f32":
		return ComputeFloat32, nil
	case "int8":
		return ComputeInt8, nil
	case "bf16", "bfloat16":
		return ComputeBF16, nil
	}
	return 0, fmt.Errorf("%w: %q (supported: float32, int8, bf16)", ErrCompute, s)
}
