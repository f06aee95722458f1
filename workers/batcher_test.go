package workers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
)

// TestBatcherSharesBatches sends requests from many goroutines and checks
// that each gets exactly the vectors of embedding it alone, whatever it was
// batched with: half of them ask for unnormalized vectors
// (Batch.Unnormalized), which must not leak into the others' batches.
func TestBatcherSharesBatches(t *testing.T) {
	m := tinyBERT(t)
	b := NewBatcher(m, BatcherConfig{BatchTokens: 256, MaxWait: 5 * time.Millisecond})
	defer b.Close()
	dim := m.Dim()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seqs encoder.Batch
			texts := []string{fmt.Sprintf("request %d first text", g), fmt.Sprintf("and a second, longer text for request %d", g)}
			for _, s := range texts {
				m.AppendTo(&seqs, s, "", 0)
			}
			seqs.Unnormalized = g%2 == 1
			got := make([]float32, 2*dim)
			if err := b.Embed(context.Background(), &seqs, got); err != nil {
				errs <- err
				return
			}
			want := make([]float32, 2*dim)
			if err := m.EmbedBatch(context.Background(), &seqs, want); err != nil {
				errs <- err
				return
			}
			if !slices.Equal(got, want) {
				errs <- fmt.Errorf("request %d: batched vectors differ from a lone batch", g)
			}
			if n := norm(got[:dim]); seqs.Unnormalized == (math.Abs(n-1) < 1e-4) {
				errs <- fmt.Errorf("request %d (unnormalized %v): norm %v", g, seqs.Unnormalized, n)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// blockingEmbedder holds every batch until release is closed.
type blockingEmbedder struct {
	IDEmbedder
	started chan struct{}
	release chan struct{}
}

func (e *blockingEmbedder) EmbedBatch(ctx context.Context, b *encoder.Batch, dst []float32) error {
	select {
	case e.started <- struct{}{}:
	default:
	}
	<-e.release
	return e.IDEmbedder.EmbedBatch(ctx, b, dst)
}

func TestBatcherBoundedQueueAndDrain(t *testing.T) {
	m := tinyBERT(t)
	e := &blockingEmbedder{IDEmbedder: m, started: make(chan struct{}, 1), release: make(chan struct{})}
	b := NewBatcher(e, BatcherConfig{Queue: 3, MaxWait: time.Millisecond, BatchTokens: 1})
	var seqs encoder.Batch
	m.AppendTo(&seqs, "hello", "", 0)
	dst := func() []float32 { return make([]float32, m.Dim()) }
	done := make(chan error, 8)
	submit := func(ctx context.Context) error {
		return b.Submit(&BatchRequest{Ctx: ctx, Seqs: &seqs, Dst: dst(), Done: func(err error) { done <- err }})
	}
	if err := submit(nil); err != nil {
		t.Fatal(err)
	}
	<-e.started // the executor holds the first request; the queue is empty
	ctx, cancel := context.WithCancel(context.Background())
	for i := range 3 {
		c := context.Background()
		if i == 0 {
			c = ctx
		}
		if err := submit(c); err != nil {
			t.Fatalf("queued request %d: %v", i, err)
		}
	}
	if err := submit(nil); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("beyond the queue: %v, want ErrOverloaded", err)
	}
	cancel() // the first queued request gives up before its batch
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	close(e.release)
	<-closed
	var ok, cancelled int
	for range 4 {
		switch err := <-done; {
		case err == nil:
			ok++
		case errors.Is(err, context.Canceled):
			cancelled++
		default:
			t.Fatal(err)
		}
	}
	if ok != 3 || cancelled != 1 {
		t.Fatalf("drain: %d done, %d cancelled; want 3 and 1", ok, cancelled)
	}
	if err := submit(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// norm is the L2 norm of v.
func norm(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss)
}
