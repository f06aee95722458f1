package workers

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/micro"
)

// TestRerankEndpoint serves tiny-reranker on an embedded NATS server: the
// reply's scores and logits, in document order, are those of the model
// scoring the pairs directly, and order sorts them descending; a request
// without documents is refused with code 400.
func TestRerankEndpoint(t *testing.T) {
	rows := refs.ReadJSONL[refs.PairRow](t, "tiny-reranker.jsonl.gz")
	m, err := encoder.Load(refs.ModelDir(t, "tiny-reranker"))
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t, "")
	nc, _ := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Reranker: m, Model: "tiny-reranker"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	// Eight reference passages under one query, compared with the model
	// scoring them directly (whose fidelity TestFidelityReranker checks).
	req := schemas.RerankRequest{Query: rows[5].Query}
	for _, r := range rows[:8] {
		req.Documents = append(req.Documents, r.Passage)
	}
	b, _ := json.Marshal(req)
	msg, err := nc.Request(RerankSubject, b, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("error %s %s", code, msg.Header.Get(micro.ErrorHeader))
	}
	var rep schemas.RerankReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		t.Fatal(err)
	}
	n := len(req.Documents)
	if len(rep.Scores) != n || len(rep.Logits) != n || len(rep.Order) != n || rep.Schema != schemas.RerankReplyV1 {
		t.Fatalf("reply %+v for %d documents", rep, n)
	}
	direct, logits := make([]float32, n), make([]float32, n)
	queries := make([]string, n)
	for i := range queries {
		queries[i] = req.Query
	}
	if err := m.Score(context.Background(), queries, req.Documents, logits, direct); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if rep.Scores[i] != direct[i] || rep.Logits[i] != logits[i] {
			t.Errorf("document %d: score %v logit %v, direct %v %v", i, rep.Scores[i], rep.Logits[i], direct[i], logits[i])
		}
	}
	sorted := slices.Clone(rep.Order)
	slices.Sort(sorted)
	for i := range sorted {
		if sorted[i] != i {
			t.Fatalf("order %v is not a permutation", rep.Order)
		}
	}
	for k := 1; k < n; k++ {
		if rep.Scores[rep.Order[k]] > rep.Scores[rep.Order[k-1]] {
			t.Fatalf("order %v does not sort scores %v descending", rep.Order, rep.Scores)
		}
	}
	msg, err = nc.Request(RerankSubject, []byte(`{"query":"q","documents":[]}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != CodeBadRequest {
		t.Errorf("empty documents: code %q, want %s", code, CodeBadRequest)
	}
}
