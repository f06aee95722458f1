package encoder

import (
	"context"

	"github.com/embedpipe/embedpipe/encoder/arch"
)

// Observer receives the token states between layers, the attention
// probabilities of every head and the expert routes of a forward pass; see
// arch.Observer for the calls and the lifetime of their slices.
type Observer = arch.Observer

// Mask is the attention mask of a layer an Observer is shown: causal,
// sliding-window or neither.
type Mask = arch.Mask

// EmbedBatchObserved is EmbedBatch with obs watching the forward pass: the
// embeddings it writes are EmbedBatch's, and the numbers obs receives are
// those that produced them. It encodes on the calling goroutine whatever
// WithThreads says, and attention materialises its probabilities, so it is
// slower than EmbedBatch; ordinary calls pay nothing for it. obs must not
// be nil.
func (m *Model) EmbedBatchObserved(ctx context.Context, b *Batch, obs Observer, dst []float32) error {
	if obs == nil {
		return m.EmbedBatch(ctx, b, dst)
	}
	return m.embedBatch(ctx, b, dst, obs)
}

// hiddenStates runs the encoder over b, observed by obs (nil: none), into
// s.hidden, grown to len(b.IDs)×Hidden floats, and returns them.
func (m *Model) hiddenStates(ctx context.Context, s *callScratch, b *Batch, obs Observer) ([]float32, error) {
	s.hidden = growF32(s.hidden, len(b.IDs)*m.info.Hidden)
	if err := m.forwardObserved(ctx, s, b, s.hidden, obs); err != nil {
		return nil, err
	}
	return s.hidden, nil
}

// withHidden runs the encoder over b (nothing for an empty batch) into
// pooled scratch and calls f with it, the scratch's hidden holding the
// final hidden states: the prologue of the calls that pool or score them.
func (m *Model) withHidden(ctx context.Context, b *Batch, f func(s *callScratch) error) error {
	if b.Len() == 0 {
		return nil
	}
	s := m.getScratch()
	defer m.scratch.Put(s)
	if _, err := m.hiddenStates(ctx, s, b, nil); err != nil {
		return err
	}
	return f(s)
}

// forwardObserved is forward, or with obs set a single-goroutine forward
// pass that reports to obs: an Observer numbers sequences within one
// Forward call, so the batch must not be cut across workers.
func (m *Model) forwardObserved(ctx context.Context, s *callScratch, b *Batch, hidden []float32, obs Observer) error {
	if obs == nil {
		return m.forward(ctx, s, b, hidden)
	}
	s.arch.Pool = nil
	s.arch.Observer = obs
	// The scratch goes back to the pool for ordinary calls.
	defer func() { s.arch.Observer = nil }()
	return m.encForward(ctx, &s.arch, b.IDs, b.types(), b.starts(), hidden)
}
