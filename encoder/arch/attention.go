package arch

import (
	"math"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// Mask restricts the keys a query attends to within its sequence.
// The zero Mask is bidirectional attention over the whole sequence.
type Mask struct {
	// Causal lets query i see keys 0..i only (decoder models).
	Causal bool
	// Window, when > 0, lets query i see only keys j with |i-j| <= Window/2
	// (ModernBERT's local attention of window Window).
	Window int
}

// Range returns the half-open range [lo, hi) of keys query i of a sequence
// of n tokens sees.
func (m Mask) Range(i, n int) (lo, hi int) {
	lo, hi = 0, n
	if m.Causal {
		hi = i + 1
	}
	if m.Window > 0 {
		h := m.Window / 2
		lo = max(lo, i-h)
		hi = min(hi, i+h+1)
	}
	return lo, hi
}

// QKTransform rewrites the queries and keys of one sequence in place before
// attention scores are computed: rotary position embeddings, QK-norm. q and
// k point at the first token of the sequence inside the fused QKV buffer,
// whose rows are ld floats apart; the sequence has n tokens, the query part
// of a row holds heads×headDim floats and the key part kvHeads×headDim.
// Implementations must be safe for concurrent use.
type QKTransform interface {
	TransformQK(q, k []float32, ld, n, heads, kvHeads, headDim int)
}

// ScoreBias adds a bias to the n×n attention scores of one head of one
// sequence (already scaled), before the mask and the softmax: relative
// position biases. Implementations must be safe for concurrent use.
type ScoreBias interface {
	AddScoreBias(scores []float32, head, n int)
}

// Attention is multi-head (Heads == KVHeads) or grouped-query scaled
// dot-product self-attention with a fused QKV projection.
type Attention struct {
	// QKV projects hidden states to Heads×HeadDim query values, then
	// KVHeads×HeadDim key values, then KVHeads×HeadDim value values per row.
	QKV *kernels.Dense
	// Out projects the Heads×HeadDim context back to the hidden width.
	Out                     *kernels.Dense
	Heads, KVHeads, HeadDim int
	// Scale multiplies the raw scores; usually 1/sqrt(HeadDim).
	Scale float32
	Mask  Mask
	QK    QKTransform // nil: none
	Bias  ScoreBias   // nil: none
}

// NewAttention returns an Attention with the usual 1/sqrt(headDim) scale.
func NewAttention(qkv, out *kernels.Dense, heads, kvHeads, headDim int) *Attention {
	return &Attention{QKV: qkv, Out: out, Heads: heads, KVHeads: kvHeads, HeadDim: headDim,
		Scale: float32(1 / math.Sqrt(float64(headDim)))}
}

// AttentionBuffers are the working buffers of Attention.Forward for tokens
// rows: QKV holds rows×QKV.Out floats, Ctx rows×Heads×HeadDim, and Scores
// n×n floats for the longest sequence n.
type AttentionBuffers struct {
	QKV, Ctx, Scores []float32
	// Pool parallelises the projections (nil: the calling goroutine).
	Pool *kernels.Pool

	// obs, when set, receives the probabilities of layer layer (see
	// Observer); it selects the materialising path.
	obs   Observer
	layer int
}

// Buffers takes the buffers for a batch of rows tokens whose longest
// sequence has maxN tokens from slots first, first+1 and first+2 of s.
func (a *Attention) Buffers(s *Scratch, first, rows, maxN int) AttentionBuffers {
	return AttentionBuffers{
		QKV:    s.Buf(first, rows*a.QKV.Out),
		Ctx:    s.Buf(first+1, rows*a.Heads*a.HeadDim),
		Scores: s.Buf(first+2, maxN*maxN),
		Pool:   s.Pool,
		obs:    s.Observer,
		layer:  s.layer,
	}
}

// Forward writes the attention output (before any residual) of the rows
// tokens of x into dst (rows×Out.Out). Sequences are x rows
// starts[i]..starts[i+1]; no token attends across a sequence boundary.
func (a *Attention) Forward(dst, x []float32, starts []int, buf AttentionBuffers) {
	if rows := a.context(x, starts, buf); rows > 0 {
		a.Out.ForwardParallel(buf.Pool, dst, buf.Ctx, rows, nil)
	}
}

// ForwardAdd is Forward adding the output to dst instead of overwriting it:
// the residual connection fused into the output projection. dst may alias
// x, since x is consumed by the QKV projection before dst is written.
func (a *Attention) ForwardAdd(dst, x []float32, starts []int, buf AttentionBuffers) {
	if rows := a.context(x, starts, buf); rows > 0 {
		a.Out.ForwardAdd(buf.Pool, dst, buf.Ctx, rows)
	}
}

// context computes the attention context (before the output projection)
// of x into buf.Ctx and returns the number of rows.
func (a *Attention) context(x []float32, starts []int, buf AttentionBuffers) int {
	rows := starts[len(starts)-1]
	if rows == 0 {
		return 0
	}
	if buf.obs != nil {
		return a.contextObserved(x, starts, buf)
	}
	a.QKV.ForwardParallel(buf.Pool, buf.QKV, x, rows, nil)
	ld := a.QKV.Out
	hd := a.HeadDim
	cd := a.Heads * hd
	group := a.Heads / a.KVHeads
	kOff := a.Heads * hd
	vOff := kOff + a.KVHeads*hd
	for s := 0; s+1 < len(starts); s++ {
		o, n := starts[s], starts[s+1]-starts[s]
		if n == 0 {
			continue
		}
		seq := buf.QKV[o*ld : (o+n)*ld]
		if a.QK != nil {
			a.QK.TransformQK(seq, seq[kOff:], ld, n, a.Heads, a.KVHeads, hd)
		}
		sc := buf.Scores[:n*n]
		for h := 0; h < a.Heads; h++ {
			a.headProbs(sc, seq, ld, h, n)
			v := seq[vOff+(h/group)*hd:]
			kernels.SgemmNN(n, hd, n, 1, sc, n, v, ld, 0, buf.Ctx[o*cd+h*hd:], cd)
		}
	}
	return rows
}
