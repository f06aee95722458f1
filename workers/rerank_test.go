package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/micro"
)

// TestRerankEndpoint serves tiny-reranker on an embedded NATS server: the
// reply's scores and logits, in document order, are those of the model
// scoring the pairs directly, and order sorts them descending; a request
// without documents is refused with code 400.
func TestRerankEndpoint(t *testing.T) {
	rows := refs.ReadJSONL[refs.PairRow](t, "tiny-reranker.jsonl.gz")
	m, err := encoder.Load(refs.ModelDir(t, "tiny-reranker"))
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t, "")
	nc, _ := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Reranker: m, Model: "tiny-reranker"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	// Eight reference passages under one query, compared with the model
	// scoring them directly (whose fidelity TestFidelityReranker checks).
	req := schemas.RerankRequest{Query: rows[5].Query}
	for _, r := range rows[:8] {
		req.Documents = append(req.Documents, r.Passage)
	}
	b, _ := json.Marshal(req)
	msg, err := nc.Request(RerankSubject, b, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("error %s %s", code, msg.Header.Get(micro.ErrorHeader))
	}
	var rep schemas.RerankReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		t.Fatal(err)
	}
	n := len(req.Documents)
	if len(rep.Scores) != n || len(rep.Logits) != n || len(rep.Order) != n || rep.Schema != schemas.RerankReplyV1 {
		t.Fatalf("reply %+v for %d documents", rep, n)
	}
	direct, logits := make([]float32, n), make([]float32, n)
	queries := make([]string, n)
	for i := range queries {
		queries[i] = req.Query
	}
	if err := m.Score(context.Background(), queries, req.Documents, logits, direct); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if rep.Scores[i] != direct[i] || rep.Logits[i] != logits[i] {
			t.Errorf("document %d: score %v logit %v, direct %v %v", i, rep.Scores[i], rep.Logits[i], direct[i], logits[i])
		}
	}
	sorted := slices.Clone(rep.Order)
	slices.Sort(sorted)
	for i := range sorted {
		if sorted[i] != i {
			t.Fatalf("order %v is not a permutation", rep.Order)
		}
	}
	for k := 1; k < n; k++ {
		if rep.Scores[rep.Order[k]] > rep.Scores[rep.Order[k-1]] {
			t.Fatalf("order %v does not sort scores %v descending", rep.Order, rep.Scores)
		}
	}
	msg, err = nc.Request(RerankSubject, []byte(`{"query":"q","documents":[]}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != CodeBadRequest {
		t.Errorf("empty documents: code %q, want %s", code, CodeBadRequest)
	}
}

// countingScorer is a cross-encoder that counts the pairs it scores.
type countingScorer struct {
	*encoder.Model
	pairs, calls atomic.Int64
}

func (c *countingScorer) ScoreBatch(ctx context.Context, b *encoder.Batch, logits, scores []float32) error {
	c.pairs.Add(int64(b.Len()))
	c.calls.Add(1)
	return c.Model.ScoreBatch(ctx, b, logits, scores)
}

// TestRerankSharesBatcher serves the rerank endpoint on a Batcher shared
// with another transport (as serve shares it with the HTTP API's
// /rerank): NATS requests and direct Batcher.Score calls, sent together,
// are all scored through the shared batcher's model, in fewer calls than
// requests, each with the scores of scoring its pairs alone; stopping the
// service leaves the shared batcher running.
func TestRerankSharesBatcher(t *testing.T) {
	rows := refs.ReadJSONL[refs.PairRow](t, "tiny-reranker.jsonl.gz")
	m, err := encoder.Load(refs.ModelDir(t, "tiny-reranker"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingScorer{Model: m}
	b := NewBatcher(cs, BatcherConfig{MaxWait: 20 * time.Millisecond})
	defer b.Close()
	srv := natstest.Start(t, "")
	nc, _ := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Reranker: cs, Batcher: b, Model: "tiny-reranker"})
	if err != nil {
		t.Fatal(err)
	}
	const reqs = 12
	var wg sync.WaitGroup
	errs := make(chan error, 2*reqs)
	for g := range reqs {
		wg.Add(2)
		docs := []string{rows[2*g].Passage, rows[2*g+1].Passage}
		query := rows[2*g].Query
		direct := make([]float32, 2)
		if err := m.Score(context.Background(), []string{query, query}, docs, nil, direct); err != nil {
			t.Fatal(err)
		}
		go func() { // over NATS
			defer wg.Done()
			body, _ := json.Marshal(schemas.RerankRequest{Query: query, Documents: docs})
			msg, err := nc.Request(RerankSubject, body, 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			var rep schemas.RerankReply
			if err := json.Unmarshal(msg.Data, &rep); err != nil || !slices.Equal(rep.Scores, direct) {
				errs <- fmt.Errorf("NATS request %d: %s, want scores %v", g, msg.Data, direct)
			}
		}()
		go func() { // the other transport, straight to the batcher
			defer wg.Done()
			var seqs encoder.Batch
			for _, d := range docs {
				m.AppendPairTo(&seqs, query, d, 0)
			}
			got := make([]float32, 2)
			if err := b.Score(context.Background(), &seqs, nil, got); err != nil || !slices.Equal(got, direct) {
				errs <- fmt.Errorf("direct request %d: %v %v, want %v", g, got, err, direct)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d requests (%d pairs) scored in %d batches", 2*reqs, cs.pairs.Load(), cs.calls.Load())
	if got := cs.pairs.Load(); got != 4*reqs {
		t.Errorf("the shared model scored %d pairs, want %d (every NATS and direct pair)", got, 4*reqs)
	}
	if calls := cs.calls.Load(); calls >= 2*reqs {
		t.Errorf("%d batches for %d requests: nothing was batched together", calls, 2*reqs)
	}
	svc.Stop()
	var seqs encoder.Batch
	m.AppendPairTo(&seqs, "q", "d", 0)
	if err := b.Score(context.Background(), &seqs, nil, make([]float32, 1)); err != nil {
		t.Errorf("shared batcher after the service stopped: %v", err)
	}
}
