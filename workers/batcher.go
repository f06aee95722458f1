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
// Batcher. The caller owns Seqs and Dst and must not touch them until Done
// is called.
type BatchRequest struct {
	// Ctx, when done before the request's batch starts, drops the request
	// (Done gets ctx's error). Nil means never.
	Ctx context.Context
	// Seqs holds the sequences, as a Batch (prompts and special tokens
	// already in).
	Seqs *encoder.Batch
	// Dst receives Seqs.Len()×Dim() floats.
	Dst []float32
	// Done is called once, from a batcher goroutine, with nil when Dst
	// holds the vectors or with the error that stopped it.
	Done func(error)

	enqueued time.Time
}

// Batcher is the one dynamic batcher of the embedding services: requests
// from every transport (the NATS embed endpoint, the HTTP API) queue here,
// bounded, and are encoded together. A batch closes when its tokens reach
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
// is full and ErrClosed after Close; r.Done is then never called.
func (b *Batcher) Submit(r *BatchRequest) error {
	if r.Seqs.Len()*b.m.Dim() > len(r.Dst) {
		return fmt.Errorf("%w: destination holds %d floats, %d sequences need %d", encoder.ErrInput, len(r.Dst), r.Seqs.Len(), r.Seqs.Len()*b.m.Dim())
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

// Embed submits seqs and waits for their vectors in dst. It returns
// ErrOverloaded at once when the queue is full. When ctx ends first, Embed
// still waits for a batch already running (it is writing dst) but drops
// one not started.
func (b *Batcher) Embed(ctx context.Context, seqs *encoder.Batch, dst []float32) error {
	done := make(chan error, 1)
	if err := b.Submit(&BatchRequest{Ctx: ctx, Seqs: seqs, Dst: dst, Done: func(err error) { done <- err }}); err != nil {
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

// run is one executor: it gathers queued requests into batches until Close
// and the queue is empty.
func (b *Batcher) run() {
	defer b.wg.Done()
	var (
		batch []*BatchRequest
		seqs  encoder.Batch
		vecs  []float32
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
		vecs = b.encode(batch, &seqs, vecs)
	}
}

func (b *Batcher) encode(batch []*BatchRequest, seqs *encoder.Batch, vecs []float32) []float32 {
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
	if len(live) == 0 {
		return vecs
	}
	// Requests whose prompts' tokens the pooling leaves out (include_prompt
	// false, Batch.PoolSkip) are encoded with the requests of the same skip
	// only, and those that leave out the model's Normalize module
	// (Batch.Unnormalized) with each other: one batch, one skip, one
	// normalization.
	for len(live) > 0 {
		skip, raw := live[0].Seqs.PoolSkip, live[0].Seqs.Unnormalized
		group, rest := live[:0:0], live[:0:0]
		seqs.Reset()
		for _, r := range live {
			if r.Seqs.PoolSkip != skip || r.Seqs.Unnormalized != raw {
				rest = append(rest, r)
				continue
			}
			for i := range r.Seqs.Len() {
				seqs.Add(r.Seqs.Seq(i))
			}
			group = append(group, r)
		}
		seqs.PoolSkip, seqs.Unnormalized = skip, raw
		vecs = b.encodeGroup(group, seqs, vecs, now)
		live = rest
	}
	return vecs
}

// encodeGroup encodes seqs, the sequences of group end to end, and hands
// each request its vectors.
func (b *Batcher) encodeGroup(group []*BatchRequest, seqs *encoder.Batch, vecs []float32, start time.Time) []float32 {
	dim := b.m.Dim()
	n := seqs.Len()
	if cap(vecs) < n*dim {
		vecs = make([]float32, n*dim)
	}
	vecs = vecs[:n*dim]
	err := b.m.EmbedBatch(context.Background(), seqs, vecs)
	b.cfg.Metrics.Batch(n, seqs.Tokens(), len(group), time.Since(start))
	off := 0
	for _, r := range group {
		k := r.Seqs.Len()
		if err == nil {
			copy(r.Dst, vecs[off*dim:(off+k)*dim])
		}
		off += k
		r.Done(err)
	}
	return vecs
}
