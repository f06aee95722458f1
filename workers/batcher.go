package workers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/metrics"
)

// IDEmbedder embeds tokenized sequences: the pooled vectors (normalized as
// the model says) of every sequence of b, row-major into dst with stride
// Dim(). *encoder.Model implements it.
type IDEmbedder interface {
	Dim() int
	EmbedBatch(ctx context.Context, b *encoder.Batch, dst []float32) error
}

// PairScorer scores sentence pairs with a cross-encoder: ScoreBatch writes
// NumLabels() raw logits and as many scores (after the model's activation)
// per sequence of b, built by encoder.Model.AppendPairTo with its token
// types, into the caller's logits and scores (either may be nil). It must
// be safe for concurrent use; *encoder.Model implements it.
type PairScorer interface {
	NumLabels() int
	ScoreBatch(ctx context.Context, b *encoder.Batch, logits, scores []float32) error
}

// SparseEmbedder computes sparse (SPLADE) vectors: EmbedSparseBatch appends
// one vector per sequence of b to dst, with the entries opt selects. It
// must be safe for concurrent use; *encoder.Model implements it.
type SparseEmbedder interface {
	EmbedSparseBatch(ctx context.Context, b *encoder.Batch, opt encoder.SparseOptions, dst *encoder.SparseVectors) error
}

// BatchOp is what a BatchRequest asks of the model. Requests are batched
// only with requests of the same op (and the same pooling skip,
// normalization or sparse options): one encoder call computes one thing.
type BatchOp uint8

// The ops.
const (
	// OpEmbed computes pooled vectors into Dst (the zero value).
	OpEmbed BatchOp = iota
	// OpScore scores pairs into Logits and Scores (the model must be a
	// PairScorer).
	OpScore
	// OpSparse appends sparse vectors to Sparse (the model must be a
	// SparseEmbedder).
	OpSparse
)

// String names the op.
func (o BatchOp) String() string {
	switch o {
	case OpEmbed:
		return "embed"
	case OpScore:
		return "score"
	case OpSparse:
		return "sparse"
	}
	return fmt.Sprintf("BatchOp(%d)", uint8(o))
}

// BatcherConfig configures a Batcher.
type BatcherConfig struct {
	// BatchTokens is the token budget of one encoder call across
	// requests; default 8192. A request larger than it runs alone.
	BatchTokens int
	// MaxWait is how long the first request of a batch waits for company;
	// default 2 ms.
	MaxWait time.Duration
	// Queue bounds the requests waiting for the encoder; Submit refuses
	// one beyond it with ErrOverloaded. Default 4096.
	Queue int
	// Executors is the number of batches encoded at once; default 1.
	Executors int
	// Metrics, when not nil, records queue depth and wait, batch sizes and
	// inference time.
	Metrics *metrics.Metrics
}

// BatchRequest is one request's tokenized sequences on their way through a
// Batcher. The caller owns Seqs and the destinations (Dst, Logits, Scores,
// Sparse) and must not touch them until Done is called.
type BatchRequest struct {
	// Ctx, when done before the request's batch starts, drops the request
	// (Done gets ctx's error). Nil means never.
	Ctx context.Context
	// Op is what to compute; the zero value is OpEmbed.
	Op BatchOp
	// Seqs holds the sequences, as a Batch (prompts and special tokens
	// already in; for OpScore, pairs with their token types).
	Seqs *encoder.Batch
	// Dst receives, for OpEmbed, Seqs.Len()×Dim() floats.
	Dst []float32
	// Logits and Scores receive, for OpScore, Seqs.Len()×NumLabels()
	// floats each: the raw logits and the scores after the model's
	// activation. Either may be nil, not both.
	Logits, Scores []float32
	// Sparse, for OpSparse, gets one vector appended per sequence, in
	// order, with the entries SparseOptions selects (TopK).
	Sparse        *encoder.SparseVectors
	SparseOptions encoder.SparseOptions
	// Done is called once, from a batcher goroutine, with nil when the
	// destinations hold the results or with the error that stopped it.
	Done func(error)

	enqueued time.Time
}

