package encoder

import (
	"context"
	"fmt"

	"github.com/embedpipe/embedpipe/encoder/arch"
)

// callScratch is the working memory of one EmbedBatch or Embed call.
type callScratch struct {
	arch   arch.Scratch
	hidden []float32
	acc    []float64
	batch  Batch
	parts  []part

	// Heads: pooled vectors and Dense or classifier outputs (headA,
	// headB), and the vocabulary tiles of a sparse pass.
	headA, headB        []float32
	logits              []float32
	spAcc               []float64
	spMax               []float32
	spEntries, spSorted []spEntry
	spCount, spPos      []int

	// The state of a batch split across workers, valid during forward.
	m        *Model
	ctx      context.Context
	b        *Batch
	out      []float32
	runParts func(lo, hi int)
}

// part is the share of a batch one worker encodes.
type part struct {
	lo, hi int   // sequence range
	starts []int // rebased starts of the range
	arch   arch.Scratch
	err    error
}

func (m *Model) getScratch() *callScratch {
	if s, ok := m.scratch.Get().(*callScratch); ok {
		return s
	}
	return &callScratch{}
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n, n+n/4)
	}
	return b[:n]
}

// checkBatch validates the layout of b before any work is done.
// skip is the pool skip to check the sequence lengths against.
func checkBatch(b *Batch, skip int) error {
	st := b.starts()
	if st[0] != 0 || st[len(st)-1] != len(b.IDs) {
		return fmt.Errorf("%w: batch starts run from %d to %d over %d ids", ErrInput, st[0], st[len(st)-1], len(b.IDs))
	}
	if skip < 0 {
		return fmt.Errorf("%w: negative pool skip %d", ErrInput, skip)
	}
	if len(b.Types) != 0 && len(b.Types) != len(b.IDs) {
		return fmt.Errorf("%w: batch has %d token types for %d ids", ErrInput, len(b.Types), len(b.IDs))
	}
	for i := 0; i+1 < len(st); i++ {
		if st[i+1] <= st[i] {
			if st[i+1] == st[i] {
				return fmt.Errorf("%w: sequence %d of the batch is empty", ErrInput, i)
			}
			return fmt.Errorf("%w: sequence %d of the batch has negative length", ErrInput, i)
		}
		if l := st[i+1] - st[i]; skip >= l {
			return fmt.Errorf("%w: sequence %d of the batch has %d tokens, all of them the prompt's %d that the pooling excludes (include_prompt false): raise the max length or shorten the prompt", ErrInput, i, l, skip)
		}
	}
	return nil
}

// EmbedBatch writes one pooled embedding per sequence of b into dst,
// row-major with stride Dim(): pooled, passed through the model's Dense
// modules, normalised when the model has a Normalize module (unless
// b.Unnormalized). dst must hold b.Len()×Dim() floats. The first
// b.PoolSkip tokens of every sequence are encoded but left out of the
// pooling. Sequences are encoded without padding, so each row depends
// only on its own sequence. Safe for concurrent use; b is only
// read. A sparse encoder or a cross-encoder is refused with ErrUnsupported
// (see EmbedSparseBatch and ScoreBatch).
func (m *Model) EmbedBatch(ctx context.Context, b *Batch, dst []float32) error {
	return m.embedBatch(ctx, b, dst, nil)
}

// embedBatch is EmbedBatch with an optional Observer of the forward pass.
func (m *Model) embedBatch(ctx context.Context, b *Batch, dst []float32, obs Observer) error {
	if m.info.Kind != KindEmbedding {
		return fmt.Errorf("%w: %s is a %s model: %s", ErrUnsupported, m.info.Dir, m.info.Kind, kindHint[m.info.Kind])
	}
	if err := checkBatch(b, b.PoolSkip); err != nil {
		return err
	}
	n, dim := b.Len(), m.info.Dim
	if len(dst) < n*dim {
		return fmt.Errorf("%w: destination holds %d floats, need %d sequences × %d", ErrInput, len(dst), n, dim)
	}
	if n == 0 {
		return nil
	}
	s := m.getScratch()
	defer m.scratch.Put(s)
	if _, err := m.hiddenStates(ctx, s, b, obs); err != nil {
		return err
	}
	st := b.starts()
	return m.poolTo(s, dst, n, func(i int) (lo, hi int) { return st[i], st[i+1] }, b.PoolSkip, b.Unnormalized, "sequence")
}

