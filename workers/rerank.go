package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/micro"
)

// RerankSubject is the subject of the rerank endpoint of the service.
const RerankSubject = "embedpipe.rerank"

// Reranker scores (query, document) pairs with a cross-encoder;
// *encoder.Model satisfies it. Score writes one logit and one score (after
// the model's activation) per pair into the caller's buffers; it must be
// safe for concurrent use.
type Reranker interface {
	NumLabels() int
	Score(ctx context.Context, queries, documents []string, logits, scores []float32) error
}

// rerankJob is one queued rerank request.
type rerankJob struct {
	req micro.Request
	r   schemas.RerankRequest
}

// addRerank registers the rerank endpoint and starts its executors, which
// take requests from a bounded queue (cfg.Queue; beyond it a request is
// refused with code 503) and score each request's documents in one call.
func (s *Service) addRerank() error {
	if n := s.cfg.Reranker.NumLabels(); n != 1 {
		return fmt.Errorf("workers: the rerank endpoint needs a one-label cross-encoder, the model has %d labels", n)
	}
	s.rerankQ = make(chan *rerankJob, s.cfg.Queue)
	err := s.svc.AddEndpoint("rerank", micro.HandlerFunc(s.handleRerank), micro.WithEndpointSubject(s.cfg.RerankSubject),
		micro.WithEndpointMetadata(map[string]string{"request_schema": schemas.RerankRequestV1, "reply_schema": schemas.RerankReplyV1}),
		micro.WithEndpointPendingLimits(s.cfg.Queue*2, 256<<20))
	if err != nil {
		return fmt.Errorf("workers: adding rerank endpoint: %w", err)
	}
	for range s.cfg.Executors {
		s.wg.Add(1)
		go s.reranker()
	}
	return nil
}

func (s *Service) handleRerank(req micro.Request) {
	r, err := schemas.DecodeRerankRequest(req.Data(), s.cfg.MaxTexts)
	if err != nil {
		code := CodeBadRequest
		if errors.Is(err, schemas.ErrTooLarge) {
			code = CodeTooLarge
		}
		_ = req.Error(code, err.Error(), nil)
		return
	}
	select {
	case s.rerankQ <- &rerankJob{req: req, r: r}:
	default:
		_ = req.Error(CodeOverloaded, ErrOverloaded.Error()+": request queue full", nil)
	}
}

// reranker owns one rerank executor until Stop.
func (s *Service) reranker() {
	defer s.wg.Done()
	for {
		select {
		case j := <-s.rerankQ:
			s.rerank(j)
		case <-s.stop:
			return
		}
	}
}

// rerank answers one request: scores and logits in document order, and
// the order of the documents by descending score.
func (s *Service) rerank(j *rerankJob) {
	n := len(j.r.Documents)
	queries := make([]string, n)
	for i := range queries {
		queries[i] = j.r.Query
	}
	rep := schemas.RerankReply{Schema: schemas.RerankReplyV1, Model: s.cfg.Model,
		Scores: make([]float32, n), Logits: make([]float32, n), Order: make([]int, n)}
	if err := s.cfg.Reranker.Score(context.Background(), queries, j.r.Documents, rep.Logits, rep.Scores); err != nil {
		_ = j.req.Error(CodeInternal, err.Error(), nil)
		return
	}
	for i := range rep.Order {
		rep.Order[i] = i
	}
	sort.SliceStable(rep.Order, func(a, b int) bool { return rep.Scores[rep.Order[a]] > rep.Scores[rep.Order[b]] })
	body, err := json.Marshal(rep)
	if err != nil {
		_ = j.req.Error(CodeInternal, err.Error(), nil)
		return
	}
	if err := j.req.Respond(body, micro.WithHeaders(micro.Headers{"Content-Type": []string{"application/json"}})); err != nil {
		s.log.Warn("rerank reply failed", "err", err)
	}
}
