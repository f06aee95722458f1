package workers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/sink"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/metrics"
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

// ServiceConfig configures the embed service. At least one of Encoder
// (the embed endpoint) and Reranker (the rerank endpoint) must be set.
type ServiceConfig struct {
	// Encoder, when set, serves the embed endpoint through the embedding
	// seam (package encoder/embed) with each request's options.
	Encoder embed.Model
	// Reranker, when set, serves the rerank endpoint on RerankSubject
	// (default RerankSubject): its pairs join Batcher's batches when
	// Batcher wraps the Reranker itself, else those of a batcher of its
	// own with the same bounds.
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
	// Batcher, when set, is the dynamic batcher the service shares with
	// other transports (the HTTP API); the service does not close it.
	// Otherwise the service starts its own from BatchTokens, MaxWait,
	// Queue and Executors.
	Batcher *Batcher
	// BatchTokens is the token budget of one encoder call across requests;
	// default 8192.
	BatchTokens int
	// MaxWait is how long the first request of a batch waits for company;
	// default 2 ms.
	MaxWait time.Duration
	// MaxTexts bounds the texts of one request; default 1024.
	MaxTexts int
	// SparseTopK, when positive, keeps the SparseTopK largest weights of
	// each sparse vector of a sparse (SPLADE) Encoder, as embed's
	// --sparse-top-k.
	SparseTopK int
	// Queue bounds the requests waiting for the encoder; a request beyond
	// it is refused with code 503. Default 4096.
	Queue int
	// Executors is the number of batches encoded at once; default 1.
	Executors int
	// Metrics, when not nil, counts the service's requests (api "nats").
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Service is the NATS micro service "embedpipe" with an "embed" endpoint.
// Requests are tokenized as they arrive and join the dynamic batches of a
// Batcher (bounded queue, token budget, max wait). Each reply holds its
// request's vectors in the request's order: dense vectors
// (schemas.EmbedReply), or for a sparse (SPLADE) Encoder sparse ones
// (schemas.SparseEmbedReply).
type Service struct {
	embs    embedders // one Embedder per distinct request options
	cfg     ServiceConfig
	svc     micro.Service
	nc      *nats.Conn
	batcher *Batcher
	own     bool
	// pairs is the batcher of the rerank endpoint's pairs, when it is on:
	// batcher when that one wraps the Reranker, else its own (ownPairs).
	pairs    *Batcher
	ownPairs bool
	log      *slog.Logger
	once     sync.Once
}

// StartService registers the service on nc and starts its batcher unless
// cfg shares one. Stop ends them.
func StartService(nc *nats.Conn, cfg ServiceConfig) (*Service, error) {
	if cfg.Encoder == nil && cfg.Reranker == nil {
		return nil, fmt.Errorf("%w: the service needs an Encoder or a Reranker", ErrBadOptions)
	}
	if cfg.Subject == "" {
		cfg.Subject = EmbedSubject
	}
	if cfg.RerankSubject == "" {
		cfg.RerankSubject = RerankSubject
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Executors <= 0 {
		cfg.Executors = 1
	}
	if cfg.QueueGroup == "" {
		cfg.QueueGroup = "embedpipe"
	}
	if cfg.Version == "" {
		cfg.Version = "0.1.0"
	}
	if cfg.MaxTexts <= 0 {
		cfg.MaxTexts = 1024
	}
	if cfg.SparseTopK < 0 {
		return nil, fmt.Errorf("%w: sparse top-k %d is negative", ErrBadOptions, cfg.SparseTopK)
	}
	s := &Service{cfg: cfg, nc: nc, batcher: cfg.Batcher}
	if s.batcher == nil && cfg.Encoder != nil {
		s.batcher = NewBatcher(cfg.Encoder, BatcherConfig{BatchTokens: cfg.BatchTokens, MaxWait: cfg.MaxWait,
			Queue: cfg.Queue, Executors: cfg.Executors, Metrics: cfg.Metrics})
		s.own = true
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	meta := map[string]string{"model": cfg.Model}
	if cfg.Encoder != nil {
		meta["dim"] = fmt.Sprint(cfg.Encoder.Dim())
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     cfg.Version,
		Description: "embedpipe text embeddings",
		QueueGroup:  cfg.QueueGroup,
		Metadata:    meta,
	})
	if err != nil {
		s.stopBatcher()
		return nil, fmt.Errorf("workers: adding micro service: %w", err)
	}
	s.svc = svc
	if cfg.Encoder != nil {
		q := s.batcher.Config().Queue
		reply := schemas.EmbedReplyV1
		if s.sparse() {
			reply = schemas.SparseEmbedReplyV1
		}
		err = svc.AddEndpoint("embed", micro.HandlerFunc(s.handle), micro.WithEndpointSubject(cfg.Subject),
			micro.WithEndpointMetadata(map[string]string{"request_schema": schemas.EmbedRequestV1, "reply_schema": reply}),
			micro.WithEndpointPendingLimits(q*2, 256<<20))
		if err != nil {
			svc.Stop()
			s.stopBatcher()
			return nil, fmt.Errorf("workers: adding embed endpoint: %w", err)
		}
	}
	if cfg.Reranker != nil {
		if err := s.addRerank(); err != nil {
			svc.Stop()
			s.stopBatcher()
			return nil, err
		}
	}
	return s, nil
}

// sparse reports whether the Encoder is a sparse (SPLADE) model, whose
// embed replies are sparse vectors.
func (s *Service) sparse() bool {
	return s.cfg.Encoder != nil && s.cfg.Encoder.Info().Kind == encoder.KindSparse
}

// stopBatcher closes the batchers the service started, which lets their
// queued requests finish.
func (s *Service) stopBatcher() {
	if s.own && s.batcher != nil {
		s.batcher.Close()
	}
	if s.ownPairs && s.pairs != nil {
		s.pairs.Close()
	}
}

// Stop unregisters the service and, for the batchers that are its own,
// lets the queued embed and rerank requests finish and stops them.
func (s *Service) Stop() {
	s.once.Do(func() {
		_ = s.svc.Stop()
		s.stopBatcher()
	})
}

// Info returns the micro service info (id, endpoints).
func (s *Service) Info() micro.Info { return s.svc.Info() }

func (s *Service) fail(req micro.Request, n int, start time.Time, kind, code, msg string) {
	s.cfg.Metrics.Done("nats", n, start, kind)
	_ = req.Error(code, msg, nil)
}

// failDecode answers a request whose body did not decode: CodeTooLarge
// when it is over the limits, CodeBadRequest otherwise.
func (s *Service) failDecode(req micro.Request, start time.Time, err error) {
	code := CodeBadRequest
	if errors.Is(err, schemas.ErrTooLarge) {
		code = CodeTooLarge
	}
	s.fail(req, 0, start, metrics.ErrValidation, code, err.Error())
}

// failSubmit answers a request of n inputs whose batch the batcher
// refused with err (nil: it took it, and its Done answers).
func (s *Service) failSubmit(req micro.Request, n int, start time.Time, err error) {
	switch {
	case errors.Is(err, ErrOverloaded):
		s.fail(req, n, start, metrics.ErrOverloaded, CodeOverloaded, err.Error()+": request queue full")
	case errors.Is(err, ErrClosed):
		s.fail(req, n, start, metrics.ErrOverloaded, CodeUnavailable, "service stopping")
	case err != nil:
		s.fail(req, n, start, metrics.ErrBackend, CodeInternal, err.Error())
	}
}

// answer is the end of a request of n inputs once its batch is done with
// err: the error as CodeInternal, or the reply sends, and the request is
// recorded in the metrics as done when the reply went out.
func (s *Service) answer(req micro.Request, n int, start time.Time, err error, reply func() bool) {
	if err != nil {
		s.fail(req, n, start, metrics.ErrBackend, CodeInternal, err.Error())
		return
	}
	if reply() {
		s.cfg.Metrics.Done("nats", n, start, "")
	}
}

func (s *Service) handle(req micro.Request) {
	start := time.Now()
	r, err := schemas.DecodeEmbedRequest(req.Data(), s.cfg.MaxTexts)
	if err != nil {
		s.failDecode(req, start, err)
		return
	}
	n := len(r.Texts)
	s.cfg.Metrics.Request(n)
	o, err := RequestOptions(r, s.cfg.Encoder.Info().Normalize)
	sparse := s.sparse()
	if sparse {
		// A sparse model's embedding is its sparse vector; the seam
		// refuses the dense options with it.
		o.Output = embed.SparseEmbedding
	}
	if err != nil {
		s.fail(req, n, start, metrics.ErrValidation, CodeBadRequest, err.Error())
		return
	}
	e, err := s.embs.get(s.cfg.Encoder, o)
	if err != nil {
		s.fail(req, n, start, metrics.ErrValidation, CodeBadRequest, err.Error())
		return
	}
	// The seam tokenizes (prompt, max length) and gives the pooling skip;
	// the shared batcher encodes; the seam truncates, normalizes and
	// quantizes (reply).
	seqs := new(encoder.Batch)
	seqs.Reset()
	e.Prepare(seqs)
	for i, t := range r.Texts {
		before := len(seqs.IDs)
		seqs.IDs, _ = e.TokenizeTo(seqs.IDs, t)
		if len(seqs.IDs) == before {
			s.fail(req, n, start, metrics.ErrTokenizer, CodeBadRequest, fmt.Sprintf("text %d gives no tokens", i))
			return
		}
		seqs.Starts = append(seqs.Starts, len(seqs.IDs))
	}
	lengths := make([]int, n)
	for i := range n {
		lengths[i] = seqs.Starts[i+1] - seqs.Starts[i]
	}
	s.cfg.Metrics.Tokenized(time.Since(start), lengths...)
	var br *BatchRequest
	if sparse {
		sv := new(encoder.SparseVectors)
		br = &BatchRequest{Op: OpSparse, Seqs: seqs, Sparse: sv, SparseOptions: encoder.SparseOptions{TopK: s.cfg.SparseTopK}, Done: func(err error) {
			s.answer(req, n, start, err, func() bool { return s.replySparse(r.Format == "arrow", req, sv, seqs.Tokens()) })
		}}
	} else {
		full := make([]float32, n*e.Config().ModelDim)
		br = &BatchRequest{Seqs: seqs, Dst: full, Done: func(err error) {
			s.answer(req, n, start, err, func() bool { return s.reply(e, r.Format == "arrow", req, full, n, seqs.Tokens()) })
		}}
	}
	err = s.batcher.Submit(br)
	s.failSubmit(req, n, start, err)
}

// reply answers req with n of the model's pooled vectors full, finished
// by the request's Embedder (truncated, normalized, quantized), as JSON or
// Arrow. It reports whether the reply went out.
func (s *Service) reply(e *embed.Embedder, asArrow bool, req micro.Request, full []float32, n, tokens int) bool {
	v := make([]float32, n*e.Dim())
	if err := e.FinishTo(v, full, n); err != nil {
		_ = req.Error(CodeInternal, err.Error(), nil)
		return false
	}
	q, err := quantized(e, v, n)
	if err != nil {
		_ = req.Error(CodeInternal, err.Error(), nil)
		return false
	}
	if asArrow {
		b, err := arrowVectors(q, n)
		return s.respond(req, b, err, true)
	}
	w := q.width()
	rep := schemas.EmbedReply{Schema: schemas.EmbedReplyV1, Model: s.cfg.Model, Dim: w, Tokens: tokens,
		Embeddings: make([][]float32, n)}
	vals := q.values(n)
	for i := range n {
		rep.Embeddings[i] = vals[i*w : (i+1)*w]
	}
	b, err := json.Marshal(rep)
	return s.respond(req, b, err, false)
}

// replySparse answers req with the sparse vectors sv, as JSON
// (schemas.SparseEmbedReply) or Arrow (one column "embedding" of
// struct<indices: list<int32>, values: list<float32>>, as embed writes
// them). It reports whether the reply went out.
func (s *Service) replySparse(asArrow bool, req micro.Request, sv *encoder.SparseVectors, tokens int) bool {
	if asArrow {
		b, err := arrowSparse(sv)
		return s.respond(req, b, err, true)
	}
	rep := schemas.SparseEmbedReply{Schema: schemas.SparseEmbedReplyV1, Model: s.cfg.Model, Dim: s.cfg.Encoder.Dim(), Tokens: tokens,
		Embeddings: make([]schemas.SparseVector, sv.Len())}
	for i := range rep.Embeddings {
		idx, val := sv.Vector(i)
		rep.Embeddings[i] = schemas.SparseVector{Indices: idx, Values: val}
	}
	b, err := json.Marshal(rep)
	return s.respond(req, b, err, false)
}

// respond sends body (or err, when body could not be made) to req, as
// Arrow or JSON, within the server's max payload. It reports whether the
// reply went out.
func (s *Service) respond(req micro.Request, body []byte, err error, asArrow bool) bool {
	if err != nil {
		_ = req.Error(CodeInternal, err.Error(), nil)
		return false
	}
	hdr := micro.Headers{"Content-Type": []string{"application/json"}}
	if asArrow {
		hdr = micro.Headers{"Content-Type": []string{"application/vnd.apache.arrow.stream"}}
	}
	if mp := s.nc.MaxPayload(); mp > 0 && int64(len(body)) > mp-1024 {
		_ = req.Error(CodeTooLarge, fmt.Sprintf("reply of %d bytes exceeds the server's max payload %d: send fewer texts or format arrow", len(body), mp), nil)
		return false
	}
	if err := req.Respond(body, micro.WithHeaders(hdr)); err != nil {
		s.log.Warn("embed reply failed", "err", err)
		return false
	}
	return true
}

// arrowVectors encodes n vectors as an Arrow IPC stream with one column
// "embedding" of the output's sink.VectorType.
func arrowVectors(q qvectors, n int) ([]byte, error) {
	mem := memory.NewGoAllocator()
	col := sink.VectorColumn(q.p, q.dim, n, q.raw, nil)
	defer col.Release()
	return arrowColumn(col, n, mem)
}

// sparseType is the Arrow type of a sparse vector, as embed writes it.
var sparseType = arrow.StructOf(
	arrow.Field{Name: "indices", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
	arrow.Field{Name: "values", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32)},
)

// arrowSparse encodes the sparse vectors sv as an Arrow IPC stream with
// one column "embedding" of sparseType.
func arrowSparse(sv *encoder.SparseVectors) ([]byte, error) {
	mem := memory.NewGoAllocator()
	b := array.NewStructBuilder(mem, sparseType)
	defer b.Release()
	ib, vb := b.FieldBuilder(0).(*array.ListBuilder), b.FieldBuilder(1).(*array.ListBuilder)
	ivals, vvals := ib.ValueBuilder().(*array.Int32Builder), vb.ValueBuilder().(*array.Float32Builder)
	for i := range sv.Len() {
		idx, val := sv.Vector(i)
		b.Append(true)
		ib.Append(true)
		vb.Append(true)
		ivals.AppendValues(idx, nil)
		vvals.AppendValues(val, nil)
	}
	col := b.NewArray()
	defer col.Release()
	return arrowColumn(col, sv.Len(), mem)
}

// arrowColumn encodes the n rows of col as an Arrow IPC stream with the one
// column "embedding".
func arrowColumn(col arrow.Array, n int, mem memory.Allocator) ([]byte, error) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "embedding", Type: col.DataType()}}, nil)
	rec := array.NewRecord(schema, []arrow.Array{col}, int64(n))
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