// poolTo pools n token ranges of s.hidden into dst (n×Dim()): range i is
// tokens [lo, hi) of rng(i), of which the first skip are left out (see
// poolSpec.pool); then the Dense modules and, unless unnormalized, the
// Normalize module. It is the one head of EmbedBatch and EmbedSpansBatch;
// what names a range in errors.
func (m *Model) poolTo(s *callScratch, dst []float32, n int, rng func(i int) (lo, hi int), skip int, unnormalized bool, what string) error {
	dim, h := m.info.Dim, m.info.Hidden
	if cap(s.acc) < h {
		s.acc = make([]float64, h)
	}
	acc := s.acc[:h]
	// With Dense modules the pooled vectors (width pdim) go to scratch and
	// the chain writes dst.
	pooled, pdim := dst, dim
	if len(m.dense) > 0 {
		pdim = h * len(m.pool.modes)
		s.headA = growF32(s.headA, n*pdim)
		pooled = s.headA
	}
	for i := 0; i < n; i++ {
		lo, hi := rng(i)
		m.pool.pool(pooled[i*pdim:(i+1)*pdim], s.hidden[lo*h:hi*h], hi-lo, h, skip, acc)
	}
	if len(m.dense) > 0 {
		s.hidden, s.headB = applyDense(m.dense, dst, pooled, n, s.hidden, s.headB)
	}
	if m.normalize && !unnormalized {
		for i := 0; i < n; i++ {
			Normalize(dst[i*dim : i*dim+dim])
		}
	}
	for i := 0; i < n; i++ {
		if !finite(dst[i*dim : i*dim+dim]) {
			lo, hi := rng(i)
			return fmt.Errorf("%w: %s %d of the batch (%d tokens)", ErrNonFinite, what, i, hi-lo)
		}
	}
	return nil
}

// finite reports whether every value of v is a finite number.
func finite(v []float32) bool {
	for _, x := range v {
		// x-x is 0 for finite x and NaN for NaN and ±Inf.
		if x-x != 0 {
			return false
		}
	}
	return true
}

// TokenEmbeddingsBatch writes the contextual token embeddings of every token
// of b into dst (len(b.IDs)×Hidden(), row-major), before pooling. The
// prompt tokens that b.PoolSkip names are written too.
func (m *Model) TokenEmbeddingsBatch(ctx context.Context, b *Batch, dst []float32) error {
	if err := checkBatch(b, 0); err != nil {
		return err
	}
	if need := len(b.IDs) * m.info.Hidden; len(dst) < need {
		return fmt.Errorf("%w: destination holds %d floats, need %d tokens × %d", ErrInput, len(dst), len(b.IDs), m.info.Hidden)
	}
	if b.Len() == 0 {
		return nil
	}
	s := m.getScratch()
	defer m.scratch.Put(s)
	out := dst[:len(b.IDs)*m.info.Hidden]
	if err := m.forward(ctx, s, b, out); err != nil {
		return err
	}
	st, h := b.starts(), m.info.Hidden
	for i := 0; i < b.Len(); i++ {
		if !finite(out[st[i]*h : st[i+1]*h]) {
			return fmt.Errorf("%w: token embeddings of sequence %d of the batch", ErrNonFinite, i)
		}
	}
	return nil
}

// forward runs the encoder over b into hidden. With worker threads it cuts
// the batch into runs of whole sequences, one per worker, or, with fewer
// sequences than workers, splits the GEMMs instead. Neither can change the
// numbers: no sequence sees another, and GEMM rows are independent. The
// workers serve one call at a time; a call that finds them busy runs on its
// own goroutine rather than wait, so concurrent callers still overlap.
func (m *Model) forward(ctx context.Context, s *callScratch, b *Batch, hidden []float32) error {
	st := b.starts()
	n := b.Len()
	s.arch.Pool = nil
	if m.workers == nil || !m.workersMu.TryLock() {
		return m.encForward(ctx, &s.arch, b.IDs, b.types(), st, hidden)
	}
	defer m.workersMu.Unlock()
	w := min(m.threads, n)
	if w <= 1 {
		s.arch.Pool = m.workers
		err := m.encForward(ctx, &s.arch, b.IDs, b.types(), st, hidden)
		s.arch.Pool = nil
		return err
	}
	// Cut the batch into w runs of consecutive sequences with about equal
	// token counts: the cost of the dense layers is linear in tokens.
	for len(s.parts) < w {
		s.parts = append(s.parts, part{})
	}
	parts := s.parts[:w]
	total := len(b.IDs)
	seq := 0
	for k := range parts {
		p := &parts[k]
		p.lo = seq
		target := total * (k + 1) / w
		for seq < n && (st[seq+1] <= target || seq == p.lo) && n-seq > w-k-1 {
			seq++
		}
		if k == w-1 {
			seq = n
		}
		p.hi = seq
		p.starts = p.starts[:0]
		for i := p.lo; i <= p.hi; i++ {
			p.starts = append(p.starts, st[i]-st[p.lo])
		}
		p.err = nil
	}
	s.m, s.ctx, s.b, s.out = m, ctx, b, hidden
	if s.runParts == nil {
		// A method value allocates; made once per scratch, it is reused.
		s.runParts = s.encodeParts
	}
	m.workers.For(w, 1, s.runParts)
	s.m, s.ctx, s.b, s.out = nil, nil, nil, nil
	for k := range parts {
		if parts[k].err != nil {
			return parts[k].err
		}
	}
	return nil
}

