package workers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

func closeTo(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 2e-6 {
			t.Fatalf("%s: value %d = %g, direct encoder %g", what, i, got[i], want[i])
		}
	}
}

// TestServiceConcurrentRequests sends 1,000 concurrent requests of one to
// four texts: every reply must hold its own texts' vectors, in order, equal
// to the direct encoder's.
func TestServiceConcurrentRequests(t *testing.T) {
	texts := corpus(t)
	emb := tinyBERT(t)
	dim := emb.Dim()
	direct := make([]float32, len(texts)*dim)
	// One text per call, so that batching inside the service is the only
	// difference.
	for i := range texts {
		copy(direct[i*dim:(i+1)*dim], embedTexts(t, emb, texts[i:i+1]))
	}
	srv := natstest.Start(t, "")
	nc, _ := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Encoder: emb, Model: "tiny-bert", Queue: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	const requests = 1000
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for r := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 1 + r%4
			idx := make([]int, n)
			req := schemas.EmbedRequest{}
			for k := range n {
				idx[k] = (r*37 + k*911) % len(texts)
				req.Texts = append(req.Texts, texts[idx[k]])
			}
			b, _ := json.Marshal(req)
			msg, err := nc.Request(EmbedSubject, b, 60*time.Second)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", r, err)
				return
			}
			if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
				errs <- fmt.Errorf("request %d: error %s %s", r, code, msg.Header.Get(micro.ErrorHeader))
				return
			}
			var rep schemas.EmbedReply
			if err := json.Unmarshal(msg.Data, &rep); err != nil {
				errs <- fmt.Errorf("request %d: %w", r, err)
				return
			}
			if rep.Dim != dim || len(rep.Embeddings) != n {
				errs <- fmt.Errorf("request %d: dim %d, %d vectors", r, rep.Dim, len(rep.Embeddings))
				return
			}
			for k, v := range rep.Embeddings {
				w := direct[idx[k]*dim : (idx[k]+1)*dim]
				for j := range v {
					if math.Abs(float64(v[j]-w[j])) > 2e-6 {
						errs <- fmt.Errorf("request %d text %d (corpus row %d) dim %d: %g, direct %g", r, k, idx[k], j, v[j], w[j])
						return
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
}

func TestServiceErrorsAndArrow(t *testing.T) {
	emb := tinyBERT(t)
	srv := natstest.Start(t, "")
	nc, _ := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Encoder: emb, Model: "tiny-bert", MaxTexts: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	ask := func(body string) *nats.Msg {
		t.Helper()
		m, err := nc.Request(EmbedSubject, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for body, code := range map[string]string{
		`{"texts":[]}`:                          CodeBadRequest,
		`not json`:                              CodeBadRequest,
		`{"texts":["a","b","c","d"]}`:           CodeTooLarge, // over MaxTexts: 413, as documented
		`{"texts":["a"],"prompt_name":"nope"}`:  CodeBadRequest,
		`{"texts":["a"],"truncate_dim":100000}`: CodeBadRequest,
		`{"texts":["a"],"schema":"v9"}`:         CodeBadRequest,
	} {
		m := ask(body)
		if got := m.Header.Get(micro.ErrorCodeHeader); got != code || m.Header.Get(micro.ErrorHeader) == "" {
			t.Errorf("%s: code %q (%s), want %s", body, got, m.Header.Get(micro.ErrorHeader), code)
		}
	}
	texts := []string{"Hello, world!", "The bank of the river was muddy."}
	want := embedTexts(t, emb, texts)
	m := ask(`{"texts":["Hello, world!","The bank of the river was muddy."],"format":"arrow"}`)
	if c := m.Header.Get(micro.ErrorCodeHeader); c != "" {
		t.Fatalf("arrow request: %s %s", c, m.Header.Get(micro.ErrorHeader))
	}
	rd, err := ipc.NewReader(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatal("no record in the arrow reply")
	}
	rec := rd.Record()
	col := rec.Column(0).(*array.FixedSizeList)
	vals := col.ListValues().(*array.Float32).Float32Values()
	if rec.NumRows() != 2 {
		t.Fatalf("%d rows", rec.NumRows())
	}
	closeTo(t, "arrow reply", vals, want)
	// Truncation keeps the first dimensions, renormalized.
	m = ask(`{"texts":["Hello, world!"],"truncate_dim":8}`)
	var rep schemas.EmbedReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		t.Fatal(err)
	}
	tr := append([]float32(nil), want[:8]...)
	encoder.Normalize(tr)
	if rep.Dim != 8 {
		t.Fatalf("truncated dim %d", rep.Dim)
	}
	closeTo(t, "truncated", rep.Embeddings[0], tr)
	var norm float64
	for _, x := range rep.Embeddings[0] {
		norm += float64(x) * float64(x)
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Fatalf("truncated vector norm² %g", norm)
	}
}
