package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/metrics"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/micro"
)

// RerankSubject is the subject of the rerank endpoint of the service.
const RerankSubject = "embedpipe.rerank"

// Reranker scores (query, document) pairs with a cross-encoder;
// *encoder.Model satisfies it. AppendPairTo tokenizes one pair into b as
// the model reads it (token types included, truncated longest_first at
// maxLen, 0 meaning the model's length); the pairs are scored in the
// batches of a Batcher (PairScorer). It must be safe for concurrent use.
type Reranker interface {
	PairScorer
	AppendPairTo(b *encoder.Batch, query, document string, maxLen int) (truncated bool, err error)
}

// pairModel is a Reranker as the model of a Batcher of its own: it scores
// pairs and embeds no texts.
type pairModel struct{ Reranker }

// Dim is the number of labels, the width of what the model gives.
func (p pairModel) Dim() int { return p.NumLabels() }

// EmbedBatch fails: a cross-encoder embeds no texts.
func (p pairModel) EmbedBatch(context.Context, *encoder.Batch, []float32) error {
	return fmt.Errorf("%w: a cross-encoder embeds no texts", encoder.ErrUnsupported)
}

// sameModel reports whether a and b are the same model value.
func sameModel(a, b any) bool {
	ta := reflect.TypeOf(a)
	return ta != nil && ta == reflect.TypeOf(b) && ta.Comparable() && a == b
}

// addRerank registers the rerank endpoint. Its pairs join the dynamic
// batches of the service's Batcher when that one wraps the Reranker (the
// HTTP API's /rerank shares it in serve), else of a Batcher of its own
// (cfg's BatchTokens, MaxWait, Queue and Executors): bounded, so that a
// request beyond the queue is refused with code 503.
func (s *Service) addRerank() error {
	if n := s.cfg.Reranker.NumLabels(); n != 1 {
		return fmt.Errorf("workers: the rerank endpoint needs a one-label cross-encoder, the model has %d labels", n)
	}
	switch {
	case s.batcher != nil && sameModel(s.batcher.m, s.cfg.Reranker):
		s.pairs = s.batcher
	default:
		s.pairs = NewBatcher(pairModel{s.cfg.Reranker}, BatcherConfig{BatchTokens: s.cfg.BatchTokens, MaxWait: s.cfg.MaxWait,
			Queue: s.cfg.Queue, Executors: s.cfg.Executors, Metrics: s.cfg.Metrics})
		s.ownPairs = true
	}
	q := s.pairs.Config().Queue
	err := s.svc.AddEndpoint("rerank", micro.HandlerFunc(s.handleRerank), micro.WithEndpointSubject(s.cfg.RerankSubject),
		micro.WithEndpointMetadata(map[string]string{"request_schema": schemas.RerankRequestV1, "reply_schema": schemas.RerankReplyV1}),
		micro.WithEndpointPendingLimits(q*2, 256<<20))
	if err != nil {
		return fmt.Errorf("workers: adding rerank endpoint: %w", err)
	}
	return nil
}

// handleRerank tokenizes a request's pairs and submits them to the pair
// batcher, whose executor answers: scores and logits in document order,
// and the order of the documents by descending score.
func (s *Service) handleRerank(req micro.Request) {
	start := time.Now()
	r, err := schemas.DecodeRerankRequest(req.Data(), s.cfg.MaxTexts)
	if err != nil {
		s.failDecode(req, start, err)
		return
	}
	n := len(r.Documents)
	s.cfg.Metrics.Request(n)
	seqs := new(encoder.Batch)
	seqs.Reset()
	lengths := make([]int, n)
	for i, d := range r.Documents {
		n0 := len(seqs.IDs)
		if _, err := s.cfg.Reranker.AppendPairTo(seqs, r.Query, d, 0); err != nil {
			s.fail(req, n, start, metrics.ErrTokenizer, CodeBadRequest, fmt.Sprintf("document %d: %v", i, err))
			return
		}
		lengths[i] = len(seqs.IDs) - n0
	}
	s.cfg.Metrics.Tokenized(time.Since(start), lengths...)
	rep := schemas.RerankReply{Schema: schemas.RerankReplyV1, Model: s.cfg.Model, Tokens: seqs.Tokens(),
		Scores: make([]float32, n), Logits: make([]float32, n), Order: make([]int, n)}
	err = s.pairs.Submit(&BatchRequest{Op: OpScore, Seqs: seqs, Logits: rep.Logits, Scores: rep.Scores, Done: func(err error) {
		s.answer(req, n, start, err, func() bool {
			for i := range rep.Order {
				rep.Order[i] = i
			}
			sort.SliceStable(rep.Order, func(a, b int) bool { return rep.Scores[rep.Order[a]] > rep.Scores[rep.Order[b]] })
			body, err := json.Marshal(rep)
			return s.respond(req, body, err, false)
		})
	}})
	s.failSubmit(req, n, start, err)
}
