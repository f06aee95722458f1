package arch

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// Rotary is the rotary position embedding (RoPE, rotate-half layout) of
// ModernBERT and Qwen3, a QKTransform. Token t of a sequence has position t;
// each head vector of its query and key is rotated pairwise, pair i by the
// angle t·θ^(−2i/headDim).
//
// QNorm and KNorm, when set, normalise every query and key head before the
// rotation (Qwen3's q_norm and k_norm, an RMSNorm over headDim).
type Rotary struct {
	cos, sin     []float32 // MaxLen × HeadDim/2 per position
	HeadDim      int
	MaxLen       int
	QNorm, KNorm *Norm
}

// NewRotary returns the rotary embedding of head width headDim (even) with
// base theta for positions below maxLen.
//
// The angles are computed as transformers computes them, in float32 even for
// a float64 model: inverse frequencies 1/θ^(2i/d) rounded to float32, then
// the float32 product with the position. At position 500 one float32 ulp of
// the angle is 3e-5 radians, so computing the product in float64 instead
// would move the result by more than float32 arithmetic elsewhere does.
func NewRotary(headDim, maxLen int, theta float64) *Rotary {
	half := headDim / 2
	inv := make([]float32, half)
	for i := range inv {
		e := float32(2*i) / float32(headDim)
		inv[i] = 1 / float32(math.Pow(theta, float64(e)))
	}
	r := &Rotary{cos: make([]float32, maxLen*half), sin: make([]float32, maxLen*half), HeadDim: headDim, MaxLen: maxLen}
	for p := 0; p < maxLen; p++ {
		for i, f := range inv {
			a := float64(f * float32(p))
			r.cos[p*half+i] = float32(math.Cos(a))
			r.sin[p*half+i] = float32(math.Sin(a))
		}
	}
	return r
}

// TransformQK implements QKTransform. The sequence must not be longer than
// MaxLen, which the architectures guarantee through CheckBatch.
func (r *Rotary) TransformQK(q, k []float32, ld, n, heads, kvHeads, headDim int) {
	r.TransformQKAt(q, k, ld, n, 0, heads, kvHeads, headDim)
}

// TransformQKAt is TransformQK for n tokens at positions pos0, pos0+1, …:
// the tokens after a cached prefix of pos0 tokens.
func (r *Rotary) TransformQKAt(q, k []float32, ld, n, pos0, heads, kvHeads, headDim int) {
	half := headDim / 2
	for i := 0; i < n; i++ {
		t := pos0 + i
		qr := q[i*ld : i*ld+heads*headDim]
		kr := k[i*ld : i*ld+kvHeads*headDim]
		if r.QNorm != nil {
			r.QNorm.Forward(qr, qr, heads)
		}
		if r.KNorm != nil {
			r.KNorm.Forward(kr, kr, kvHeads)
		}
		c := r.cos[t*half : t*half+half]
		s := r.sin[t*half : t*half+half]
		for h := 0; h < heads; h++ {
			kernels.RotateHalf(qr[h*headDim:h*headDim+headDim], c, s)
		}
		for h := 0; h < kvHeads; h++ {
			kernels.RotateHalf(kr[h*headDim:h*headDim+headDim], c, s)
		}
	}
}

// ropeParams is one entry of config.json's rope_parameters.
type ropeParams struct {
	Theta               *float64 `json:"rope_theta"`
	Type                string   `json:"rope_type"`
	PartialRotaryFactor *float64 `json:"partial_rotary_factor"`
}

// ropeTheta returns the rotary base of layerType ("" for a model with one
// kind of layer) from rope_parameters, which is either one entry or a map
// from layer type to entry. Without rope_parameters it falls back to the
// older top-level key legacy (rope_theta, global_rope_theta…) and then def.
// Only the default RoPE (no scaling, full rotary width) is implemented.
func ropeTheta(cfg *Config, layerType, legacy string, def float64) (float64, error) {
	const key = "rope_parameters"
	if !cfg.Has(key) {
		// Older configs keep scaling apart, in rope_scaling.
		var sc struct {
			RopeType string `json:"rope_type"`
			Type     string `json:"type"`
		}
		if err := cfg.Decode("rope_scaling", &sc); err != nil {
			return 0, err
		}
		t := sc.RopeType
		if t == "" {
			t = sc.Type
		}
		if t != "" && t != "default" {
			return 0, fmt.Errorf("%w: %s: \"rope_scaling\": rope type %q (only the default RoPE is implemented)", ErrUnsupported, cfg.Path, t)
		}
		return cfg.FloatOr(legacy, def)
	}
	var rp ropeParams
	if layerType != "" {
		var byType map[string]json.RawMessage
		if err := cfg.Decode(key, &byType); err != nil {
			return 0, err
		}
		raw, ok := byType[layerType]
		if !ok {
			// A single entry shared by all layer types.
			if err := cfg.Decode(key, &rp); err != nil {
				return 0, err
			}
		} else if err := json.Unmarshal(raw, &rp); err != nil {
			return 0, fmt.Errorf("%w: %s: %q: %s: %v", ErrConfig, cfg.Path, key, layerType, err)
		}
	} else if err := cfg.Decode(key, &rp); err != nil {
		return 0, err
	}
	if rp.Type != "" && rp.Type != "default" {
		return 0, fmt.Errorf("%w: %s: %q: rope_type %q (only \"default\" is implemented)", ErrUnsupported, cfg.Path, key, rp.Type)
	}
	if rp.PartialRotaryFactor != nil && *rp.PartialRotaryFactor != 1 {
		return 0, fmt.Errorf("%w: %s: %q: partial_rotary_factor %v (only 1 is implemented)", ErrUnsupported, cfg.Path, key, *rp.PartialRotaryFactor)
	}
	if rp.Theta == nil {
		return cfg.FloatOr(legacy, def)
	}
	if t := *rp.Theta; !(t > 1) || math.IsInf(t, 0) {
		return 0, fmt.Errorf("%w: %s: %q: rope_theta %v must be a finite number above 1", ErrConfig, cfg.Path, key, t)
	}
	return *rp.Theta, nil
}
