package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/micro"
)

// TestServiceSparse serves tiny-splade's embed endpoint on an embedded
// NATS server: every reference row, 64 texts a request, comes back as a
// sparse vector (schemas.SparseEmbedReply) with every reference entry
// above 1e-4 present and every value within 2e-5; the Arrow reply holds
// the same vectors as struct<indices, values>; dense options are refused.
func TestServiceSparse(t *testing.T) {
	rows := refs.ReadJSONL[refs.SparseRow](t, "tiny-splade.jsonl.gz")
	m, err := encoder.Load(refs.ModelDir(t, "tiny-splade"), encoder.WithThreads(2))
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t, "")
	nc, _ := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Encoder: m, Model: "tiny-splade"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	if ep := svc.Info().Endpoints; len(ep) != 1 || ep[0].Metadata["reply_schema"] != schemas.SparseEmbedReplyV1 {
		t.Fatalf("endpoints %+v, want embed with reply schema %s", ep, schemas.SparseEmbedReplyV1)
	}
	worst, missing := 0.0, 0
	for lo := 0; lo < len(rows); lo += 64 {
		hi := min(lo+64, len(rows))
		req := schemas.EmbedRequest{}
		for _, r := range rows[lo:hi] {
			req.Texts = append(req.Texts, r.Text)
		}
		body, _ := json.Marshal(req)
		msg, err := nc.Request(EmbedSubject, body, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
			t.Fatalf("rows %d..%d: error %s %s", lo, hi-1, code, msg.Header.Get(micro.ErrorHeader))
		}
		var rep schemas.SparseEmbedReply
		if err := json.Unmarshal(msg.Data, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Schema != schemas.SparseEmbedReplyV1 || rep.Dim != 30522 || len(rep.Embeddings) != hi-lo || rep.Tokens <= 0 {
			t.Fatalf("reply schema %q dim %d, %d vectors for %d texts", rep.Schema, rep.Dim, len(rep.Embeddings), hi-lo)
		}
		for j, v := range rep.Embeddings {
			ref := rows[lo+j]
			if len(v.Indices) != len(v.Values) || !slices.IsSorted(v.Indices) {
				t.Fatalf("row %d: %d indices, %d values, ascending %v", lo+j, len(v.Indices), len(v.Values), slices.IsSorted(v.Indices))
			}
			got := map[int32]float64{}
			for e, ix := range v.Indices {
				got[ix] = float64(v.Values[e])
			}
			for e, ix := range ref.Indices {
				g, ok := got[ix]
				if !ok && ref.Values[e] > 1e-4 {
					missing++
				}
				worst = math.Max(worst, math.Abs(g-ref.Values[e]))
				delete(got, ix)
			}
			for _, g := range got {
				worst = math.Max(worst, g)
			}
		}
	}
	t.Logf("NATS embed on tiny-splade: %d vectors, worst abs diff %.3g, %d reference entries above 1e-4 missing", len(rows), worst, missing)
	if missing > 0 || worst > 2e-5 {
		t.Errorf("%d entries missing, worst diff %.3g (bound 2e-5)", missing, worst)
	}
	// Arrow: the same vectors as the JSON reply.
	texts := []string{rows[1].Text, rows[2].Text}
	var jrep schemas.SparseEmbedReply
	jb, _ := json.Marshal(schemas.EmbedRequest{Texts: texts})
	msg, err := nc.Request(EmbedSubject, jb, 10*time.Second)
	if err != nil || json.Unmarshal(msg.Data, &jrep) != nil {
		t.Fatalf("json: %v %s", err, msg.Data)
	}
	ab, _ := json.Marshal(schemas.EmbedRequest{Texts: texts, Format: "arrow"})
	msg, err = nc.Request(EmbedSubject, ab, 10*time.Second)
	if err != nil || msg.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("arrow: %v %s", err, msg.Header.Get(micro.ErrorHeader))
	}
	rd, err := ipc.NewReader(bytes.NewReader(msg.Data))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() || rd.Record().NumRows() != 2 {
		t.Fatal("arrow reply: want one record of 2 rows")
	}
	col := rd.Record().Column(0).(*array.Struct)
	il, vl := col.Field(0).(*array.List), col.Field(1).(*array.List)
	ivals, vvals := il.ListValues().(*array.Int32).Int32Values(), vl.ListValues().(*array.Float32).Float32Values()
	for i := range 2 {
		a, e := il.ValueOffsets(i)
		va, ve := vl.ValueOffsets(i)
		if !slices.Equal(ivals[a:e], jrep.Embeddings[i].Indices) || !slices.Equal(vvals[va:ve], jrep.Embeddings[i].Values) {
			t.Fatalf("arrow row %d differs from the JSON reply", i)
		}
	}
	for _, bad := range []string{`{"texts":["a"],"normalize":false}`, `{"texts":["a"],"truncate_dim":8}`, `{"texts":["a"],"precision":"int8"}`} {
		msg, err := nc.Request(EmbedSubject, []byte(bad), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := msg.Header.Get(micro.ErrorCodeHeader); code != CodeBadRequest {
			t.Errorf("%s on a sparse model: code %q (%s), want %s", bad, code, msg.Header.Get(micro.ErrorHeader), CodeBadRequest)
		}
	}
}

