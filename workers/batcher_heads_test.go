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
	"github.com/embedpipe/embedpipe/internal/refs"
)

// TestBatcherScoresPairs sends the reference pairs of tiny-reranker from
// 16 goroutines, a few pairs a request, through one Batcher: each request
// gets exactly the logits and scores of scoring its pairs alone (token
// types kept through the shared batch, long pairs truncated longest_first
// as the reference), within 2e-5 of the reference. Embedding requests on
// the same batcher fail with ErrUnsupported without touching the pairs.
func TestBatcherScoresPairs(t *testing.T) {
	rows := refs.ReadJSONL[refs.PairRow](t, "tiny-reranker.jsonl.gz")
	m, err := encoder.Load(refs.ModelDir(t, "tiny-reranker"))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatcher(m, BatcherConfig{BatchTokens: 2048, MaxWait: 5 * time.Millisecond})
	defer b.Close()
	const per = 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst float64
	var batched int
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := g * per; lo < len(rows); lo += 16 * per {
				hi := min(lo+per, len(rows))
				var seqs encoder.Batch
				for _, r := range rows[lo:hi] {
					if _, err := m.AppendPairTo(&seqs, r.Query, r.Passage, 0); err != nil {
						errs <- err
						return
					}
				}
				if lo%(7*per) == 0 { // an embedding request beside the pairs
					var one encoder.Batch
					m.AppendTo(&one, "not a pair", "", 0)
					if err := b.Embed(context.Background(), &one, make([]float32, m.Dim())); !errors.Is(err, encoder.ErrUnsupported) {
						errs <- fmt.Errorf("embedding on a cross-encoder: %v, want ErrUnsupported", err)
					}
				}
				n := seqs.Len()
				logits, scores := make([]float32, n), make([]float32, n)
				if err := b.Score(context.Background(), &seqs, logits, scores); err != nil {
					errs <- err
					return
				}
				wl, ws := make([]float32, n), make([]float32, n)
				if err := m.ScoreBatch(context.Background(), &seqs, wl, ws); err != nil {
					errs <- err
					return
				}
				if !slices.Equal(logits, wl) || !slices.Equal(scores, ws) {
					errs <- fmt.Errorf("pairs %d..%d: batched %v %v, alone %v %v", lo, hi-1, logits, scores, wl, ws)
				}
				mu.Lock()
				for k, r := range rows[lo:hi] {
					worst = math.Max(worst, math.Max(math.Abs(float64(logits[k])-r.Logit), math.Abs(float64(scores[k])-r.Score)))
				}
				batched += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d pairs through the batcher, worst diff to the reference %.3g", batched, worst)
	if batched != len(rows) || worst > 2e-5 {
		t.Errorf("%d of %d pairs, worst diff %.3g (bound 2e-5)", batched, len(rows), worst)
	}
	if err := b.Score(context.Background(), &encoder.Batch{}, nil, nil); !errors.Is(err, encoder.ErrInput) {
		t.Errorf("score without destinations: %v, want ErrInput", err)
	}
	if err := b.Submit(&BatchRequest{Op: OpScore, Seqs: &encoder.Batch{IDs: []int32{1}, Starts: []int{0, 1}}, Scores: nil, Logits: []float32{}}); !errors.Is(err, encoder.ErrInput) {
		t.Errorf("short destination: %v, want ErrInput", err)
	}
}

// TestBatcherSparse sends tiny-splade requests with and without a top-k
// from 8 goroutines through one Batcher: each request gets the vectors of
// EmbedSparseBatch on its texts alone with its own options, bit for bit,
// whatever it was batched with.
func TestBatcherSparse(t *testing.T) {
	rows := refs.ReadJSONL[refs.SparseRow](t, "tiny-splade.jsonl.gz")
	m, err := encoder.Load(refs.ModelDir(t, "tiny-splade"))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatcher(m, BatcherConfig{BatchTokens: 4096, MaxWait: 5 * time.Millisecond})
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for req := g; req < 48; req += 8 {
				var seqs encoder.Batch
				for _, r := range rows[req*4 : req*4+4] {
					seqs.Add(r.InputIDs)
				}
				opt := encoder.SparseOptions{TopK: []int{0, 3, 20}[req%3]}
				var got, want encoder.SparseVectors
				if err := b.EmbedSparse(context.Background(), &seqs, opt, &got); err != nil {
					errs <- err
					return
				}
				if err := m.EmbedSparseBatch(context.Background(), &seqs, opt, &want); err != nil {
					errs <- err
					return
				}
				if got.Len() != 4 || !slices.Equal(got.Indices, want.Indices) || !slices.Equal(got.Values, want.Values) || !slices.Equal(got.Starts, want.Starts) {
					errs <- fmt.Errorf("request %d (top-k %d): batched vectors differ from a lone batch", req, opt.TopK)
				}
				for i := range got.Len() {
					if idx, _ := got.Vector(i); opt.TopK > 0 && len(idx) > opt.TopK {
						errs <- fmt.Errorf("request %d: %d entries for top-k %d", req, len(idx), opt.TopK)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := b.EmbedSparse(context.Background(), &encoder.Batch{}, encoder.SparseOptions{TopK: -1}, &encoder.SparseVectors{}); !errors.Is(err, encoder.ErrInput) {
		t.Errorf("negative top-k: %v, want ErrInput", err)
	}
}