// Batcher is the one dynamic batcher of the embedding services: requests
// from every transport (the NATS embed and rerank endpoints, the HTTP API)
// queue here, bounded, and are encoded together — vectors (OpEmbed),
// cross-encoder pairs (OpScore) and sparse vectors (OpSparse) each in
// batches of their own kind. A batch closes when its tokens reach
// BatchTokens or MaxWait has passed since its first request. Since the
// encoder's results do not depend on what else is in a batch, a request
// gets the same bits whatever it was batched with.
type Batcher struct {
	m     IDEmbedder
	cfg   BatcherConfig
	queue chan *BatchRequest
	mu    sync.RWMutex // guards closed against Submit
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	closed bool
}

// NewBatcher starts a batcher over m. Close stops it.
func NewBatcher(m IDEmbedder, cfg BatcherConfig) *Batcher {
	if m == nil {
		panic("workers: NewBatcher needs a model") // a programmer error, at once rather than at the first request
	}
	if cfg.BatchTokens <= 0 {
		cfg.BatchTokens = 8192
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Millisecond
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Executors <= 0 {
		cfg.Executors = 1
	}
	b := &Batcher{m: m, cfg: cfg, queue: make(chan *BatchRequest, cfg.Queue), stop: make(chan struct{})}
	for range cfg.Executors {
		b.wg.Add(1)
		go b.run()
	}
	return b
}

// Dim returns the width of the vectors.
func (b *Batcher) Dim() int { return b.m.Dim() }

// Config returns the configuration, defaults applied.
func (b *Batcher) Config() BatcherConfig { return b.cfg }

// QueueLen returns the requests waiting now.
func (b *Batcher) QueueLen() int { return len(b.queue) }

// Submit queues r without blocking. It returns ErrOverloaded when the queue
// is full and ErrClosed after Close, and an error wrapping
// encoder.ErrUnsupported when the model cannot compute r.Op or
// encoder.ErrInput when r's destinations do not fit; r.Done is then never
// called.
func (b *Batcher) Submit(r *BatchRequest) error {
	if err := b.check(r); err != nil {
		return err
	}
	r.enqueued = time.Now()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.queue <- r:
		b.cfg.Metrics.QueueDepth(1)
		return nil
	default:
		return fmt.Errorf("%w: %d requests queued", ErrOverloaded, b.cfg.Queue)
	}
}

// check validates r for its op before it is queued.
func (b *Batcher) check(r *BatchRequest) error {
	n := r.Seqs.Len()
	switch r.Op {
	case OpEmbed:
		if n*b.m.Dim() > len(r.Dst) {
			return fmt.Errorf("%w: destination holds %d floats, %d sequences need %d", encoder.ErrInput, len(r.Dst), n, n*b.m.Dim())
		}
	case OpScore:
		ps, ok := b.m.(PairScorer)
		if !ok || ps.NumLabels() == 0 {
			return fmt.Errorf("%w: the batcher's model scores no pairs (not a cross-encoder)", encoder.ErrUnsupported)
		}
		if r.Logits == nil && r.Scores == nil {
			return fmt.Errorf("%w: a score request needs Logits or Scores", encoder.ErrInput)
		}
		need := n * ps.NumLabels()
		for _, d := range [][]float32{r.Logits, r.Scores} {
			if d != nil && len(d) < need {
				return fmt.Errorf("%w: destination holds %d floats, %d pairs need %d", encoder.ErrInput, len(d), n, need)
			}
		}
	case OpSparse:
		if _, ok := b.m.(SparseEmbedder); !ok {
			return fmt.Errorf("%w: the batcher's model computes no sparse vectors", encoder.ErrUnsupported)
		}
		if r.Sparse == nil {
			return fmt.Errorf("%w: a sparse request needs Sparse", encoder.ErrInput)
		}
		if r.SparseOptions.TopK < 0 {
			return fmt.Errorf("%w: sparse top-k %d is negative", encoder.ErrInput, r.SparseOptions.TopK)
		}
	default:
		return fmt.Errorf("%w: batch op %v", encoder.ErrInput, r.Op)
	}
	return nil
}

