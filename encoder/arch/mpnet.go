package arch

import (
	"context"
	"fmt"
	"math"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

func init() { Register("mpnet", buildMPNet) }

// MPNet is a post-norm BERT-like encoder with two differences: position ids
// start after the padding index, as in RoBERTa, and every layer adds to its
// attention scores a learned bias per head and bucket of relative position
// (T5-style buckets, bidirectional), computed once for the whole stack. It
// has no token type embeddings.

// mpnetMaxDistance is the relative distance beyond which MPNet's buckets stop
// growing; Hugging Face hard-codes it (relative_position_bucket's
// max_distance=128) rather than reading it from the config.
const mpnetMaxDistance = 128

type mpnetConfig struct {
	bertConfig
	buckets int
	posOff  int // first position id, pad_token_id+1
}

// mpnetNames are the tensor names of an MPNet layer.
var mpnetNames = postNormNames{
	q: "attention.attn.q", k: "attention.attn.k", v: "attention.attn.v",
	attnOut: "attention.attn.o", attnNorm: "attention.LayerNorm",
	up: "intermediate.dense", down: "output.dense", outNorm: "output.LayerNorm",
}

type mpnet struct {
	c      mpnetConfig
	word   *Embedding
	pos    []float32 // rows posOff… of the position table, (maxPos-posOff)×hidden
	embLN  *Norm
	rel    *relativeBias
	layers []postNormLayer
}

// Scratch slots of the MPNet forward pass.
const (
	mpnetSlotAttnOut = iota
	mpnetSlotInter
	mpnetSlotAttn // three slots: QKV, context, scores
)

func buildMPNet(cfg *Config, w Weights) (Encoder, error) {
	var c mpnetConfig
	var err error
	// MPNet's config has no type_vocab_size; the BERT parser's default is
	// harmless because no token type table is read.
	if c.bertConfig, err = parseBERTConfig(cfg); err != nil {
		return nil, err
	}
	if c.buckets, err = cfg.IntOr("relative_attention_num_buckets", 32, 4, 1<<16); err != nil {
		return nil, err
	}
	if c.posOff, err = positionOffset(cfg); err != nil {
		return nil, err
	}
	if c.maxPos <= c.posOff {
		return nil, fmt.Errorf("%w: %s: max_position_embeddings %d leaves no position after pad_token_id %d", ErrConfig, cfg.Path, c.maxPos, c.posOff-1)
	}
	p, err := ResolvePrefix(w, "embeddings.word_embeddings.weight", "mpnet.")
	if err != nil {
		return nil, err
	}
	H := c.hidden
	m := &mpnet{c: c}
	if m.word, err = LoadEmbedding(w, p+"embeddings.word_embeddings.weight", c.vocab, H); err != nil {
		return nil, err
	}
	pos, err := w.Float32(p+"embeddings.position_embeddings.weight", c.maxPos, H)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	m.pos = pos[c.posOff*H:]
	if m.embLN, err = LoadNorm(w, p+"embeddings.LayerNorm", LayerNorm, H, c.eps, true); err != nil {
		return nil, err
	}
	table, err := w.Float32(p+"encoder.relative_attention_bias.weight", c.buckets, c.heads)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	m.rel = newRelativeBias(table, c.buckets, c.heads, m.MaxPositions())
	if m.layers, err = loadPostNormLayers(w, p, mpnetNames, c.bertConfig); err != nil {
		return nil, err
	}
	for i := range m.layers {
		m.layers[i].attn.Bias = m.rel
	}
	return m, nil
}

func (m *mpnet) Hidden() int       { return m.c.hidden }
func (m *mpnet) MaxPositions() int { return m.c.maxPos - m.c.posOff }

func (m *mpnet) Describe() Description {
	return Description{Layers: m.c.layers, Heads: m.c.heads, KVHeads: m.c.heads, Hidden: m.c.hidden,
		Intermediate: m.c.inter, VocabSize: m.c.vocab, Activation: m.c.act}
}

func (m *mpnet) Forward(ctx context.Context, s *Scratch, ids []int32, starts []int, dst []float32) error {
	x, maxN, err := embedBatch(m.word, ids, starts, dst, m.MaxPositions())
	if err != nil || x == nil {
		return err
	}
	H, T := m.c.hidden, len(ids)
	for i := 0; i+1 < len(starts); i++ {
		o, n := starts[i], starts[i+1]-starts[i]
		kernels.Add(x[o*H:(o+n)*H], m.pos[:n*H])
	}
	m.embLN.Forward(x, x, T)
	tmp := s.Buf(mpnetSlotAttnOut, T*H)
	for li := range m.layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.observeStates(li, x, starts, H)
		l := &m.layers[li]
		l.attn.Forward(tmp, x, starts, l.attn.Buffers(s, mpnetSlotAttn, T, maxN))
		kernels.Add(x, tmp)
		l.attnNorm.Forward(x, x, T)
		l.mlp.Forward(tmp, x, s.Buf(mpnetSlotInter, l.mlp.BufferLen(T)), T)
		kernels.Add(x, tmp)
		l.outNorm.Forward(x, x, T)
	}
	s.observeStates(len(m.layers), x, starts, H)
	return nil
}

