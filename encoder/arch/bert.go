package arch

import (
	"context"
	"fmt"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

func init() { Register("bert", buildBERT) }

// bertConfig is the part of a BERT config.json the forward pass uses.
type bertConfig struct {
	dims
	typeVocab int
	act       string
	eps       float64
	// actFn is the function hidden_act (act) names.
	actFn Activation
}

// dims is the part of config.json that every architecture reads alike.
type dims struct {
	hidden, layers, heads, inter, maxPos, vocab int
}

// parseDims reads hidden_size, num_hidden_layers, num_attention_heads (at
// most maxHeads; 0 means at most hidden_size), intermediate_size,
// max_position_embeddings and vocab_size, in that order.
func parseDims(cfg *Config, maxHeads int) (dims, error) {
	var d dims
	var err error
	const big = 1 << 20
	if d.hidden, err = cfg.Int("hidden_size", 1, big); err != nil {
		return d, err
	}
	if d.layers, err = cfg.Int("num_hidden_layers", 1, 1024); err != nil {
		return d, err
	}
	if maxHeads == 0 {
		maxHeads = d.hidden
	}
	if d.heads, err = cfg.Int("num_attention_heads", 1, maxHeads); err != nil {
		return d, err
	}
	if d.inter, err = cfg.Int("intermediate_size", 1, big); err != nil {
		return d, err
	}
	if d.maxPos, err = cfg.Int("max_position_embeddings", 1, big); err != nil {
		return d, err
	}
	if d.vocab, err = cfg.Int("vocab_size", 1, 1<<28); err != nil {
		return d, err
	}
	return d, nil
}

func parseBERTConfig(cfg *Config) (bertConfig, error) {
	var c bertConfig
	var err error
	const big = 1 << 20
	if c.dims, err = parseDims(cfg, 0); err != nil {
		return c, err
	}
	if c.hidden%c.heads != 0 {
		return c, fmt.Errorf("%w: %s: hidden_size %d is not a multiple of num_attention_heads %d", ErrConfig, cfg.Path, c.hidden, c.heads)
	}
	if c.typeVocab, err = cfg.IntOr("type_vocab_size", 2, 1, big); err != nil {
		return c, err
	}
	if c.act, err = cfg.StringOr("hidden_act", "gelu"); err != nil {
		return c, err
	}
	if c.eps, err = cfg.PositiveFloatOr("layer_norm_eps", 1e-12); err != nil {
		return c, err
	}
	pet, err := cfg.StringOr("position_embedding_type", "absolute")
	if err != nil {
		return c, err
	}
	if pet != "absolute" {
		return c, fmt.Errorf("%w: %s: position_embedding_type %q (only \"absolute\" is implemented)", ErrUnsupported, cfg.Path, pet)
	}
	if c.actFn, err = LookupActivation(cfg, "hidden_act", c.act); err != nil {
		return c, err
	}
	return c, nil
}

// bertNames are the tensor names of a BERT layer.
var bertNames = postNormNames{
	q: "attention.self.query", k: "attention.self.key", v: "attention.self.value",
	attnOut: "attention.output.dense", attnNorm: "attention.output.LayerNorm",
	up: "intermediate.dense", down: "output.dense", outNorm: "output.LayerNorm",
}

// bert is the BERT encoder (BertModel without the pooler, which
// sentence-transformers does not use).
type bert struct {
	c      bertConfig
	word   *Embedding
	posTyp []float32 // position row p + token type 0 row, maxPos×hidden
	// typDelta holds, for each token type t ≥ 1, the difference between
	// its row and that of type 0, (typeVocab-1)×hidden: a sentence pair's
	// second segment adds it on top of posTyp.
	typDelta []float32
	embLN    *Norm
	layers   []postNormLayer
}

// Scratch slots of the BERT forward pass.
const (
	bertSlotInter = iota
	bertSlotAttn  // three slots: QKV, context, scores
)

func buildBERT(cfg *Config, w Weights) (Encoder, error) {
	c, err := parseBERTConfig(cfg)
	if err != nil {
		return nil, err
	}
	p, err := ResolvePrefix(w, "embeddings.word_embeddings.weight", "bert.")
	if err != nil {
		return nil, err
	}
	H := c.hidden
	m := &bert{c: c}
	if m.word, err = LoadEmbedding(w, p+"embeddings.word_embeddings.weight", c.vocab, H); err != nil {
		return nil, err
	}
	pos, err := w.Float32(p+"embeddings.position_embeddings.weight", c.maxPos, H)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	typ, err := w.Float32(p+"embeddings.token_type_embeddings.weight", c.typeVocab, H)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	// Most tokens have token type 0, so its row is folded into the position
	// table once: one Add per sequence instead of two per token. Other
	// types (the second segment of a sentence pair) add their difference
	// to row 0 per token.
	for i := 0; i < c.maxPos; i++ {
		kernels.Add(pos[i*H:i*H+H], typ[:H])
	}
	m.posTyp = pos
	m.typDelta = make([]float32, (c.typeVocab-1)*H)
	for t := 1; t < c.typeVocab; t++ {
		d := m.typDelta[(t-1)*H : t*H]
		for j := range d {
			d[j] = typ[t*H+j] - typ[j]
		}
	}
	if m.embLN, err = LoadNorm(w, p+"embeddings.LayerNorm", LayerNorm, H, c.eps, true); err != nil {
		return nil, err
	}
	if m.layers, err = loadPostNormLayers(w, p, bertNames, c); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *bert) Hidden() int       { return m.c.hidden }
func (m *bert) MaxPositions() int { return m.c.maxPos }

func (m *bert) WordEmbedding(id int32) []float32 { return wordRow(m.word, id) }

func (m *bert) Describe() Description {
	return Description{Layers: m.c.layers, Heads: m.c.heads, KVHeads: m.c.heads, Hidden: m.c.hidden,
		Intermediate: m.c.inter, VocabSize: m.c.vocab, Activation: m.c.act}
}

func (m *bert) Forward(ctx context.Context, s *Scratch, ids []int32, starts []int, dst []float32) error {
	return m.ForwardTyped(ctx, s, ids, nil, starts, dst)
}

// TypeVocab returns type_vocab_size.
func (m *bert) TypeVocab() int { return m.c.typeVocab }

// ForwardTyped is Forward with the token type of every token (nil: all 0).
func (m *bert) ForwardTyped(ctx context.Context, s *Scratch, ids, types []int32, starts []int, dst []float32) error {
	if err := checkTypes(types, len(ids), m.c.typeVocab); err != nil {
		return err
	}
	x, maxN, err := embedBatch(m.word, ids, starts, dst, m.c.maxPos)
	if err != nil || x == nil {
		return err
	}
	H, T := m.c.hidden, len(ids)
	for i := 0; i+1 < len(starts); i++ {
		o, n := starts[i], starts[i+1]-starts[i]
		if n > 0 {
			kernels.Add(x[o*H:(o+n)*H], m.posTyp[:n*H])
		}
	}
	for i, t := range types {
		if t != 0 {
			kernels.Add(x[i*H:i*H+H], m.typDelta[int(t-1)*H:int(t)*H])
		}
	}
	m.embLN.Forward(x, x, T)
	for li := range m.layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.observeStates(li, x, starts, H)
		l := &m.layers[li]
		// Post-norm residual blocks, x = LN(x + f(x)), with the residual
		// sums fused into the output projections.
		l.attn.ForwardAdd(x, x, starts, l.attn.Buffers(s, bertSlotAttn, T, maxN))
		l.attnNorm.Forward(x, x, T)
		l.mlp.ForwardAddPool(s.Pool, x, x, s.Buf(bertSlotInter, l.mlp.BufferLen(T)), T)
		l.outNorm.Forward(x, x, T)
	}
	s.observeStates(len(m.layers), x, starts, H)
	return nil
}
