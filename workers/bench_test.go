package workers

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/micro"
)

// BenchmarkServiceEmbed measures the embed endpoint under concurrent
// one-text requests (64 in flight per GOMAXPROCS), dynamic batching on.
func BenchmarkServiceEmbed(b *testing.B) {
	texts := corpus(b)
	emb := tinyBERT(b)
	srv := natstest.Start(b, "")
	nc, _ := connectJS(b, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Encoder: emb, Model: "tiny-bert"})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	bodies := make([][]byte, len(texts))
	for i, t := range texts {
		bodies[i], _ = json.Marshal(schemas.EmbedRequest{Texts: []string{t}})
	}
	var next atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % int64(len(bodies))
			m, err := nc.Request(EmbedSubject, bodies[i], 30*time.Second)
			if err != nil || m.Header.Get(micro.ErrorCodeHeader) != "" {
				b.Errorf("request: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
