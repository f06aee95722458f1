package encoder

import "github.com/embedpipe/embedpipe/encoder/kernels"

// Compute is the number format of a model's linear layers; see WithCompute.
type Compute = kernels.Compute

// The compute modes of WithCompute.
const (
	// ComputeFloat32, the default, meets the float32 fidelity bar
	// (cosine ≥ 0.999999 to the references).
	ComputeFloat32 = kernels.ComputeFloat32
	// ComputeInt8 is dynamic int8 for the projections and feed-forward
	// layers: int8 weights per output channel, int8 activations per token,
	// int32 sums; attention, softmax, norms, activations and pooling stay
	// float32. It trades accuracy (cosine about 0.9995 to the references,
	// not the float32 bar) for speed.
	ComputeInt8 = kernels.ComputeInt8
	// ComputeBF16 computes the projections and feed-forward layers as bf16
	// dot products with float32 sums: weights rounded to bf16 at load,
	// their input activations rounded to bf16 per call; the rest stays
	// float32. This build has no AVX512_BF16 kernels, so on every CPU it is
	// an accuracy emulation (cosine ≥ 0.999 to the references, not the
	// float32 bar) at float32 speed and memory: it gives no speed gain and
	// exists to reproduce bf16 inference numerically. Architectures whose
	// bf16 accuracy misses the bar refuse it (arch.BuildCompute).
	ComputeBF16 = kernels.ComputeBF16
)

// ErrCompute reports an unknown compute mode or one this build or CPU does
// not support.
var ErrCompute = kernels.ErrCompute

// ParseCompute returns the mode called s: "float32" (also "" and "fp32"),
// "int8" or "bf16" (also "bfloat16"; see ComputeBF16).
func ParseCompute(s string) (Compute, error) { return kernels.ParseCompute(s) }

// WithCompute sets the number format of the model's linear layers; the
// default is ComputeFloat32. Load rejects an unknown mode with ErrCompute.
func WithCompute(c Compute) Option {
	return func(o *options) { o.compute = c }
}
