package arch

import "github.com/embedpipe/embedpipe/encoder/kernels"

// Observer receives the intermediate results of one Encoder.Forward call:
// the token states between layers, the attention probabilities of every
// head and the expert routes of mixture-of-experts layers. It exists for
// inspection (embedpipe explain); the numbers it sees are those of the
// forward pass itself, not of a second implementation.
//
// An Observer is set on a Scratch (Scratch.Observer) and is called on the
// goroutine running Forward, synchronously; the slices it receives are
// only valid during the call and must be copied to be kept. Layers are
// numbered from 0.
//
// A nil Observer costs one nil check per layer. With an Observer set,
// attention takes the materialising path (the full n×n probabilities of
// each head), which is what makes the probabilities observable; that cost
// is paid only by the observing call.
type Observer interface {
	// States receives the hidden states of every token of the batch at
	// stage stage: stage l < layers is the input of layer l (stage 0 is the
	// output of the embeddings), stage layers is Forward's output (after
	// any final norm). x holds starts[len(starts)-1] rows of hidden floats.
	States(stage int, x []float32, starts []int, hidden int)
	// Attention receives the probabilities of head head of sequence seq in
	// layer layer: n×n floats, row i the weights query i gives each key,
	// zero where mask forbids. kvHead is the key/value head the head reads
	// (equal to head without grouped-query attention).
	Attention(layer, seq, head, kvHead int, mask Mask, probs []float32, n int)
	// Routes receives the routing of a mixture-of-experts layer: for each of
	// the rows tokens of the batch, k chosen experts and their weights
	// (rows×k, row-major).
	Routes(layer int, experts []int32, weights []float32, k int)
}

// observeStates reports the states of stage to s's Observer, when set, and
// makes stage the layer whose attention and routes are reported next.
// Every architecture calls it before each layer and once after the last.
func (s *Scratch) observeStates(stage int, x []float32, starts []int, hidden int) {
	if s.Observer == nil {
		return
	}
	s.layer = stage
	s.Observer.States(stage, x, starts, hidden)
}

// headProbs computes the attention probabilities of head h of one sequence
// of n tokens into sc (n×n): scaled query·key scores, the score bias, and a
// softmax over the keys the mask lets each query see, zero elsewhere. seq
// is the sequence's fused QKV rows, ld floats apart. It is the reference
// the materialising paths share.
func (a *Attention) headProbs(sc, seq []float32, ld, h, n int) {
	hd := a.HeadDim
	kv := h / (a.Heads / a.KVHeads)
	q := seq[h*hd:]
	k := seq[a.Heads*hd+kv*hd:]
	kernels.SgemmNT(n, n, hd, a.Scale, q, ld, k, ld, 0, sc, n)
	if a.Bias != nil {
		a.Bias.AddScoreBias(sc, n, h, 0, n, 0, n)
	}
	for i := 0; i < n; i++ {
		row := sc[i*n : i*n+n]
		lo, hi := a.Mask.Range(i, n)
		clear(row[:lo])
		kernels.Softmax(row[lo:hi])
		clear(row[hi:])
	}
}

// contextObserved is the attention context of x into buf.Ctx computed with
// materialised probabilities, each head's reported to buf's Observer
// before it weights the values. Its numbers are those of the normal path.
func (a *Attention) contextObserved(x []float32, starts []int, buf AttentionBuffers) int {
	rows := starts[len(starts)-1]
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
			buf.obs.Attention(buf.layer, s, h, h/group, a.Mask, sc, n)
			v := seq[vOff+(h/group)*hd:]
			kernels.SgemmNN(n, hd, n, 1, sc, n, v, ld, 0, buf.Ctx[o*cd+h*hd:], cd)
		}
	}
	return rows
}