// encodeParts encodes parts lo..hi-1 of the batch set up by forward; it
// runs on the workers of the Model's pool.
func (s *callScratch) encodeParts(lo, hi int) {
	h := s.m.info.Hidden
	st := s.b.starts()
	for k := lo; k < hi; k++ {
		p := &s.parts[k]
		a, z := st[p.lo], st[p.hi]
		var types []int32
		if t := s.b.types(); t != nil {
			types = t[a:z]
		}
		p.err = s.m.encForward(s.ctx, &p.arch, s.b.IDs[a:z], types, p.starts, s.out[a*h:z*h])
	}
}

// encForward runs the encoder, with token types when there are any.
func (m *Model) encForward(ctx context.Context, s *arch.Scratch, ids, types []int32, starts []int, dst []float32) error {
	s.NoPrefixCache = m.noPrefixCache
	if types == nil {
		return m.enc.Forward(ctx, s, ids, starts, dst)
	}
	te, ok := m.enc.(arch.TypedEncoder)
	if !ok {
		for i, t := range types {
			if t != 0 {
				return fmt.Errorf("%w: token %d has token type %d, but model_type %s has no token type embedding", ErrInput, i, t, m.info.ModelType)
			}
		}
		return m.enc.Forward(ctx, s, ids, starts, dst)
	}
	return te.ForwardTyped(ctx, s, ids, types, starts, dst)
}

// embedChunkTokens bounds the tokens Embed encodes per batch, which bounds
// its working memory whatever the number of texts.
const embedChunkTokens = 16384

// Embed tokenizes texts with prompt (a prompt text, not a name: see Prompt;
// pass DefaultPrompt() for the model's default, which Embed does not apply
// by itself) prepended, truncated at MaxSeqLen(), and writes their
// embeddings into dst (len(texts)×Dim()). It batches the texts itself, at
// most about 16k tokens per forward pass.
func (m *Model) Embed(ctx context.Context, texts []string, prompt string, dst []float32) error {
	dim := m.info.Dim
	if len(dst) < len(texts)*dim {
		return fmt.Errorf("%w: destination holds %d floats, need %d texts × %d", ErrInput, len(dst), len(texts), dim)
	}
	return m.inChunks(len(texts), "texts", func(b *Batch, i int) error {
		_, err := m.AppendTo(b, texts[i], prompt, 0)
		return err
	}, func(b *Batch, first, end int) error {
		return m.EmbedBatch(ctx, b, dst[first*dim:end*dim])
	})
}

// inChunks feeds n inputs through a batch in chunks of about
// embedChunkTokens tokens, at least one input each: add appends input i to
// the batch, run processes the chunk of inputs first…end-1 it then holds.
// An error of run names the chunk's inputs (what: "texts", "pairs").
func (m *Model) inChunks(n int, what string, add func(b *Batch, i int) error, run func(b *Batch, first, end int) error) error {
	s := m.getScratch()
	defer m.scratch.Put(s)
	b := &s.batch
	for first := 0; first < n; {
		b.Reset()
		i := first
		for i < n && (i == first || b.Tokens() < embedChunkTokens) {
			if err := add(b, i); err != nil {
				return err
			}
			i++
		}
		if err := run(b, first, i); err != nil {
			return fmt.Errorf("%s %d..%d: %w", what, first, i-1, err)
		}
		first = i
	}
	return nil
}