// relativeBias is MPNet's relative position bias, a ScoreBias shared by all
// layers. The bias of query i and key j depends only on j−i, so it is kept
// per head and relative position: byRel[h][j−i+maxLen−1].
type relativeBias struct {
	byRel  [][]float32
	maxLen int
}

// newRelativeBias expands the buckets×heads table of learned biases to every
// relative position two tokens of a sequence of at most maxLen can have.
func newRelativeBias(table []float32, buckets, heads, maxLen int) *relativeBias {
	r := &relativeBias{byRel: make([][]float32, heads), maxLen: maxLen}
	for h := range r.byRel {
		r.byRel[h] = make([]float32, 2*maxLen-1)
	}
	for d := -(maxLen - 1); d < maxLen; d++ {
		b := mpnetBucket(d, buckets, mpnetMaxDistance)
		for h := 0; h < heads; h++ {
			r.byRel[h][d+maxLen-1] = table[b*heads+h]
		}
	}
	return r
}

// AddScoreBias adds the bias of head to a tile of the scores of one
// sequence.
func (r *relativeBias) AddScoreBias(tile []float32, ld, head, i0, rows, j0, cols int) {
	br := r.byRel[head]
	for i := 0; i < rows; i++ {
		// Key j of query i has relative position j−i, so row i reads the
		// cols consecutive entries starting at relative position j0−i.
		lo := r.maxLen - 1 + j0 - (i0 + i)
		kernels.Add(tile[i*ld:i*ld+cols], br[lo:lo+cols])
	}
}

// mpnetBucket maps the relative position rel = key − query to its bucket,
// as Hugging Face's MPNet relative_position_bucket: half the buckets for each
// direction; within one, exact buckets for distances below a quarter of the
// buckets and logarithmically wider ones up to maxDistance. The logarithmic
// part is computed in float32, as PyTorch does even for a float64 model
// (n.float()), because the truncation to an integer bucket is sensitive to
// the last bit.
func mpnetBucket(rel, buckets, maxDistance int) int {
	half := buckets / 2
	ret := 0
	n := -rel
	if n < 0 {
		ret = half
		n = -n
	}
	exact := half / 2
	if n < exact {
		return ret + n
	}
	v := float32(math.Log(float64(float32(n) / float32(exact))))
	v /= float32(math.Log(float64(maxDistance) / float64(exact)))
	v *= float32(half - exact)
	return ret + min(exact+int(v), half-1)
}

func (m *mpnet) WordEmbedding(id int32) []float32 { return wordRow(m.word, id) }
