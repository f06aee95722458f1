package arch

import (
	"context"
	"fmt"
)

func init() {
	Register("qwen3", buildQwen3)
	Register("qwen3_moe", buildQwen3MoE)
}

// Qwen3 is a decoder used as an encoder (Qwen3-Embedding): causal attention,
// so each token sees only itself and the tokens before it, and the embedding
// is the last token's (the EOS the tokenizer appends). Layers are pre-norm
// with RMSNorm; attention is grouped-query (num_key_value_heads heads of keys
// and values, each shared by a group of query heads) with an RMSNorm over
// every query and key head before the rotary embedding; the feed-forward
// block is SwiGLU, or in Qwen3-MoE a routed mixture of SwiGLU experts
// (qwen3moe.go).

type qwen3Config struct {
	dims
	kvHeads, headDim int
	act              string
	eps, theta       float64
	attnBias         bool
	// actFn is the function hidden_act (act) names.
	actFn Activation
}

func parseQwen3Config(cfg *Config) (qwen3Config, error) {
	var c qwen3Config
	var err error
	const big = 1 << 20
	if c.dims, err = parseDims(cfg, big); err != nil {
		return c, err
	}
	if c.kvHeads, err = cfg.IntOr("num_key_value_heads", c.heads, 1, c.heads); err != nil {
		return c, err
	}
	if c.heads%c.kvHeads != 0 {
		return c, fmt.Errorf("%w: %s: num_attention_heads %d is not a multiple of num_key_value_heads %d", ErrConfig, cfg.Path, c.heads, c.kvHeads)
	}
	if c.headDim, err = cfg.IntOr("head_dim", c.hidden/c.heads, 2, big); err != nil {
		return c, err
	}
	if c.headDim%2 != 0 {
		return c, fmt.Errorf("%w: %s: head_dim %d must be even for rotary embeddings", ErrConfig, cfg.Path, c.headDim)
	}
	if c.act, err = cfg.StringOr("hidden_act", "silu"); err != nil {
		return c, err
	}
	if c.eps, err = cfg.PositiveFloatOr("rms_norm_eps", 1e-6); err != nil {
		return c, err
	}
	if c.attnBias, err = cfg.BoolOr("attention_bias", false); err != nil {
		return c, err
	}
	if c.theta, err = ropeTheta(cfg, "", "rope_theta", 10000); err != nil {
		return c, err
	}
	// Sliding-window layers (use_sliding_window) are not implemented;
	// refuse them rather than attend over the whole prefix.
	full, err := layerKinds(cfg, c.layers, "sliding_attention")
	if err != nil {
		return c, err
	}
	for i, f := range full {
		if !f {
			return c, fmt.Errorf("%w: %s: \"layer_types\": layer %d is sliding_attention (only full_attention is implemented)", ErrUnsupported, cfg.Path, i)
		}
	}
	if sw, err := cfg.BoolOr("use_sliding_window", false); err != nil {
		return c, err
	} else if sw {
		return c, fmt.Errorf("%w: %s: \"use_sliding_window\" is true (only full attention is implemented)", ErrUnsupported, cfg.Path)
	}
	if c.actFn, err = LookupActivation(cfg, "hidden_act", c.act); err != nil {
		return c, err
	}
	return c, nil
}

type qwen3 struct {
	c         qwen3Config
	desc      Description
	word      *Embedding
	layers    []preNormLayer
	finalNorm *Norm
}

func buildQwen3(cfg *Config, w Weights) (Encoder, error) {
	c, err := parseQwen3Config(cfg)
	if err != nil {
		return nil, err
	}
	act := c.actFn
	return buildDecoder(cfg, w, c, c.inter, func(lp string, _ int) (feedForward, error) {
		mlp, err := loadSwiGLU(w, lp+"mlp.", c.hidden, c.inter, act)
		if err != nil {
			return nil, err
		}
		return denseFF{mlp}, nil
	})
}

