package arch

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// ResolvePrefix finds the prefix under which a checkpoint stores its tensors.
// probe is a tensor name without prefix (for BERT,
// "embeddings.word_embeddings.weight"); prefixes are tried in order, and ""
// (no prefix) first. It returns an ErrWeights error naming the probe when
// none matches.
func ResolvePrefix(w Weights, probe string, prefixes ...string) (string, error) {
	names := make([]string, 0, len(prefixes)+1)
	names = append(names, probe)
	for _, p := range prefixes {
		names = append(names, p+probe)
	}
	found, ok := w.Lookup(names...)
	if !ok {
		return "", fmt.Errorf("%w: tensor %q not found (tried %s)", ErrWeights, probe, strings.Join(names, ", "))
	}
	return strings.TrimSuffix(found, probe), nil
}

// LoadDense loads the linear layer name (name.weight of shape out×in and,
// when bias is true, name.bias of shape out), computing in the mode of
// BuildCompute (float32 by default).
func LoadDense(w Weights, name string, out, in int, bias bool) (*kernels.Dense, error) {
	return loadDense(w, name, out, in, bias, computeOf(w))
}

// LoadDenseFloat32 is LoadDense computing in float32 whatever the mode of
// BuildCompute: for small layers whose outputs make discrete choices (a
// mixture-of-experts router), where quantization could flip the choice.
func LoadDenseFloat32(w Weights, name string, out, in int, bias bool) (*kernels.Dense, error) {
	return loadDense(w, name, out, in, bias, kernels.ComputeFloat32)
}

func loadDense(w Weights, name string, out, in int, bias bool, c kernels.Compute) (*kernels.Dense, error) {
	wt, err := w.Float32(name+".weight", out, in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	var b []float32
	if bias {
		if b, err = w.Float32(name+".bias", out); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWeights, err)
		}
	}
	return kernels.NewDenseCompute(c, wt, b, out, in), nil
}

// LoadFusedDense loads several linear layers that read the same input and
// stacks them into one Dense whose output is their outputs side by side, in
// the order of names: one GEMM instead of several. outs gives each layer's
// output width. It computes in the mode of BuildCompute, like LoadDense.
func LoadFusedDense(w Weights, names []string, outs []int, in int, bias bool) (*kernels.Dense, error) {
	// The parts are read before anything is allocated for the whole, so a
	// config that lies about the sizes fails on the tensor shapes instead of
	// attempting a huge allocation.
	ws := make([][]float32, len(names))
	bs := make([][]float32, len(names))
	total := 0
	for i, name := range names {
		var err error
		if ws[i], err = w.Float32(name+".weight", outs[i], in); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWeights, err)
		}
		if bias {
			if bs[i], err = w.Float32(name+".bias", outs[i]); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrWeights, err)
			}
		}
		total += outs[i]
	}
	wt := slices.Concat(ws...)
	var b []float32
	if bias {
		b = slices.Concat(bs...)
	}
	return kernels.NewDenseCompute(computeOf(w), wt, b, total, in), nil
}

// NormKind selects the normalisation a Norm applies.
type NormKind int

// The normalisations a Norm can apply.
const (
	LayerNorm NormKind = iota // (x-mean)/sqrt(var+eps)·γ+β; β may be absent
	RMSNorm                   // x/sqrt(mean(x²)+eps)·γ
)

// Norm is a LayerNorm or RMSNorm layer over rows of width Dim.
type Norm struct {
	Kind        NormKind
	Gamma, Beta []float32 // Beta is nil without bias
	Dim         int
	Eps         float32
}

// LoadNorm loads name.weight (and name.bias when bias is true) of width dim.
func LoadNorm(w Weights, name string, kind NormKind, dim int, eps float64, bias bool) (*Norm, error) {
	g, err := w.Float32(name+".weight", dim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	n := &Norm{Kind: kind, Gamma: g, Dim: dim, Eps: float32(eps)}
	if bias {
		if n.Beta, err = w.Float32(name+".bias", dim); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWeights, err)
		}
	}
	return n, nil
}

// Forward normalises rows rows of x into dst (which may alias x).
func (n *Norm) Forward(dst, x []float32, rows int) {
	if rows == 0 {
		return
	}
	switch n.Kind {
	case RMSNorm:
		kernels.RMSNorm(dst, x, n.Gamma, rows, n.Dim, n.Eps)
	default:
		kernels.LayerNorm(dst, x, n.Gamma, n.Beta, rows, n.Dim, n.Eps)
	}
}

// Embedding is a lookup table of Rows rows of width Dim.
type Embedding struct {
	Table     []float32
	Rows, Dim int
}

// LoadEmbedding loads the rows×dim table name.
func LoadEmbedding(w Weights, name string, rows, dim int) (*Embedding, error) {
	t, err := w.Float32(name, rows, dim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	return &Embedding{Table: t, Rows: rows, Dim: dim}, nil
}

// Gather copies the rows of ids into dst (len(ids)×Dim). The ids must have
// been validated (CheckBatch).
func (e *Embedding) Gather(dst []float32, ids []int32) {
	d := e.Dim
	for i, id := range ids {
		copy(dst[i*d:i*d+d], e.Table[int(id)*d:int(id)*d+d])
	}
}

// Row returns row id of the table (shared, read-only).
func (e *Embedding) Row(id int) []float32 { return e.Table[id*e.Dim : id*e.Dim+e.Dim] }

// Activation applies an activation function in place.
type Activation func(x []float32)

// Activations maps the activation names of Hugging Face configs
// (hidden_act, hidden_activation) to kernels.
var Activations = map[string]Activation{
	"gelu":              kernels.GELU,
	"gelu_new":          kernels.GELUTanh,
	"gelu_pytorch_tanh": kernels.GELUTanh,
	"gelu_fast":         kernels.GELUTanh,
	"relu":              kernels.ReLU,
	"silu":              kernels.SiLU,
	"swish":             kernels.SiLU,
}

// LookupActivation returns the activation called name or an error that
// names cfg's file and key and lists the supported ones.
func LookupActivation(cfg *Config, key, name string) (Activation, error) {
	if a, ok := Activations[name]; ok {
		return a, nil
	}
	known := make([]string, 0, len(Activations))
	for k := range Activations {
		known = append(known, k)
	}
	sort.Strings(known)
	return nil, fmt.Errorf("%w: %s: %q: activation %q (supported: %s)", ErrUnsupported, cfg.Path, key, name, strings.Join(known, ", "))
}
