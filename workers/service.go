package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Service error codes, sent in the Nats-Service-Error-Code header.
const (
	CodeBadRequest  = "400"
	CodeTooLarge    = "413"
	CodeInternal    = "500"
	CodeOverloaded  = "503"
	CodeUnavailable = "504"
)

// ServiceConfig configures the embed service. At least one of Embedder
// (the embed endpoint) and Reranker (the rerank endpoint) must be set.
type ServiceConfig struct {
	Embedder Embedder
	// Reranker, when set, serves the rerank endpoint on RerankSubject
	// (default RerankSubject) with the same queue bound and executors.
	Reranker      Reranker
	RerankSubject string
	// Model names the model in replies.
	Model string
	// Version is the micro service version (semver).
	Version string
	// Subject of the embed endpoint; default EmbedSubject.
	Subject string
	// QueueGroup lets several service instances share requests; default
	// "embedpipe".
	QueueGroup string
	// BatchTokens is the token budget of one encoder call across requests
	// (estimated from text length before tokenizing); default 8192.
	BatchTokens int
	// MaxWait is how long the first request of a batch waits for company;
	// default 2 ms.
	MaxWait time.Duration
	// MaxTexts bounds the texts of one request; default 1024.
	MaxTexts int
	// Queue bounds the requests waiting for the encoder; a request beyond
	// it is refused with code 503. Default 4096.
	Queue int
	// Executors is the number of batches encoded at once; default 1.
	Executors int
	Logger    *slog.Logger
}

// Service is the NATS micro service "embedpipe" with an "embed" endpoint.
// Requests are queued (bounded) and batched together dynamically: a batch
// closes when its estimated tokens reach BatchTokens or MaxWait has passed
// since its first request. Each reply holds its request's vectors in the
// request's order.
type Service struct {
	cfg   ServiceConfig
	svc   micro.Service
	nc    *nats.Conn
	queue chan *embedJob
	// rerankQ holds the requests of the rerank endpoint, when it is on.
	rerankQ chan *rerankJob
	stop    chan struct{}
	wg      sync.WaitGroup
	log     *slog.Logger
	once    sync.Once
}

type embedJob struct {
	req      micro.Request
	texts    []string
	prompt   string
	truncate int
	arrow    bool
	cost     int
	enqueued time.Time
}

