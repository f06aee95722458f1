package kernels

import (
	"errors"
	"fmt"

	"golang.org/x/sys/cpu"
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
	}
	return fmt.Sprintf("Compute(%d)", int(c))
}

// ParseCompute returns the mode called s ("float32", "fp32", "int8"). bf16
// is refused with an error that says why: without AVX512_BF16 there are no
// bf16 dot products on this CPU, so bf16 could only shrink the weights
// while converting them back to float32 in every GEMM, slower than float32.
func ParseCompute(s string) (Compute, error) {
	switch s {
	case "", "float32", "fp32", "f32":
		return ComputeFloat32, nil
	case "int8":
		return ComputeInt8, nil
	case "bf16", "bfloat16":
		return 0, fmt.Errorf("%w: %q: bf16 compute needs AVX512_BF16 dot products (VDPBF16PS), which this build does not implement (this CPU has AVX512_BF16: %v); bf16 weights widened to float32 in every GEMM would be slower than float32 with no accuracy gain (use float32 or int8)", ErrCompute, s, cpu.X86.HasAVX512BF16)
	}
	return 0, fmt.Errorf("%w: %q (supported: float32, int8)", ErrCompute, s)
}
