package arch

import (
	"context"
	"fmt"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// embedBatch validates a batch with CheckBatch against the vocabulary and
// width of word and maxPos, and gathers the word embeddings of ids into
// dst. It returns the hidden states, dst[:len(ids)×word.Dim], and the
// length of the longest sequence; x is nil for an empty batch, which leaves
// nothing to do.
func embedBatch(word *Embedding, ids []int32, starts []int, dst []float32, maxPos int) (x []float32, maxN int, err error) {
	if err := CheckBatch(ids, starts, dst, word.Dim, word.Rows, maxPos); err != nil {
		return nil, 0, err
	}
	T := len(ids)
	if T == 0 {
		return nil, 0, nil
	}
	// The hidden state lives in dst from the start, so the last layer
	// leaves the result in place without a copy.
	x = dst[:T*word.Dim]
	word.Gather(x, ids)
	return x, longestSeq(starts), nil
}

// longestSeq returns the length of the longest sequence of starts.
func longestSeq(starts []int) int {
	n := 0
	for i := 0; i+1 < len(starts); i++ {
		n = max(n, starts[i+1]-starts[i])
	}
	return n
}

// wordRow returns the row of id in the word embedding table e, or nil when
// id is out of range: the WordEmbedding method of every architecture.
func wordRow(e *Embedding, id int32) []float32 {
	if id < 0 || int(id) >= e.Rows {
		return nil
	}
	return e.Row(int(id))
}

// postNormLayer is one post-norm encoder layer of the BERT family,
// x = LN(x + attn(x)) then x = LN(x + mlp(x)).
type postNormLayer struct {
	attn     *Attention
	attnNorm *Norm
	mlp      *MLP
	outNorm  *Norm
}

// postNormNames are the tensor names of a post-norm layer relative to its
// prefix; only the names differ between BERT and MPNet.
type postNormNames struct {
	q, k, v, attnOut, attnNorm, up, down, outNorm string
}

// loadPostNormLayers loads the c.layers post-norm layers of an encoder
// whose tensors start with p: layer l's with p+"encoder.layer.l.".
func loadPostNormLayers(w Weights, p string, n postNormNames, c bertConfig) ([]postNormLayer, error) {
	layers := make([]postNormLayer, c.layers)
	for l := range layers {
		var err error
		if layers[l], err = loadPostNormLayer(w, fmt.Sprintf("%sencoder.layer.%d.", p, l), n, c); err != nil {
			return nil, err
		}
	}
	return layers, nil
}

// loadPostNormLayer loads the post-norm layer whose tensors start with lp
// and are named by n: the fused QKV and output projections of attention and
// its LayerNorm, the plain MLP and its LayerNorm, all with biases.
func loadPostNormLayer(w Weights, lp string, n postNormNames, c bertConfig) (postNormLayer, error) {
	H := c.hidden
	qkv, err := LoadFusedDense(w, []string{lp + n.q, lp + n.k, lp + n.v}, []int{H, H, H}, H, true)
	if err != nil {
		return postNormLayer{}, err
	}
	out, err := LoadDense(w, lp+n.attnOut, H, H, true)
	if err != nil {
		return postNormLayer{}, err
	}
	an, err := LoadNorm(w, lp+n.attnNorm, LayerNorm, H, c.eps, true)
	if err != nil {
		return postNormLayer{}, err
	}
	up, err := LoadDense(w, lp+n.up, c.inter, H, true)
	if err != nil {
		return postNormLayer{}, err
	}
	down, err := LoadDense(w, lp+n.down, H, c.inter, true)
	if err != nil {
		return postNormLayer{}, err
	}
	on, err := LoadNorm(w, lp+n.outNorm, LayerNorm, H, c.eps, true)
	if err != nil {
		return postNormLayer{}, err
	}
	return postNormLayer{
		attn:     NewAttention(qkv, out, c.heads, c.heads, H/c.heads),
		attnNorm: an,
		mlp:      &MLP{Up: up, Down: down, Act: c.actFn, Inter: c.inter},
		outNorm:  on,
	}, nil
}

// feedForward is the block after attention in a pre-norm layer: a dense MLP
// or a mixture of experts.
type feedForward interface {
	// forward writes the block's output for rows rows of x into dst
	// (rows×hidden), with working buffers from s at slots first and above.
	forward(dst, x []float32, s *Scratch, first, rows int)
}

// denseFF is an MLP as a feedForward.
type denseFF struct{ *MLP }

func (d denseFF) forward(dst, x []float32, s *Scratch, first, rows int) {
	d.MLP.Forward(dst, x, s.Buf(first, d.BufferLen(rows)), rows)
}

// preNormLayer is one pre-norm layer (ModernBERT, Qwen3),
// x += attn(norm(x)) then x += ff(norm(x)).
type preNormLayer struct {
	attnNorm *Norm // nil: identity (ModernBERT's layer 0)
	attn     *Attention
	ffNorm   *Norm
	ff       feedForward
}

// Scratch slots of runPreNorm.
const (
	preSlotNormed = iota
	preSlotOut
	preSlotAttn // three slots: QKV, context, scores
	preSlotFF   = preSlotAttn + 3
)

// runPreNorm runs layers over the T rows of x, whose longest sequence has
// maxN tokens, then final in place, checking ctx between layers.
func runPreNorm(ctx context.Context, s *Scratch, layers []preNormLayer, final *Norm, x []float32, starts []int, T, maxN int) error {
	normed := s.Buf(preSlotNormed, len(x))
	out := s.Buf(preSlotOut, len(x))
	for li := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.observeStates(li, x, starts, len(x)/T)
		l := &layers[li]
		in := x
		if l.attnNorm != nil {
			l.attnNorm.Forward(normed, x, T)
			in = normed
		}
		l.attn.Forward(out, in, starts, l.attn.Buffers(s, preSlotAttn, T, maxN))
		kernels.Add(x, out)
		l.ffNorm.Forward(normed, x, T)
		l.ff.forward(out, normed, s, preSlotFF, T)
		kernels.Add(x, out)
	}
	final.Forward(x, x, T)
	s.observeStates(len(layers), x, starts, len(x)/T)
	return nil
}
