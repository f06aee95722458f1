package embed

import (
	"context"
	"fmt"
	"sync"

	"github.com/embedpipe/embedpipe/encoder"
)

// Embedder turns texts or token ids into vectors with one model and one
// resolved Config. It is safe for concurrent use; its working memory comes
// from a pool, so steady-state calls do not allocate.
type Embedder struct {
	m       Model
	c       Config
	scratch sync.Pool // *scratch
}

// scratch is the working memory of one call.
type scratch struct {
	b   encoder.Batch
	vec []float32
}

// New resolves o against m and returns an Embedder over the result.
func New(m Model, o Options) (*Embedder, error) {
	c, err := Resolve(m, o)
	if err != nil {
		return nil, err
	}
	return &Embedder{m: m, c: c}, nil
}

// Config returns the resolved options.
func (e *Embedder) Config() Config { return e.c }

// Model returns the model the Embedder runs.
func (e *Embedder) Model() Model { return e.m }

// Dim is the number of floats of one output vector (the truncated width;
// the hidden size for TokenEmbeddings, per token).
func (e *Embedder) Dim() int { return e.c.Dim }

func (e *Embedder) getScratch() *scratch {
	if s, ok := e.scratch.Get().(*scratch); ok {
		return s
	}
	return &scratch{}
}

// TokenizeTo appends to dst the ids the model sees for text: the prompt
// prepended, special tokens added, truncated at MaxLength (on the left with
// TruncateLeft).
func (e *Embedder) TokenizeTo(dst []int32, text string) (ids []int32, truncated bool) {
	if e.c.TruncateLeft {
		return e.m.TokenizeLeftTo(dst, text, e.c.Prompt, e.c.MaxLength)
	}
	return e.m.TokenizeTo(dst, text, e.c.Prompt, e.c.MaxLength)
}

// Prepare sets what b must carry for the Config before it is encoded, by
// EmbedIDs or by a shared batcher: the pooling skip of the prompt and
// whether the model's Normalize module is left out.
func (e *Embedder) Prepare(b *encoder.Batch) {
	b.PoolSkip, b.Unnormalized = e.c.PoolSkip, e.c.Unnormalized
}

// EmbedIDs writes the vectors of the sequences of b (tokenized with
// TokenizeTo) into dst, b.Len()×Dim() floats row-major: encoded, pooled with
// the prompt's tokens left out when the model asks for it, truncated to Dim
// and normalized when the Config says so. It calls Prepare(b) and
// otherwise only reads b; dst is the caller's. A batch is encoded as one forward pass:
// cut batches with Config.Fits.
func (e *Embedder) EmbedIDs(ctx context.Context, dst []float32, b *encoder.Batch) error {
	if e.c.Output != SentenceEmbedding {
		return fmt.Errorf("%w: EmbedIDs writes sentence embeddings, the output is %s", ErrOptions, e.c.Output)
	}
	n, dim, md := b.Len(), e.c.Dim, e.c.ModelDim
	if len(dst) < n*dim {
		return fmt.Errorf("%w: %d floats for %d vectors of %d", ErrBuffer, len(dst), n, dim)
	}
	e.Prepare(b)
	if dim == md && !e.c.Normalize {
		return e.m.EmbedBatch(ctx, b, dst[:n*dim])
	}
	s := e.getScratch()
	defer e.scratch.Put(s)
	if cap(s.vec) < n*md {
		s.vec = make([]float32, n*md, n*md+n*md/4)
	}
	full := s.vec[:n*md]
	if err := e.m.EmbedBatch(ctx, b, full); err != nil {
		return err
	}
	return e.FinishTo(dst, full, n)
}

// FinishTo turns n of the model's pooled vectors (full, ModelDim floats
// each, as EmbedBatch writes them for sequences tokenized by TokenizeTo in
// a batch that Prepare set up) into output vectors in dst (Dim floats each):
// the Matryoshka truncation and the one normalization. It is the last step
// of EmbedIDs, for callers that encode through a shared batcher.
func (e *Embedder) FinishTo(dst, full []float32, n int) error {
	dim, md := e.c.Dim, e.c.ModelDim
	if len(dst) < n*dim || len(full) < n*md {
		return fmt.Errorf("%w: %d and %d floats for %d vectors of %d from %d", ErrBuffer, len(dst), len(full), n, dim, md)
	}
	for i := 0; i < n; i++ {
		out := dst[i*dim : (i+1)*dim]
		copy(out, full[i*md:i*md+dim])
		if e.c.Normalize {
			encoder.Normalize(out)
		}
	}
	return nil
}

