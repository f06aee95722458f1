package arch

import (
	"fmt"
	"slices"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// computeWeights is a weight source that also carries the compute mode in
// which LoadDense and LoadFusedDense build their layers.
type computeWeights struct {
	Weights
	c kernels.Compute
}

func (w computeWeights) compute() kernels.Compute { return w.c }

// computeCarrier is a weight source that knows its compute mode. Builders
// that wrap their Weights (xlmr's shiftedPositions) forward it.
type computeCarrier interface{ compute() kernels.Compute }

// computeOf returns the compute mode w carries (float32 unless w came from
// BuildCompute).
func computeOf(w Weights) kernels.Compute {
	if cw, ok := w.(computeCarrier); ok {
		return cw.compute()
	}
	return kernels.ComputeFloat32
}

// int8Types are the model types whose int8 accuracy has been measured
// against the references and meets cosine ≥ 0.999 on every row
// (TestFidelityInt8). The pre-norm decoders (ModernBERT, Qwen3) do not:
// their residual streams carry outlier channels that per-token int8 scales
// cannot follow (worst cosine 0.9987 and 0.9985 on the tiny models, 0.67
// with the mixture of experts, whose routing flips), so int8 is refused
// for them rather than silently worse.
var int8Types = []string{"bert", "roberta", "xlm-roberta", "mpnet"}

// bf16Types are the model types whose bf16 accuracy (ComputeBF16) has
// been measured against the references and meets cosine ≥ 0.999 on every
// row (TestFidelityBF16: worst 0.99980 for Qwen3, 0.99986 for ModernBERT,
// ≥ 0.99995 for the BERT family). Qwen3-MoE does not (worst 0.62): bf16
// rounding of the router's inputs flips expert choices, so it is refused.
var bf16Types = []string{"bert", "roberta", "xlm-roberta", "mpnet", "modernbert", "qwen3"}

// reducedTypes are the model types each reduced-precision compute mode is
// supported for.
var reducedTypes = map[kernels.Compute][]string{kernels.ComputeInt8: int8Types, kernels.ComputeBF16: bf16Types}

// BuildCompute is Build with the linear layers that LoadDense and
// LoadFusedDense load (projections and feed-forward blocks) computing in c;
// attention products, softmax, norms, activations and embeddings stay
// float32, and so do layers loaded with LoadDenseFloat32 (routers whose
// choice must not flip). Builders need no change: the mode travels with w.
func BuildCompute(cfg *Config, w Weights, c kernels.Compute) (Encoder, error) {
	if c == kernels.ComputeFloat32 {
		return Build(cfg, w)
	}
	if types, ok := reducedTypes[c]; ok {
		mt, err := cfg.ModelType()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(types, mt) {
			return nil, fmt.Errorf("%w: %s: model_type %q with %s compute: its accuracy misses cosine 0.999 to the references (%s is supported for %v; use float32)", ErrUnsupported, cfg.Path, mt, c, c, types)
		}
	}
	return Build(cfg, computeWeights{Weights: w, c: c})
}
