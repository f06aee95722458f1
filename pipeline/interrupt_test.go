package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
)

// cancellingModel cancels a context at its after-th encoder batch and
// counts the batches that start after that.
type cancellingModel struct {
	*encoder.Model
	after        int32
	cancel       context.CancelFunc
	calls, later atomic.Int32
}

func (m *cancellingModel) EmbedBatch(ctx context.Context, b *encoder.Batch, dst []float32) error {
	switch n := m.calls.Add(1); {
	case n == m.after:
		m.cancel()
	case n > m.after:
		m.later.Add(1)
	}
	return m.Model.EmbedBatch(ctx, b, dst)
}

// TestInterruptStopsEncoding cancels a run at its third encoder batch with
// many small chunks read ahead: encoding stops at once — no batch of the
// chunks in flight starts afterwards, where the run used to finish every
// chunk it had read — the run says it was interrupted, and resuming gives
// the output of an uninterrupted run.
func TestInterruptStopsEncoding(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, 600, 600)
	ctx, cancel := context.WithCancel(context.Background())
	m := &cancellingModel{Model: loadTinyBert(t), after: 3, cancel: cancel}
	out := filepath.Join(dir, "out.jsonl")
	cfg := Config{Inputs: []Input{{Path: in}}, Output: out, ChunkRows: 10, BatchSize: 10, Workers: 1}
	sum, err := Run(ctx, m, cfg)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if n := m.later.Load(); n != 0 {
		t.Fatalf("%d encoder batches started after the interruption (chunks in flight: %d)", n, inflightChunks(1))
	}
	if sum.Stopped == nil || !sum.Stopped.Interrupted {
		t.Fatalf("summary stopped = %+v", sum.Stopped)
	}
	if _, err := Run(context.Background(), m.Model, cfg); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(dir, "ref.jsonl")
	if _, err := Run(context.Background(), m.Model, Config{Inputs: []Input{{Path: in}}, Output: ref, ChunkRows: 10}); err != nil {
		t.Fatal(err)
	}
	sameOutput(t, out, ref)
}
