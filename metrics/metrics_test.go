package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape fetches url and parses it as the Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
outer:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no %s with labels %v", name, labels)
	return 0
}

func TestMetricsMove(t *testing.T) {
	m := metrics.New()
	var h metrics.Health
	h.SetReady(true)
	mux := http.NewServeMux()
	metrics.Register(mux, m, &h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	start := time.Now()
	m.Request(1)
	m.Request(3)
	m.Tokenized(time.Millisecond, 5, 7, 9)
	m.QueueDepth(2)
	m.Queued(time.Millisecond)
	m.Batch(4, 30, 2, 3*time.Millisecond)
	m.Done("openai", 1, start, "")
	m.Done("tei", 3, start, metrics.ErrOverloaded)
	m.Task(metrics.TaskDone)
	m.Embedded(10, 100)
	m.ConsumerPending(func() (int64, int64, error) { return 7, 2, nil })

	f := scrape(t, srv.URL+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"te_request_count", []string{"method", "single"}, 1},
		{"te_request_count", []string{"method", "batch"}, 1},
		{"te_request_success", []string{"method", "single"}, 1},
		{"te_request_failure", []string{"err", "overloaded"}, 1},
		{"embedpipe_requests_total", []string{"api", "openai", "outcome", "ok"}, 1},
		{"embedpipe_requests_total", []string{"api", "tei", "outcome", "overloaded"}, 1},
		{"te_request_input_length", nil, 3},
		{"te_request_inference_duration", nil, 2},
		{"te_request_duration", nil, 1},
		{"te_batch_next_size", nil, 1},
		{"te_queue_size", nil, 2},
		{"embedpipe_rows_embedded_total", nil, 14},
		{"embedpipe_tokens_embedded_total", nil, 130},
		{"embedpipe_tasks_total", []string{"outcome", "done"}, 1},
		{"embedpipe_jetstream_consumer_pending", nil, 7},
		{"embedpipe_jetstream_consumer_ack_pending", nil, 2},
	} {
		if got := value(t, f, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	m.Request(1)
	if got := value(t, scrape(t, srv.URL+"/metrics"), "te_request_count", "method", "single"); got != 2 {
		t.Errorf("te_request_count did not move: %v", got)
	}
	// A nil Metrics records nothing and does not panic.
	var nm *metrics.Metrics
	nm.Request(1)
	nm.Batch(1, 1, 1, time.Second)
}

func TestHealth(t *testing.T) {
	var h metrics.Health
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", metrics.New(), &h, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + addr.String() + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/live"); code != 200 {
		t.Fatalf("/live: %d", code)
	}
	if code, body := get("/health"); code != 503 || !strings.Contains(body, "not ready") {
		t.Fatalf("/health before ready: %d %s", code, body)
	}
	h.SetReady(true)
	if code, _ := get("/health"); code != 200 {
		t.Fatalf("/health when ready: %d", code)
	}
	down := errors.New("connection closed")
	var up atomic.Bool
	up.Store(true)
	h.AddCheck("nats", func() error {
		if up.Load() {
			return nil
		}
		return down
	})
	up.Store(false)
	if code, body := get("/health"); code != 503 || !strings.Contains(body, "nats: connection closed") {
		t.Fatalf("/health with NATS down: %d %s", code, body)
	}
}
