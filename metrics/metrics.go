package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of embedpipe's Prometheus metrics, in their own
// registry (with the Go runtime and process collectors). Every method is
// safe for concurrent use and is a no-op on a nil receiver.
type Metrics struct {
	reg *prometheus.Registry

	requestCount   *prometheus.CounterVec
	requestSuccess *prometheus.CounterVec
	requestFailure *prometheus.CounterVec
	requests       *prometheus.CounterVec
	duration       prometheus.Histogram
	tokenization   prometheus.Histogram
	queueDur       prometheus.Histogram
	inference      prometheus.Histogram
	inputLength    prometheus.Histogram
	queueSize      prometheus.Gauge
	batchSize      prometheus.Histogram
	batchTokens    prometheus.Histogram
	tasks          *prometheus.CounterVec
	rows           prometheus.Counter
	tokens         prometheus.Counter
	errors         *prometheus.CounterVec

	consumerOnce sync.Once
}

// latencyBuckets spans 100 µs to about 50 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 15)

// New returns a fresh Metrics.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: r}
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	h := func(name, help string, b []float64) prometheus.Histogram {
		x := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: b})
		r.MustRegister(x)
		return x
	}
	c := func(name, help string) prometheus.Counter {
		x := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		r.MustRegister(x)
		return x
	}
	m.requestCount = cv("te_request_count", "Requests received, by method (single or batch input).", "method")
	m.requestSuccess = cv("te_request_success", "Requests answered successfully, by method.", "method")
	m.requestFailure = cv("te_request_failure", "Requests refused or failed, by error kind.", "err")
	m.requests = cv("embedpipe_requests_total", "Requests by API and outcome.", "api", "outcome")
	m.duration = h("te_request_duration", "End-to-end request latency in seconds.", latencyBuckets)
	m.tokenization = h("te_request_tokenization_duration", "Tokenization latency of a request in seconds.", latencyBuckets)
	m.queueDur = h("te_request_queue_duration", "Time a request waited for the encoder, in seconds.", latencyBuckets)
	m.inference = h("te_request_inference_duration", "Encoder time of the batch a request was in, in seconds.", latencyBuckets)
	m.inputLength = h("te_request_input_length", "Tokens per input.", prometheus.ExponentialBuckets(2, 2, 13))
	m.queueSize = prometheus.NewGauge(prometheus.GaugeOpts{Name: "te_queue_size", Help: "Requests waiting for the encoder."})
	r.MustRegister(m.queueSize)
	m.batchSize = h("te_batch_next_size", "Inputs per encoder batch.", prometheus.ExponentialBuckets(1, 2, 12))
	m.batchTokens = h("te_batch_next_tokens", "Tokens per encoder batch.", prometheus.ExponentialBuckets(16, 2, 12))
	m.tasks = cv("embedpipe_tasks_total", "Job tasks by outcome (done, retried, failed, cancelled).", "outcome")
	m.rows = c("embedpipe_rows_embedded_total", "Rows (texts) embedded.")
	m.tokens = c("embedpipe_tokens_embedded_total", "Tokens embedded.")
	m.errors = cv("embedpipe_errors_total", "Errors by kind.", "kind")
	return m
}

// Registry returns the registry, to register more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Method is the te_request_count label of a request with n inputs.
func Method(n int) string {
	if n == 1 {
		return "single"
	}
	return "batch"
}

// Request counts a request received with n inputs.
func (m *Metrics) Request(n int) {
	if m == nil {
		return
	}
	m.requestCount.WithLabelValues(Method(n)).Inc()
}

// Failure kinds of te_request_failure.
const (
	ErrValidation   = "validation"
	ErrTokenizer    = "tokenizer"
	ErrOverloaded   = "overloaded"
	ErrUnauthorized = "unauthorized"
	ErrBackend      = "backend"
)

// Done records the end of a request of api ("openai", "tei", "nats") with n
// inputs that started at start: failure is "" for success, else one of the
// Err kinds.
func (m *Metrics) Done(api string, n int, start time.Time, failure string) {
	if m == nil {
		return
	}
	if failure == "" {
		m.requestSuccess.WithLabelValues(Method(n)).Inc()
		m.requests.WithLabelValues(api, "ok").Inc()
		m.duration.Observe(time.Since(start).Seconds())
		return
	}
	m.requestFailure.WithLabelValues(failure).Inc()
	m.requests.WithLabelValues(api, failure).Inc()
	m.errors.WithLabelValues("request_" + failure).Inc()
}

// Tokenized records the tokenization of one request: how long it took and
// the length of each input.
func (m *Metrics) Tokenized(d time.Duration, lengths ...int) {
	if m == nil {
		return
	}
	m.tokenization.Observe(d.Seconds())
	for _, n := range lengths {
		m.inputLength.Observe(float64(n))
	}
}

// QueueDepth adds delta to the requests waiting for the encoder.
func (m *Metrics) QueueDepth(delta int) {
	if m == nil {
		return
	}
	m.queueSize.Add(float64(delta))
}

// Queued records how long a request waited before its batch started.
func (m *Metrics) Queued(d time.Duration) {
	if m == nil {
		return
	}
	m.queueDur.Observe(d.Seconds())
}

// Batch records one encoder batch of size inputs and tokens tokens that
// took d, serving requests requests.
func (m *Metrics) Batch(size, tokens, requests int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(size))
	m.batchTokens.Observe(float64(tokens))
	for range requests {
		m.inference.Observe(d.Seconds())
	}
	m.rows.Add(float64(size))
	m.tokens.Add(float64(tokens))
}

// Embedded adds rows and tokens embedded outside the request path (file
// pipelines, job tasks).
func (m *Metrics) Embedded(rows, tokens int64) {
	if m == nil {
		return
	}
	m.rows.Add(float64(rows))
	m.tokens.Add(float64(tokens))
}

// Task outcomes of embedpipe_tasks_total.
const (
	TaskDone      = "done"
	TaskRetried   = "retried"
	TaskFailed    = "failed"
	TaskCancelled = "cancelled"
)

// Task counts a job task that ended with outcome.
func (m *Metrics) Task(outcome string) {
	if m == nil {
		return
	}
	m.tasks.WithLabelValues(outcome).Inc()
}

// Error counts an error of kind.
func (m *Metrics) Error(kind string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(kind).Inc()
}

// ConsumerPending registers the JetStream consumer gauges, read from f at
// each scrape: pending (waiting for delivery) and ackPending (delivered, not
// yet acknowledged). f's error leaves both at -1. Only the first call
// registers: workers sharing a Metrics share one consumer.
func (m *Metrics) ConsumerPending(f func() (pending, ackPending int64, err error)) {
	if m == nil {
		return
	}
	m.consumerOnce.Do(func() { m.registerConsumer(f) })
}

func (m *Metrics) registerConsumer(f func() (int64, int64, error)) {
	m.reg.MustRegister(&consumerCollector{f: f,
		pending: prometheus.NewDesc("embedpipe_jetstream_consumer_pending", "Tasks waiting in the JetStream consumer.", nil, nil),
		ack:     prometheus.NewDesc("embedpipe_jetstream_consumer_ack_pending", "Tasks delivered and not yet acknowledged.", nil, nil),
	})
}

type consumerCollector struct {
	f            func() (int64, int64, error)
	pending, ack *prometheus.Desc
}

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pending; ch <- c.ack }

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	p, a, err := c.f()
	if err != nil {
		p, a = -1, -1
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(p))
	ch <- prometheus.MustNewConstMetric(c.ack, prometheus.GaugeValue, float64(a))
}