// Embed submits seqs and waits for their vectors in dst. It returns
// ErrOverloaded at once when the queue is full. When ctx ends first, Embed
// still waits for a batch already running (it is writing dst) but drops
// one not started.
func (b *Batcher) Embed(ctx context.Context, seqs *encoder.Batch, dst []float32) error {
	return b.wait(&BatchRequest{Ctx: ctx, Seqs: seqs, Dst: dst})
}

// Score submits the pairs seqs (built by encoder.Model.AppendPairTo, token
// types included) and waits for their logits and scores (see PairScorer;
// either may be nil), as Embed waits for vectors. Pairs are batched only
// with other pairs.
func (b *Batcher) Score(ctx context.Context, seqs *encoder.Batch, logits, scores []float32) error {
	return b.wait(&BatchRequest{Ctx: ctx, Op: OpScore, Seqs: seqs, Logits: logits, Scores: scores})
}

// EmbedSparse submits seqs and waits for their sparse vectors, appended to
// dst with the entries opt selects, as Embed waits for vectors. Requests
// are batched only with sparse requests of the same options.
func (b *Batcher) EmbedSparse(ctx context.Context, seqs *encoder.Batch, opt encoder.SparseOptions, dst *encoder.SparseVectors) error {
	return b.wait(&BatchRequest{Ctx: ctx, Op: OpSparse, Seqs: seqs, Sparse: dst, SparseOptions: opt})
}

// wait submits r and waits for it to be done.
func (b *Batcher) wait(r *BatchRequest) error {
	done := make(chan error, 1)
	r.Done = func(err error) { done <- err }
	if err := b.Submit(r); err != nil {
		return err
	}
	return <-done
}

// Close stops taking requests, lets the queued ones finish (the graceful
// drain of the services built on it) and stops the executors.
func (b *Batcher) Close() {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.stop)
		b.wg.Wait()
	})
}

// execScratch is the memory one executor reuses from batch to batch.
type execScratch struct {
	seqs           encoder.Batch
	vecs           []float32
	logits, scores []float32
	sparse         encoder.SparseVectors
}

