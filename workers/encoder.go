package workers

import (
	"context"
	"sync"

	"github.com/embedpipe/embedpipe/encoder"
)

// ModelEmbedder adapts an *encoder.Model to Embedder. It is safe for
// concurrent use: each call takes a batch from a pool.
type ModelEmbedder struct {
	M       *encoder.Model
	batches sync.Pool // *encoder.Batch
}

// NewModelEmbedder returns an Embedder over m.
func NewModelEmbedder(m *encoder.Model) *ModelEmbedder { return &ModelEmbedder{M: m} }

// Dim implements Embedder.
func (e *ModelEmbedder) Dim() int { return e.M.Dim() }

// Prompt implements Embedder.
func (e *ModelEmbedder) Prompt(name string) (string, error) { return e.M.Prompt(name) }

// ContentHash implements Embedder.
func (e *ModelEmbedder) ContentHash() string { return e.M.ContentHash() }

// EmbedTo implements Embedder.
func (e *ModelEmbedder) EmbedTo(ctx context.Context, dst []float32, texts []string, prompt string, maxLen int) (int, error) {
	b, _ := e.batches.Get().(*encoder.Batch)
	if b == nil {
		b = new(encoder.Batch)
	}
	defer e.batches.Put(b)
	b.Reset()
	for _, t := range texts {
		if _, err := e.M.AppendTo(b, t, prompt, maxLen); err != nil {
			return 0, err
		}
	}
	if err := e.M.EmbedBatch(ctx, b, dst[:len(texts)*e.M.Dim()]); err != nil {
		return 0, err
	}
	return b.Tokens(), nil
}