// TokenEmbeddingsTo writes the contextual vector of every token of b into
// dst (b.Tokens()×Dim() floats), for the TokenEmbeddings output.
func (e *Embedder) TokenEmbeddingsTo(ctx context.Context, dst []float32, b *encoder.Batch) error {
	if need := b.Tokens() * e.m.Hidden(); len(dst) < need {
		return fmt.Errorf("%w: %d floats for %d tokens of %d", ErrBuffer, len(dst), b.Tokens(), e.m.Hidden())
	}
	b.PoolSkip = 0
	return e.m.TokenEmbeddingsBatch(ctx, b, dst[:b.Tokens()*e.m.Hidden()])
}

// Stats counts what an Embed call did.
type Stats struct {
	// Tokens is the number of tokens encoded, prompts and special tokens
	// included; Truncated the number of texts cut at MaxLength.
	Tokens, Truncated int
	// Batches is the number of forward passes.
	Batches int
}

// Embed tokenizes texts and writes their vectors into dst (len(texts)×Dim()
// floats, row-major), in batches cut by Config.Fits. It blocks until every
// vector is written, an error occurs or ctx is done; an error names the
// texts of the batch that failed.
func (e *Embedder) Embed(ctx context.Context, dst []float32, texts []string) (Stats, error) {
	var st Stats
	dim := e.c.Dim
	if len(dst) < len(texts)*dim {
		return st, fmt.Errorf("%w: %d floats for %d texts of %d", ErrBuffer, len(dst), len(texts), dim)
	}
	s := e.getScratch()
	defer e.scratch.Put(s)
	b := &s.b
	for first := 0; first < len(texts); {
		b.Reset()
		i := first
		for ; i < len(texts); i++ {
			before := len(b.IDs)
			ids, trunc := e.TokenizeTo(b.IDs, texts[i])
			if !e.c.Fits(b.Len(), before, len(ids)-before) {
				b.IDs = ids[:before]
				break
			}
			if len(ids) == before {
				return st, fmt.Errorf("%w: text %d gives no tokens", encoder.ErrInput, i)
			}
			b.IDs = ids
			b.Starts = append(b.Starts, len(ids))
			if trunc {
				st.Truncated++
			}
		}
		if err := e.EmbedIDs(ctx, dst[first*dim:i*dim], b); err != nil {
			return st, fmt.Errorf("texts %d..%d: %w", first, i-1, err)
		}
		st.Tokens += b.Tokens()
		st.Batches++
		first = i
	}
	return st, nil
}

// QuantizeTo writes the n vectors of src (Dim() floats each) into dst in
// the Config's precision, RowBytes() bytes a row. r overrides the Config's
// ranges (int8 and uint8 need one of them).
func (e *Embedder) QuantizeTo(dst []byte, src []float32, n int, r *Ranges) error {
	if r == nil {
		r = e.c.Ranges
	}
	return e.c.Precision.QuantizeTo(dst, src, n, e.c.Dim, r)
}

// RowBytes is the size of one quantized output vector.
func (e *Embedder) RowBytes() int { return e.c.Precision.RowBytes(e.c.Dim) }

// SpanModel is what EmbedSpans needs of a model besides Model;
// *encoder.Model satisfies it. EmbedSpansBatch only reads b and spans and
// writes into dst, which the caller owns.
type SpanModel interface {
	EmbedSpansBatch(ctx context.Context, b *encoder.Batch, spans []encoder.Span, dst []float32) error
}

var _ SpanModel = (*encoder.Model)(nil)

// EmbedSpans writes one vector per span of b into dst (len(spans)×Dim()
// floats, row-major): b is encoded once and each span's contextual token
// vectors are pooled by the model's pooling (encoder.Model.EmbedSpansBatch:
// late chunking), then truncated and normalized as EmbedIDs does. It calls
// Prepare(b); the prompt's pooling skip does not apply to spans, which
// name their tokens. The error wraps ErrOptions when the model cannot pool
// spans.
func (e *Embedder) EmbedSpans(ctx context.Context, dst []float32, b *encoder.Batch, spans []encoder.Span) error {
	if e.c.Output != SentenceEmbedding {
		return fmt.Errorf("%w: EmbedSpans writes sentence embeddings, the output is %s", ErrOptions, e.c.Output)
	}
	sm, ok := e.m.(SpanModel)
	if !ok {
		return fmt.Errorf("%w: the model cannot pool token spans", ErrOptions)
	}
	n, dim, md := len(spans), e.c.Dim, e.c.ModelDim
	if len(dst) < n*dim {
		return fmt.Errorf("%w: %d floats for %d vectors of %d", ErrBuffer, len(dst), n, dim)
	}
	e.Prepare(b)
	if dim == md && !e.c.Normalize {
		return sm.EmbedSpansBatch(ctx, b, spans, dst[:n*dim])
	}
	s := e.getScratch()
	defer e.scratch.Put(s)
	if cap(s.vec) < n*md {
		s.vec = make([]float32, n*md, n*md+n*md/4)
	}
	full := s.vec[:n*md]
	if err := sm.EmbedSpansBatch(ctx, b, spans, full); err != nil {
		return err
	}
	return e.FinishTo(dst, full, n)
}
