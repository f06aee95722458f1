package arch

import (
	"context"
	"fmt"
)

func init() { Register("modernbert", buildModernBERT) }

// ModernBERT is a pre-norm encoder without position tables: rotary
// embeddings with one base for global (full attention) layers and another
// for local ones, whose queries see only keys within local_attention/2
// positions; a GeGLU feed-forward block; LayerNorms (usually without bias)
// on the embeddings, before attention (except in layer 0, where Hugging Face
// uses an Identity because the embeddings were just normalised), before the
// MLP and after the last layer.

type modernBERTConfig struct {
	dims
	window                      int // local_attention
	act                         string
	eps                         float64
	normBias, attnBias, mlpBias bool
	global                      []bool // per layer: full attention
	// actFn is the function hidden_activation (act) names.
	actFn Activation
}

func parseModernBERTConfig(cfg *Config) (modernBERTConfig, error) {
	var c modernBERTConfig
	var err error
	const big = 1 << 20
	if c.dims, err = parseDims(cfg, 0); err != nil {
		return c, err
	}
	if c.hidden%c.heads != 0 || (c.hidden/c.heads)%2 != 0 {
		return c, fmt.Errorf("%w: %s: hidden_size %d over num_attention_heads %d must give an even head width", ErrConfig, cfg.Path, c.hidden, c.heads)
	}
	if c.window, err = cfg.IntOr("local_attention", 128, 2, big); err != nil {
		return c, err
	}
	if c.act, err = cfg.StringOr("hidden_activation", "gelu"); err != nil {
		return c, err
	}
	if c.eps, err = cfg.PositiveFloatOr("norm_eps", 1e-5); err != nil {
		return c, err
	}
	if c.normBias, err = cfg.BoolOr("norm_bias", false); err != nil {
		return c, err
	}
	if c.attnBias, err = cfg.BoolOr("attention_bias", false); err != nil {
		return c, err
	}
	if c.mlpBias, err = cfg.BoolOr("mlp_bias", false); err != nil {
		return c, err
	}
	c.global, err = layerKinds(cfg, c.layers, "sliding_attention")
	if err != nil {
		return c, err
	}
	if c.global == nil {
		// Configs older than layer_types: every n-th layer is global.
		every, err := cfg.IntOr("global_attn_every_n_layers", 1, 1, 1024)
		if err != nil {
			return c, err
		}
		c.global = make([]bool, c.layers)
		for i := range c.global {
			c.global[i] = i%every == 0
		}
	}
	if c.actFn, err = LookupActivation(cfg, "hidden_activation", c.act); err != nil {
		return c, err
	}
	return c, nil
}

// layerKinds reads layer_types, which must list layers entries, each
// "full_attention" or local (the sliding-window name of the model). It
// returns, per layer, whether it is full attention, or nil when the config
// has no layer_types.
func layerKinds(cfg *Config, layers int, local string) ([]bool, error) {
	const key = "layer_types"
	if !cfg.Has(key) {
		return nil, nil
	}
	var types []string
	if err := cfg.Decode(key, &types); err != nil {
		return nil, err
	}
	if len(types) != layers {
		return nil, fmt.Errorf("%w: %s: %q lists %d layers, num_hidden_layers is %d", ErrConfig, cfg.Path, key, len(types), layers)
	}
	full := make([]bool, layers)
	for i, t := range types {
		switch t {
		case "full_attention":
			full[i] = true
		case local:
		default:
			return nil, fmt.Errorf("%w: %s: %q: layer %d has type %q (supported: full_attention, %s)", ErrUnsupported, cfg.Path, key, i, t, local)
		}
	}
	return full, nil
}

type modernBERT struct {
	c         modernBERTConfig
	word      *Embedding
	embNorm   *Norm
	layers    []preNormLayer
	finalNorm *Norm
}

func buildModernBERT(cfg *Config, w Weights) (Encoder, error) {
	c, err := parseModernBERTConfig(cfg)
	if err != nil {
		return nil, err
	}
	H, hd := c.hidden, c.hidden/c.heads
	globalTheta, err := ropeTheta(cfg, "full_attention", "global_rope_theta", 160000)
	if err != nil {
		return nil, err
	}
	localTheta, err := ropeTheta(cfg, "sliding_attention", "local_rope_theta", 10000)
	if err != nil {
		return nil, err
	}
	globalRope := NewRotary(hd, c.maxPos, globalTheta)
	localRope := NewRotary(hd, c.maxPos, localTheta)

	p, err := ResolvePrefix(w, "embeddings.tok_embeddings.weight", "model.")
	if err != nil {
		return nil, err
	}
	m := &modernBERT{c: c}
	if m.word, err = LoadEmbedding(w, p+"embeddings.tok_embeddings.weight", c.vocab, H); err != nil {
		return nil, err
	}
	if m.embNorm, err = LoadNorm(w, p+"embeddings.norm", LayerNorm, H, c.eps, c.normBias); err != nil {
		return nil, err
	}
	for l := 0; l < c.layers; l++ {
		lp := fmt.Sprintf("%slayers.%d.", p, l)
		var layer preNormLayer
		if l > 0 {
			if layer.attnNorm, err = LoadNorm(w, lp+"attn_norm", LayerNorm, H, c.eps, c.normBias); err != nil {
				return nil, err
			}
		}
		qkv, err := LoadDense(w, lp+"attn.Wqkv", 3*H, H, c.attnBias)
		if err != nil {
			return nil, err
		}
		out, err := LoadDense(w, lp+"attn.Wo", H, H, c.attnBias)
		if err != nil {
			return nil, err
		}
		layer.attn = NewAttention(qkv, out, c.heads, c.heads, hd)
		if c.global[l] {
			layer.attn.QK = globalRope
		} else {
			layer.attn.QK = localRope
			layer.attn.Mask = Mask{Window: c.window}
		}
		if layer.ffNorm, err = LoadNorm(w, lp+"mlp_norm", LayerNorm, H, c.eps, c.normBias); err != nil {
			return nil, err
		}
		up, err := LoadDense(w, lp+"mlp.Wi", 2*c.inter, H, c.mlpBias)
		if err != nil {
			return nil, err
		}
		down, err := LoadDense(w, lp+"mlp.Wo", H, c.inter, c.mlpBias)
		if err != nil {
			return nil, err
		}
		layer.ff = denseFF{&MLP{Up: up, Down: down, Act: c.actFn, Gated: true, Inter: c.inter}}
		m.layers = append(m.layers, layer)
	}
	if m.finalNorm, err = LoadNorm(w, p+"final_norm", LayerNorm, H, c.eps, c.normBias); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *modernBERT) Hidden() int       { return m.c.hidden }
func (m *modernBERT) MaxPositions() int { return m.c.maxPos }

func (m *modernBERT) Describe() Description {
	return Description{Layers: m.c.layers, Heads: m.c.heads, KVHeads: m.c.heads, Hidden: m.c.hidden,
		Intermediate: m.c.inter, VocabSize: m.c.vocab, Activation: m.c.act}
}

func (m *modernBERT) WordEmbedding(id int32) []float32 { return wordRow(m.word, id) }

func (m *modernBERT) Forward(ctx context.Context, s *Scratch, ids []int32, starts []int, dst []float32) error {
	x, maxN, err := embedBatch(m.word, ids, starts, dst, m.c.maxPos)
	if err != nil || x == nil {
		return err
	}
	T := len(ids)
	m.embNorm.Forward(x, x, T)
	return runPreNorm(ctx, s, m.layers, m.finalNorm, x, starts, T, maxN)
}