// run is one executor: it gathers queued requests into batches until Close
// and the queue is empty.
func (b *Batcher) run() {
	defer b.wg.Done()
	var (
		batch []*BatchRequest
		x     execScratch
	)
	for {
		var first *BatchRequest
		select {
		case first = <-b.queue:
		case <-b.stop:
			// Drain what is left, then stop.
			select {
			case first = <-b.queue:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
		cost := first.Seqs.Tokens()
		timer := time.NewTimer(b.cfg.MaxWait)
	gather:
		for cost < b.cfg.BatchTokens {
			select {
			case r := <-b.queue:
				batch = append(batch, r)
				cost += r.Seqs.Tokens()
			case <-timer.C:
				break gather
			case <-b.stop:
				break gather
			}
		}
		timer.Stop()
		b.encode(batch, &x)
	}
}

// groupKey is what the requests encoded together must share.
type groupKey struct {
	op     BatchOp
	skip   int
	raw    bool
	sparse encoder.SparseOptions
}

func keyOf(r *BatchRequest) groupKey {
	k := groupKey{op: r.Op, skip: r.Seqs.PoolSkip, raw: r.Seqs.Unnormalized}
	if r.Op == OpSparse {
		k.sparse = r.SparseOptions
	}
	return k
}

func (b *Batcher) encode(batch []*BatchRequest, x *execScratch) {
	met := b.cfg.Metrics
	met.QueueDepth(-len(batch))
	live := batch[:0]
	now := time.Now()
	for _, r := range batch {
		if r.Ctx != nil && r.Ctx.Err() != nil {
			r.Done(r.Ctx.Err())
			continue
		}
		met.Queued(now.Sub(r.enqueued))
		live = append(live, r)
	}
	// Requests are encoded with the requests of the same op only, and
	// among those with the same pooling skip (include_prompt false,
	// Batch.PoolSkip), the same normalization (Batch.Unnormalized) and the
	// same sparse options: one batch, one computation.
	for len(live) > 0 {
		key := keyOf(live[0])
		group, rest := live[:0:0], live[:0:0]
		seqs := &x.seqs
		seqs.Reset()
		for _, r := range live {
			if keyOf(r) != key {
				rest = append(rest, r)
				continue
			}
			for i := range r.Seqs.Len() {
				appendSeq(seqs, r.Seqs, i)
			}
			group = append(group, r)
		}
		seqs.PoolSkip, seqs.Unnormalized = key.skip, key.raw
		switch key.op {
		case OpScore:
			b.scoreGroup(group, x, now)
		case OpSparse:
			b.sparseGroup(group, x, key.sparse, now)
		default:
			b.embedGroup(group, x, now)
		}
		live = rest
	}
}

// appendSeq appends sequence i of src to dst with its token types, which
// pairs need.
func appendSeq(dst, src *encoder.Batch, i int) {
	a, e := src.Starts[i], src.Starts[i+1]
	if len(src.Types) > 0 || len(dst.Types) > 0 {
		for len(dst.Types) < len(dst.IDs) {
			dst.Types = append(dst.Types, 0)
		}
		if len(src.Types) > 0 {
			dst.Types = append(dst.Types, src.Types[a:e]...)
		} else {
			for range e - a {
				dst.Types = append(dst.Types, 0)
			}
		}
	}
	dst.IDs = append(dst.IDs, src.IDs[a:e]...)
	dst.Starts = append(dst.Starts, len(dst.IDs))
}

// embedGroup encodes x.seqs, the sequences of group end to end, and hands
// each request its vectors.
func (b *Batcher) embedGroup(group []*BatchRequest, x *execScratch, start time.Time) {
	dim := b.m.Dim()
	n := x.seqs.Len()
	x.vecs = growFloats(x.vecs, n*dim)
	err := b.m.EmbedBatch(context.Background(), &x.seqs, x.vecs)
	b.cfg.Metrics.Batch(n, x.seqs.Tokens(), len(group), time.Since(start))
	off := 0
	for _, r := range group {
		k := r.Seqs.Len()
		if err == nil {
			copy(r.Dst, x.vecs[off*dim:(off+k)*dim])
		}
		off += k
		r.Done(err)
	}
}

// scoreGroup scores x.seqs, the pairs of group end to end, and hands each
// request its logits and scores.
func (b *Batcher) scoreGroup(group []*BatchRequest, x *execScratch, start time.Time) {
	ps := b.m.(PairScorer) // checked by Submit
	nl := ps.NumLabels()
	n := x.seqs.Len()
	x.logits, x.scores = growFloats(x.logits, n*nl), growFloats(x.scores, n*nl)
	err := ps.ScoreBatch(context.Background(), &x.seqs, x.logits, x.scores)
	b.cfg.Metrics.Batch(n, x.seqs.Tokens(), len(group), time.Since(start))
	off := 0
	for _, r := range group {
		k := r.Seqs.Len()
		if err == nil {
			if r.Logits != nil {
				copy(r.Logits, x.logits[off*nl:(off+k)*nl])
			}
			if r.Scores != nil {
				copy(r.Scores, x.scores[off*nl:(off+k)*nl])
			}
		}
		off += k
		r.Done(err)
	}
}

// sparseGroup computes the sparse vectors of x.seqs, the sequences of
// group end to end, and appends each request's to its Sparse.
func (b *Batcher) sparseGroup(group []*BatchRequest, x *execScratch, opt encoder.SparseOptions, start time.Time) {
	se := b.m.(SparseEmbedder) // checked by Submit
	n := x.seqs.Len()
	x.sparse.Reset()
	err := se.EmbedSparseBatch(context.Background(), &x.seqs, opt, &x.sparse)
	b.cfg.Metrics.Batch(n, x.seqs.Tokens(), len(group), time.Since(start))
	off := 0
	for _, r := range group {
		k := r.Seqs.Len()
		if err == nil {
			dst := r.Sparse
			if len(dst.Starts) == 0 {
				dst.Starts = append(dst.Starts, 0)
			}
			for i := off; i < off+k; i++ {
				idx, val := x.sparse.Vector(i)
				dst.Indices = append(dst.Indices, idx...)
				dst.Values = append(dst.Values, val...)
				dst.Starts = append(dst.Starts, len(dst.Indices))
			}
		}
		off += k
		r.Done(err)
	}
}

// growFloats returns b with length n, reallocated when too small.
func growFloats(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
