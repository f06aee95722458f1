package arch

import (
	"math"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// Mask restricts the keys a query attends to within its sequence: the
// zero Mask is bidirectional attention over the whole sequence, Causal lets
// query i see keys 0..i, Window > 0 lets it see keys j with |i-j| <=
// Window/2. It is kernels.Mask, whose Range states the rule.
type Mask = kernels.Mask

// QKTransform rewrites the queries and keys of one sequence in place before
// attention scores are computed: rotary position embeddings, QK-norm. q and
// k point at the first token of the sequence inside the fused QKV buffer,
// whose rows are ld floats apart; the sequence has n tokens, the query part
// of a row holds heads×headDim floats and the key part kvHeads×headDim.
// Implementations must be safe for concurrent use.
type QKTransform interface {
	TransformQK(q, k []float32, ld, n, heads, kvHeads, headDim int)
}

// ScoreBias adds a bias to a tile of the attention scores of one head of
// one sequence (already scaled), before the mask and the softmax: relative
// position biases. The tile holds rows×cols scores with row stride ld; row
// r is query i0+r, column c key j0+c. Fused attention calls it once per
// score tile, so it never sees an n×n matrix. It is kernels.ScoreBias.
type ScoreBias = kernels.ScoreBias

// Attention is multi-head (Heads == KVHeads) or grouped-query scaled
// dot-product self-attention with a fused QKV projection. The scores are
// computed fused, per head and tile (kernels.Attender): working memory
// grows with n·HeadDim, not n², and key blocks the Mask hides from a whole
// tile of queries are skipped. Code that keeps the keys and values of a
// prefix (a KV cache) calls kernels.Attender itself with the prefix as the
// first KV segment and pos0 set to its length.
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
// rows: QKV holds rows×QKV.Out floats, Ctx rows×Heads×HeadDim. Scores, n×n
// floats for the longest sequence n, exists only when the Scratch has an
// Observer (the materialising path); the fused path takes its
// per-goroutine tiles from kernels.GetAttender.
type AttentionBuffers struct {
	QKV, Ctx, Scores []float32
	// Pool parallelises the projections and the heads (nil: the calling
	// goroutine).
	Pool *kernels.Pool

	// obs, when set, receives the probabilities of layer layer (see
	// Observer); it selects the materialising path.
	obs   Observer
	layer int
	job   *attnJob
}

// Buffers takes the buffers for a batch of rows tokens whose longest
// sequence has maxN tokens from slots first, first+1 and first+2 of s.
func (a *Attention) Buffers(s *Scratch, first, rows, maxN int) AttentionBuffers {
	b := AttentionBuffers{
		QKV:   s.Buf(first, rows*a.QKV.Out),
		Ctx:   s.Buf(first+1, rows*a.Heads*a.HeadDim),
		Pool:  s.Pool,
		obs:   s.Observer,
		layer: s.layer,
		job:   &s.attn,
	}
	if s.Observer != nil {
		b.Scores = s.Buf(first+2, maxN*maxN)
	}
	return b
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

// ForwardAfterPrefix is Forward for sequences that all continue one shared
// prefix of pn tokens, whose projected (and QK-transformed) queries, keys
// and values are the first pn rows of prefixQKV, as buf.QKV held them after
// a Forward over the prefix alone. Every sequence's tokens sit at positions
// pn, pn+1, … and attend to the prefix keys, then to their own under the
// Mask: the prefix's keys and values are computed once for the batch. The
// QKTransform, when set, must implement PositionalQK.
func (a *Attention) ForwardAfterPrefix(dst, x []float32, starts []int, prefixQKV []float32, pn int, buf AttentionBuffers) {
	if rows := a.contextAt(x, starts, buf, prefixQKV, pn); rows > 0 {
		a.Out.ForwardParallel(buf.Pool, dst, buf.Ctx, rows, nil)
	}
}

// PositionalQK is a QKTransform that can place a sequence at any position:
// TransformQKAt treats token t of the n as position pos0+t. Attention after
// a cached prefix needs it.
type PositionalQK interface {
	QKTransform
	TransformQKAt(q, k []float32, ld, n, pos0, heads, kvHeads, headDim int)
}

// context computes the attention context (before the output projection)
// of x into buf.Ctx and returns the number of rows.
func (a *Attention) context(x []float32, starts []int, buf AttentionBuffers) int {
	return a.contextAt(x, starts, buf, nil, 0)
}

// contextAt is context for sequences that follow a prefix of pn tokens
// whose QKV rows are prefixQKV (pn 0: none).
func (a *Attention) contextAt(x []float32, starts []int, buf AttentionBuffers, prefixQKV []float32, pn int) int {
	rows := starts[len(starts)-1]
	if rows == 0 {
		return 0
	}
	if buf.obs != nil && pn == 0 {
		return a.contextObserved(x, starts, buf)
	}
	a.QKV.ForwardParallel(buf.Pool, buf.QKV, x, rows, nil)
	ld := a.QKV.Out
	kOff := a.Heads * a.HeadDim
	work := 0
	for s := 0; s+1 < len(starts); s++ {
		o, n := starts[s], starts[s+1]-starts[s]
		if n == 0 {
			continue
		}
		if a.QK != nil {
			seq := buf.QKV[o*ld : (o+n)*ld]
			if pn > 0 {
				a.QK.(PositionalQK).TransformQKAt(seq, seq[kOff:], ld, n, pn, a.Heads, a.KVHeads, a.HeadDim)
			} else {
				a.QK.TransformQK(seq, seq[kOff:], ld, n, a.Heads, a.KVHeads, a.HeadDim)
			}
		}
		work += n * (n + pn)
	}
	j := buf.job
	if j == nil {
		j = new(attnJob)
	}
	j.a, j.starts, j.qkv, j.ctx = a, starts, buf.QKV, buf.Ctx
	j.pqkv, j.pn = prefixQKV, pn
	items := (len(starts) - 1) * a.KVHeads
	// Hand heads to the pool only when there is enough to repay it: about
	// a million multiply-adds of scores.
	if buf.Pool.Threads() > 1 && items > 1 && work*a.Heads*a.HeadDim >= 1<<20 {
		if j.run == nil {
			// A method value allocates; made once per Scratch, it is reused.
			j.run = j.items
		}
		buf.Pool.For(items, 1, j.run)
	} else {
		j.items(0, items)
	}
	j.a, j.starts, j.qkv, j.ctx, j.pqkv = nil, nil, nil, nil, nil
	return rows
}

// attnJob is the fused attention of one Attention.context call, split into
// items (sequence, KV head) that participants of a Pool take in ranges.
type attnJob struct {
	a        *Attention
	starts   []int
	qkv, ctx []float32
	// pqkv holds the QKV rows of a shared prefix of pn tokens that every
	// sequence follows (pn 0: none).
	pqkv []float32
	pn   int
	run  func(lo, hi int)
}

// items computes work items lo..hi-1: item it is KV head it%KVHeads of
// sequence it/KVHeads, with the query heads of its group.
func (j *attnJob) items(lo, hi int) {
	a := j.a
	hd := a.HeadDim
	ld := a.QKV.Out
	cd := a.Heads * hd
	group := a.Heads / a.KVHeads
	kOff := a.Heads * hd
	vOff := kOff + a.KVHeads*hd
	att := kernels.GetAttender()
	defer kernels.PutAttender(att)
	for it := lo; it < hi; it++ {
		s, kv := it/a.KVHeads, it%a.KVHeads
		o, n := j.starts[s], j.starts[s+1]-j.starts[s]
		if n == 0 {
			continue
		}
		seq := j.qkv[o*ld : (o+n)*ld]
		var pre kernels.KV
		if j.pn > 0 {
			pre = kernels.KV{K: j.pqkv[kOff+kv*hd:], V: j.pqkv[vOff+kv*hd:], LD: ld, N: j.pn}
		}
		att.SetKV(hd, pre, kernels.KV{K: seq[kOff+kv*hd:], V: seq[vOff+kv*hd:], LD: ld, N: n})
		for h := kv * group; h < (kv+1)*group; h++ {
			att.Attend(j.ctx[o*cd+h*hd:], cd, seq[h*hd:], ld, n, j.pn, a.Scale, a.Mask, a.Bias, h)
		}
	}
}