// StartService registers the service on nc and starts its batchers. Stop
// ends them.
func StartService(nc *nats.Conn, cfg ServiceConfig) (*Service, error) {
	if cfg.Embedder == nil && cfg.Reranker == nil {
		return nil, errors.New("workers: the service needs an Embedder or a Reranker")
	}
	if cfg.Subject == "" {
		cfg.Subject = EmbedSubject
	}
	if cfg.RerankSubject == "" {
		cfg.RerankSubject = RerankSubject
	}
	if cfg.QueueGroup == "" {
		cfg.QueueGroup = "embedpipe"
	}
	if cfg.Version == "" {
		cfg.Version = "0.1.0"
	}
	if cfg.BatchTokens <= 0 {
		cfg.BatchTokens = 8192
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Millisecond
	}
	if cfg.MaxTexts <= 0 {
		cfg.MaxTexts = 1024
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Executors <= 0 {
		cfg.Executors = 1
	}
	s := &Service{cfg: cfg, nc: nc, queue: make(chan *embedJob, cfg.Queue), stop: make(chan struct{})}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	meta := map[string]string{"model": cfg.Model}
	if cfg.Embedder != nil {
		meta["dim"] = fmt.Sprint(cfg.Embedder.Dim())
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     cfg.Version,
		Description: "embedpipe text embeddings",
		QueueGroup:  cfg.QueueGroup,
		Metadata:    meta,
	})
	if err != nil {
		return nil, fmt.Errorf("workers: adding micro service: %w", err)
	}
	s.svc = svc
	if cfg.Embedder != nil {
		err = svc.AddEndpoint("embed", micro.HandlerFunc(s.handle), micro.WithEndpointSubject(cfg.Subject),
			micro.WithEndpointMetadata(map[string]string{"request_schema": schemas.EmbedRequestV1, "reply_schema": schemas.EmbedReplyV1}),
			micro.WithEndpointPendingLimits(cfg.Queue*2, 256<<20))
		if err != nil {
			svc.Stop()
			return nil, fmt.Errorf("workers: adding embed endpoint: %w", err)
		}
		for range cfg.Executors {
			s.wg.Add(1)
			go s.batcher()
		}
	}
	if cfg.Reranker != nil {
		if err := s.addRerank(); err != nil {
			close(s.stop)
			s.wg.Wait()
			svc.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Stop unregisters the service and waits for the batchers; queued requests
// are answered with code 504.
func (s *Service) Stop() {
	s.once.Do(func() {
		_ = s.svc.Stop()
		close(s.stop)
		s.wg.Wait()
		for {
			select {
			case j := <-s.queue:
				_ = j.req.Error(CodeUnavailable, "service stopping", nil)
			case j := <-s.rerankQ:
				_ = j.req.Error(CodeUnavailable, "service stopping", nil)
			default:
				return
			}
		}
	})
}

// Info returns the micro service info (id, endpoints).
func (s *Service) Info() micro.Info { return s.svc.Info() }

// estimateTokens guesses the tokens of text before tokenizing: about one per
// four bytes, plus the special tokens.
func estimateTokens(t string) int { return len(t)/4 + 2 }

func (s *Service) handle(req micro.Request) {
	r, err := schemas.DecodeEmbedRequest(req.Data(), s.cfg.MaxTexts)
	if err != nil {
		code := CodeBadRequest
		if errors.Is(err, schemas.ErrTooLarge) {
			code = CodeTooLarge
		}
		_ = req.Error(code, err.Error(), nil)
		return
	}
	if r.Normalize != nil && !*r.Normalize {
		_ = req.Error(CodeBadRequest, "normalize=false is not supported: the service returns normalized vectors", nil)
		return
	}
	if r.TruncateDim > s.cfg.Embedder.Dim() {
		_ = req.Error(CodeBadRequest, fmt.Sprintf("truncate_dim %d exceeds the model's %d dimensions", r.TruncateDim, s.cfg.Embedder.Dim()), nil)
		return
	}
	prompt := r.Prompt
	if r.PromptName != "" {
		if r.Prompt != "" {
			_ = req.Error(CodeBadRequest, "set only one of prompt and prompt_name", nil)
			return
		}
		p, err := s.cfg.Embedder.Prompt(r.PromptName)
		if err != nil {
			_ = req.Error(CodeBadRequest, err.Error(), nil)
			return
		}
		prompt = p
	}
	j := &embedJob{req: req, texts: r.Texts, prompt: prompt, truncate: r.TruncateDim, arrow: r.Format == "arrow", enqueued: time.Now()}
	for _, t := range r.Texts {
		j.cost += estimateTokens(t)
	}
	select {
	case s.queue <- j:
	default:
		_ = req.Error(CodeOverloaded, ErrOverloaded.Error()+": request queue full", nil)
	}
}

// batcher owns one executor: it gathers queued requests into batches and
// answers them, until Stop.
func (s *Service) batcher() {
	defer s.wg.Done()
	var batch []*embedJob
	var vecs []float32
	for {
		var first *embedJob
		select {
		case first = <-s.queue:
		case <-s.stop:
			return
		}
		batch = append(batch[:0], first)
		cost := first.cost
		timer := time.NewTimer(s.cfg.MaxWait)
	gather:
		for cost < s.cfg.BatchTokens {
			select {
			case j := <-s.queue:
				batch = append(batch, j)
				cost += j.cost
			case <-timer.C:
				break gather
			case <-s.stop:
				break gather
			}
		}
		timer.Stop()
		vecs = s.run(batch, vecs)
	}
}

// run embeds a batch: consecutive requests with the same prompt share one
// encoder call.
func (s *Service) run(batch []*embedJob, vecs []float32) []float32 {
	dim := s.cfg.Embedder.Dim()
	ctx := context.Background()
	for lo := 0; lo < len(batch); {
		hi := lo + 1
		n := len(batch[lo].texts)
		for hi < len(batch) && batch[hi].prompt == batch[lo].prompt {
			n += len(batch[hi].texts)
			hi++
		}
		texts := make([]string, 0, n)
		for _, j := range batch[lo:hi] {
			texts = append(texts, j.texts...)
		}
		if cap(vecs) < n*dim {
			vecs = make([]float32, n*dim)
		}
		vecs = vecs[:n*dim]
		tokens, err := s.cfg.Embedder.EmbedTo(ctx, vecs, texts, batch[lo].prompt, 0)
		off := 0
		for _, j := range batch[lo:hi] {
			if err != nil {
				_ = j.req.Error(CodeInternal, err.Error(), nil)
				continue
			}
			k := len(j.texts)
			s.reply(j, vecs[off*dim:(off+k)*dim], dim, tokens*k/max(n, 1))
			off += k
		}
		lo = hi
	}
	return vecs
}

func (s *Service) reply(j *embedJob, v []float32, dim, tokens int) {
	n := len(j.texts)
	out := dim
	if j.truncate > 0 && j.truncate < dim {
		out = j.truncate
		v = truncateRenorm(append([]float32(nil), v...), n, dim, out)
	}
	var body []byte
	var hdr micro.Headers
	if j.arrow {
		b, err := arrowVectors(v, n, out)
		if err != nil {
			_ = j.req.Error(CodeInternal, err.Error(), nil)
			return
		}
		body = b
		hdr = micro.Headers{"Content-Type": []string{"application/vnd.apache.arrow.stream"}}
	} else {
		rep := schemas.EmbedReply{Schema: schemas.EmbedReplyV1, Model: s.cfg.Model, Dim: out, Tokens: tokens,
			Embeddings: make([][]float32, n)}
		for i := range n {
			rep.Embeddings[i] = v[i*out : (i+1)*out]
		}
		b, err := json.Marshal(rep)
		if err != nil {
			_ = j.req.Error(CodeInternal, err.Error(), nil)
			return
		}
		body = b
		hdr = micro.Headers{"Content-Type": []string{"application/json"}}
	}
	if mp := s.nc.MaxPayload(); mp > 0 && int64(len(body)) > mp-1024 {
		_ = j.req.Error(CodeTooLarge, fmt.Sprintf("reply of %d bytes exceeds the server's max payload %d: send fewer texts or format arrow", len(body), mp), nil)
		return
	}
	if err := j.req.Respond(body, micro.WithHeaders(hdr)); err != nil {
		s.log.Warn("embed reply failed", "err", err)
	}
}

// arrowVectors encodes n vectors of dim floats as an Arrow IPC stream with
// one fixed_size_list<float32>[dim] column "embedding".
func arrowVectors(v []float32, n, dim int) ([]byte, error) {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "embedding", Type: arrow.FixedSizeListOf(int32(dim), arrow.PrimitiveTypes.Float32)}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	lb := b.Field(0).(*array.FixedSizeListBuilder)
	vb := lb.ValueBuilder().(*array.Float32Builder)
	for i := range n {
		lb.Append(true)
		vb.AppendValues(v[i*dim:(i+1)*dim], nil)
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("workers: arrow reply: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("workers: arrow reply: %w", err)
	}
	return buf.Bytes(), nil
}
