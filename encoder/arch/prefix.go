package arch

import (
	"context"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// A KV prefix cache for causal stacks. Under causal attention a token's
// hidden states depend only on the tokens before it, so when every sequence
// of a batch begins with the same ids — the instruction Qwen3-Embedding
// puts before each query — those ids' states, keys and values are the same
// in every sequence. runPreNormPrefixed computes them once, layer by layer,
// and runs each sequence's remaining tokens (its suffix) at positions
// after the prefix against the prefix's keys and values; the prefix's
// output rows are then copied into every sequence. Only the suffixes pay
// for projections, feed-forward blocks and their own attention.

// MinPrefixTokens is the shortest shared prefix the causal stacks compute
// once per batch instead of once per sequence: below it the copies cost
// about what they save.
const MinPrefixTokens = 4

// Scratch slots of the prefix pass, above every slot a pre-norm layer uses
// (runPreNorm's, and a mixture of experts' five from preSlotFF).
const (
	prefSlotX = iota + 16
	prefSlotNormed
	prefSlotOut
	prefSlotSuffix // the suffixes' hidden states, compacted
	prefSlotAttn   // three slots: QKV (kept for the suffixes), context, scores
)

// sharedPrefix returns the number of leading ids every sequence of the batch
// shares, capped so that each sequence keeps at least one id of its own;
// 0 when the batch has fewer than two sequences.
func sharedPrefix(ids []int32, starts []int) int {
	n := len(starts) - 1
	if n < 2 {
		return 0
	}
	p := starts[1] - starts[0]
	first := ids[starts[0]:starts[1]]
	for i := 1; i < n && p > 0; i++ {
		seq := ids[starts[i]:starts[i+1]]
		p = min(p, len(seq))
		for k := 0; k < p; k++ {
			if seq[k] != first[k] {
				p = k
				break
			}
		}
	}
	for i := 0; i < n; i++ {
		p = min(p, starts[i+1]-starts[i]-1)
	}
	return max(p, 0)
}

// runPreNormPrefixed is runPreNorm over a batch whose sequences (x rows
// starts[i]..starts[i+1], T rows in all) all begin with the same pn tokens
// (pn >= 1, every sequence longer). x holds the embedded tokens and
// receives the final hidden states of every row, as runPreNorm would write
// them. Every attention layer must have a PositionalQK (or no
// QKTransform) and no ScoreBias.
func runPreNormPrefixed(ctx context.Context, s *Scratch, layers []preNormLayer, final *Norm, x []float32, starts []int, pn int) error {
	H := len(x) / starts[len(starts)-1]
	n := len(starts) - 1
	// The prefix rows, once; the suffix rows of every sequence, compacted
	// with their own starts.
	px := s.Buf(prefSlotX, pn*H)
	copy(px, x[:pn*H])
	ts := starts[n] - n*pn
	sx := s.Buf(prefSlotSuffix, ts*H)
	sstarts := s.ints[:0]
	sstarts = append(sstarts, 0)
	maxS := 0
	for i := 0; i < n; i++ {
		o, l := starts[i]+pn, starts[i+1]-starts[i]-pn
		copy(sx[sstarts[i]*H:], x[o*H:(o+l)*H])
		sstarts = append(sstarts, sstarts[i]+l)
		maxS = max(maxS, l)
	}
	s.ints = sstarts
	pstarts := [2]int{0, pn}
	pNormed, pOut := s.Buf(prefSlotNormed, pn*H), s.Buf(prefSlotOut, pn*H)
	normed, out := s.Buf(preSlotNormed, ts*H), s.Buf(preSlotOut, ts*H)
	for li := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := &layers[li]
		// The prefix as a sequence of its own; its QKV rows stay in the
		// buffers for the suffixes' attention.
		pin, sin := px, sx
		if l.attnNorm != nil {
			l.attnNorm.Forward(pNormed, px, pn)
			l.attnNorm.Forward(normed, sx, ts)
			pin, sin = pNormed, normed
		}
		pbuf := l.attn.Buffers(s, prefSlotAttn, pn, pn)
		l.attn.Forward(pOut, pin, pstarts[:], pbuf)
		l.attn.ForwardAfterPrefix(out, sin, sstarts, pbuf.QKV, pn, l.attn.Buffers(s, preSlotAttn, ts, maxS))
		kernels.Add(px, pOut)
		kernels.Add(sx, out)
		l.ffNorm.Forward(pNormed, px, pn)
		l.ff.forward(pOut, pNormed, s, preSlotFF, pn)
		kernels.Add(px, pOut)
		l.ffNorm.Forward(normed, sx, ts)
		l.ff.forward(out, normed, s, preSlotFF, ts)
		kernels.Add(sx, out)
	}
	final.Forward(px, px, pn)
	final.Forward(sx, sx, ts)
	for i := 0; i < n; i++ {
		o := starts[i]
		copy(x[o*H:(o+pn)*H], px)
		copy(x[(o+pn)*H:starts[i+1]*H], sx[sstarts[i]*H:sstarts[i+1]*H])
	}
	return nil
}