// TestServiceUnnormalized asks the embed service for normalize=false on
// tiny-bert, whose modules end with Normalize: the vectors are the
// model's with that module left out (encoder.Batch.Unnormalized, as the
// HTTP API's normalize false), not unit length; with truncate_dim they
// are cut, not renormalized. Requests with and without it share the
// batcher and each gets its own kind.
func TestServiceUnnormalized(t *testing.T) {
	m := tinyBERT(t)
	srv := natstest.Start(t, "")
	nc, _ := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Encoder: m, Model: "tiny-bert", MaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	texts := []string{"Hello, world!", "a rather longer second text to pool"}
	var b encoder.Batch
	for _, s := range texts {
		m.AppendTo(&b, s, "", 0)
	}
	dim := m.Dim()
	unit := make([]float32, len(texts)*dim)
	if err := m.EmbedBatch(context.Background(), &b, unit); err != nil {
		t.Fatal(err)
	}
	b.Unnormalized = true
	raw := make([]float32, len(texts)*dim)
	if err := m.EmbedBatch(context.Background(), &b, raw); err != nil {
		t.Fatal(err)
	}
	no := false
	type result struct {
		rep schemas.EmbedReply
		err error
	}
	ask := func(req schemas.EmbedRequest) <-chan result {
		c := make(chan result, 1)
		go func() {
			body, _ := json.Marshal(req)
			msg, err := nc.Request(EmbedSubject, body, 10*time.Second)
			var r result
			switch {
			case err != nil:
				r.err = err
			case msg.Header.Get(micro.ErrorCodeHeader) != "":
				r.err = fmt.Errorf("%s %s", msg.Header.Get(micro.ErrorCodeHeader), msg.Header.Get(micro.ErrorHeader))
			default:
				r.err = json.Unmarshal(msg.Data, &r.rep)
			}
			c <- r
		}()
		return c
	}
	cRaw, cUnit, cCut := ask(schemas.EmbedRequest{Texts: texts, Normalize: &no}), ask(schemas.EmbedRequest{Texts: texts}),
		ask(schemas.EmbedRequest{Texts: texts[:1], Normalize: &no, TruncateDim: 4})
	rRaw, rUnit, rCut := <-cRaw, <-cUnit, <-cCut
	for _, r := range []result{rRaw, rUnit, rCut} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	for i := range texts {
		if !slices.Equal(rRaw.rep.Embeddings[i], raw[i*dim:(i+1)*dim]) {
			t.Errorf("text %d: normalize=false differs from the model without its Normalize module", i)
		}
		if !slices.Equal(rUnit.rep.Embeddings[i], unit[i*dim:(i+1)*dim]) {
			t.Errorf("text %d: the default reply differs from the model's unit vector", i)
		}
		if n := norm(rRaw.rep.Embeddings[i]); math.Abs(n-1) < 1e-3 {
			t.Errorf("text %d: normalize=false vector has norm %v", i, n)
		}
	}
	if !slices.Equal(rCut.rep.Embeddings[0], raw[:4]) {
		t.Errorf("normalize=false, truncate_dim 4: %v, want %v", rCut.rep.Embeddings[0], raw[:4])
	}
	if msg, err := nc.Request(EmbedSubject, []byte(`{"texts":["a"],"normalize":false,"precision":"int8"}`), 10*time.Second); err != nil || msg.Header.Get(micro.ErrorCodeHeader) != CodeBadRequest {
		t.Errorf("int8 without ranges: %v %q", err, msg.Header.Get(micro.ErrorCodeHeader))
	}
}