// loadSwiGLU loads the gated MLP whose tensors are p+"gate_proj",
// p+"up_proj" and p+"down_proj", without biases; gate and up are fused.
func loadSwiGLU(w Weights, p string, hidden, inter int, act Activation) (*MLP, error) {
	up, err := LoadFusedDense(w, []string{p + "gate_proj", p + "up_proj"}, []int{inter, inter}, hidden, false)
	if err != nil {
		return nil, err
	}
	down, err := LoadDense(w, p+"down_proj", hidden, inter, false)
	if err != nil {
		return nil, err
	}
	return &MLP{Up: up, Down: down, Act: act, Gated: true, Inter: inter}, nil
}

// buildDecoder loads the parts Qwen3 and Qwen3-MoE share; ff loads the
// feed-forward block of the layer whose tensors start with lp.
func buildDecoder(cfg *Config, w Weights, c qwen3Config, inter int, ff func(lp string, layer int) (feedForward, error)) (*qwen3, error) {
	p, err := ResolvePrefix(w, "embed_tokens.weight", "model.")
	if err != nil {
		return nil, err
	}
	H, hd := c.hidden, c.headDim
	m := &qwen3{c: c, desc: Description{Layers: c.layers, Heads: c.heads, KVHeads: c.kvHeads, Hidden: H,
		Intermediate: inter, VocabSize: c.vocab, Activation: c.act}}
	if m.word, err = LoadEmbedding(w, p+"embed_tokens.weight", c.vocab, H); err != nil {
		return nil, err
	}
	rope := NewRotary(hd, c.maxPos, c.theta)
	qd, kvd := c.heads*hd, c.kvHeads*hd
	for l := 0; l < c.layers; l++ {
		lp := fmt.Sprintf("%slayers.%d.", p, l)
		var layer preNormLayer
		if layer.attnNorm, err = LoadNorm(w, lp+"input_layernorm", RMSNorm, H, c.eps, false); err != nil {
			return nil, err
		}
		qkv, err := LoadFusedDense(w, []string{lp + "self_attn.q_proj", lp + "self_attn.k_proj", lp + "self_attn.v_proj"},
			[]int{qd, kvd, kvd}, H, c.attnBias)
		if err != nil {
			return nil, err
		}
		out, err := LoadDense(w, lp+"self_attn.o_proj", H, qd, c.attnBias)
		if err != nil {
			return nil, err
		}
		// Each layer has its own QK-norm weights over the shared angle
		// tables.
		r := *rope
		if r.QNorm, err = LoadNorm(w, lp+"self_attn.q_norm", RMSNorm, hd, c.eps, false); err != nil {
			return nil, err
		}
		if r.KNorm, err = LoadNorm(w, lp+"self_attn.k_norm", RMSNorm, hd, c.eps, false); err != nil {
			return nil, err
		}
		layer.attn = NewAttention(qkv, out, c.heads, c.kvHeads, hd)
		layer.attn.QK = &r
		layer.attn.Mask = Mask{Causal: true}
		if layer.ffNorm, err = LoadNorm(w, lp+"post_attention_layernorm", RMSNorm, H, c.eps, false); err != nil {
			return nil, err
		}
		if layer.ff, err = ff(lp, l); err != nil {
			return nil, err
		}
		m.layers = append(m.layers, layer)
	}
	if m.finalNorm, err = LoadNorm(w, p+"norm", RMSNorm, H, c.eps, false); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *qwen3) Hidden() int                      { return m.c.hidden }
func (m *qwen3) MaxPositions() int                { return m.c.maxPos }
func (m *qwen3) Describe() Description            { return m.desc }
func (m *qwen3) WordEmbedding(id int32) []float32 { return wordRow(m.word, id) }

func (m *qwen3) Forward(ctx context.Context, s *Scratch, ids []int32, starts []int, dst []float32) error {
	x, maxN, err := embedBatch(m.word, ids, starts, dst, m.c.maxPos)
	if err != nil || x == nil {
		return err
	}
	// Causal attention: a prefix every sequence shares (an instruction
	// prompt) is encoded once, unless an Observer watches the pass.
	if s.Observer == nil && !s.NoPrefixCache {
		if pn := sharedPrefix(ids, starts); pn >= MinPrefixTokens {
			return runPreNormPrefixed(ctx, s, m.layers, m.finalNorm, x, starts, pn)
		}
	}
	return runPreNorm(ctx, s, m.layers, m.finalNorm, x, starts, len(ids), maxN)
}
