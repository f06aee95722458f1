package pipeline

import (
	"context"
	"errors"
	"math"
	"os"
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
	cfg := Config{Inputs: []Input{{Path: in}}, Output: out, ChunkRows: 10, BatchSize: 10, Workers: 1, Resume: true}
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
	res, err := Run(context.Background(), m.Model, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The resumed run's rates count only what it encoded itself.
	if res.Resumed == 0 || res.ResumedTokens == 0 || res.ResumedTokens >= res.EncodedTokens {
		t.Fatalf("resumed %d rows, %d of %d encoded tokens", res.Resumed, res.ResumedTokens, res.EncodedTokens)
	}
	if got, want := res.TokensPerSec*res.WallSeconds, float64(res.EncodedTokens-res.ResumedTokens); math.Abs(got-want) > 1e-6*want {
		t.Fatalf("tokens/s × wall = %g, want the %g tokens this run encoded", got, want)
	}
	if got, want := res.RowsPerSec*res.WallSeconds, float64(res.RowsIn-res.Resumed); math.Abs(got-want) > 1e-6*want {
		t.Fatalf("rows/s × wall = %g, want the %g rows this run read", got, want)
	}
	ref := filepath.Join(dir, "ref.jsonl")
	if _, err := Run(context.Background(), m.Model, Config{Inputs: []Input{{Path: in}}, Output: ref, ChunkRows: 10}); err != nil {
		t.Fatal(err)
	}
	sameOutput(t, out, ref)
}

// TestInterruptAfterLastRead cancels a run whose few chunks the reader has
// all read by then: the chunks left unfinished make it an interrupted run
// (resumable), not a run missing checkpoints.
func TestInterruptAfterLastRead(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, 30, 30)
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		m := &cancellingModel{Model: loadTinyBert(t), after: 1, cancel: cancel}
		out := filepath.Join(dir, "out.jsonl")
		cfg := Config{Inputs: []Input{{Path: in}}, Output: out, ChunkRows: 10, BatchSize: 10, Workers: 1, Resume: true}
		if _, err := Run(ctx, m, cfg); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("try %d: err = %v, want ErrInterrupted", i, err)
		}
		if _, err := Run(context.Background(), m.Model, cfg); err != nil {
			t.Fatalf("try %d: resume: %v", i, err)
		}
		os.Remove(out)
	}
}
