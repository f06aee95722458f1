package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/httpapi"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/workers"
)

type rank struct {
	Index int     `json:"index"`
	Text  *string `json:"text"`
	Score float64 `json:"score"`
}

type teiErr struct {
	Error     string `json:"error"`
	ErrorType string `json:"error_type"`
}

// parallel runs f(i) for i in [0, n) on 8 goroutines, so that requests
// share the batcher's batches.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestTEIRerank checks /rerank on tiny-reranker against every pair of the
// float64 reference: the pairs of each query in one request (truncate
// true, the reference's long pairs are cut longest_first), concurrently so
// that requests share batches. Scores (sigmoid) and raw_scores (logits)
// are within 2e-5 of the reference, the reply is sorted by descending
// score, and each index names its text (return_text echoes it).
func TestTEIRerank(t *testing.T) {
	rows := refs.ReadJSONL[refs.PairRow](t, "tiny-reranker.jsonl.gz")
	f := newModelFixture(t, refs.ModelDir(t, "tiny-reranker"), httpapi.Config{}, workers.BatcherConfig{})
	var queries []string
	byQuery := map[string][]int{}
	for i, r := range rows {
		if _, ok := byQuery[r.Query]; !ok {
			queries = append(queries, r.Query)
		}
		byQuery[r.Query] = append(byQuery[r.Query], i)
	}
	var mu sync.Mutex
	worstS, worstL, pairs, multi := 0.0, 0.0, 0, 0
	parallel(len(queries), func(q int) {
		idx := byQuery[queries[q]]
		texts := make([]string, len(idx))
		for k, i := range idx {
			texts[k] = rows[i].Passage
		}
		for _, raw := range []bool{false, true} {
			code, _, body := f.post(t, "/rerank", "", map[string]any{"query": queries[q], "texts": texts, "truncate": true,
				"raw_scores": raw, "return_text": !raw})
			var ranks []rank
			if code != 200 || json.Unmarshal(body, &ranks) != nil {
				t.Errorf("query %d: %d %s", q, code, body)
				return
			}
			if len(ranks) != len(texts) {
				t.Errorf("query %d: %d ranks for %d texts", q, len(ranks), len(texts))
				return
			}
			seen := make([]bool, len(texts))
			mu.Lock()
			for k, rk := range ranks {
				if rk.Index < 0 || rk.Index >= len(texts) || seen[rk.Index] {
					t.Errorf("query %d: ranks %+v are not a permutation", q, ranks)
					break
				}
				seen[rk.Index] = true
				if k > 0 && rk.Score > ranks[k-1].Score {
					t.Errorf("query %d: ranks %+v not sorted by descending score", q, ranks)
				}
				if raw != (rk.Text == nil) || (rk.Text != nil && *rk.Text != texts[rk.Index]) {
					t.Errorf("query %d: rank %d text %v, want %q only with return_text", q, k, rk.Text, texts[rk.Index])
				}
				ref := rows[idx[rk.Index]]
				if raw {
					worstL = math.Max(worstL, math.Abs(rk.Score-ref.Logit))
				} else {
					worstS = math.Max(worstS, math.Abs(rk.Score-ref.Score))
					pairs++
				}
			}
			if len(texts) > 1 && !raw {
				multi++
			}
			mu.Unlock()
		}
	})
	t.Logf("/rerank: %d pairs in %d requests (%d with several texts), worst |score diff| %.3g, worst |logit diff| %.3g",
		pairs, len(queries), multi, worstS, worstL)
	if pairs != len(rows) || multi == 0 {
		t.Fatalf("%d of %d pairs checked, %d requests of several texts", pairs, len(rows), multi)
	}
	if worstS > 2e-5 || worstL > 2e-5 {
		t.Errorf("worst score diff %.3g, logit diff %.3g (bound 2e-5)", worstS, worstL)
	}
	// TEI's truncate defaults to false: a long pair is refused; texts
	// must not be empty; Left truncation of pairs is refused.
	long := rows[0]
	for _, r := range rows {
		if len(r.InputIDs) == 512 {
			long = r
			break
		}
	}
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		typ    string
		msg    string
	}{
		{"long pair", map[string]any{"query": long.Query, "texts": []string{long.Passage}}, 413, "Validation", "512 tokens"},
		{"no texts", map[string]any{"query": "q", "texts": []string{}}, 422, "Validation", "texts cannot be empty"},
		{"no query", map[string]any{"texts": []string{"a"}}, 422, "Validation", "query is required"},
		{"left", map[string]any{"query": "q", "texts": []string{"a"}, "truncation_direction": "Left"}, 422, "Validation", "longest_first"},
	} {
		code, _, body := f.post(t, "/rerank", "", c.body)
		var e teiErr
		if json.Unmarshal(body, &e); code != c.status || e.ErrorType != c.typ || !strings.Contains(e.Error, c.msg) {
			t.Errorf("%s: %d %s, want %d %s containing %q", c.name, code, body, c.status, c.typ, c.msg)
		}
	}
}

// TestTEIEmbedSparse checks /embed_sparse on tiny-splade against every
// row of the float64 reference but the empty text (refused, as by /embed),
// 32 texts a request (truncate true) and 8 requests at a time: every reference entry above 1e-4 present, every value within
// 2e-5 (ours where the reference has none counts against 0), indices
// ascending. With SparseTopK the reply keeps each vector's largest
// weights, as the model's own top-k does.
func TestTEIEmbedSparse(t *testing.T) {
	rows := refs.ReadJSONL[refs.SparseRow](t, "tiny-splade.jsonl.gz")
	dir := refs.ModelDir(t, "tiny-splade")
	f := newModelFixture(t, dir, httpapi.Config{}, workers.BatcherConfig{})
	type value struct {
		Index int32   `json:"index"`
		Value float32 `json:"value"`
	}
	// Empty texts are refused, as by /embed; the others go 32 a request.
	var nonEmpty []refs.SparseRow
	for _, r := range rows {
		if r.Text != "" {
			nonEmpty = append(nonEmpty, r)
		}
	}
	rows = nonEmpty
	const per = 32
	var mu sync.Mutex
	worst, missing, checked := 0.0, 0, 0
	parallel((len(rows)+per-1)/per, func(k int) {
		lo, hi := k*per, min((k+1)*per, len(rows))
		var texts []string
		for _, r := range rows[lo:hi] {
			texts = append(texts, r.Text)
		}
		code, _, body := f.post(t, "/embed_sparse", "", map[string]any{"inputs": texts, "truncate": true})
		var vecs [][]value
		if code != 200 || json.Unmarshal(body, &vecs) != nil || len(vecs) != len(texts) {
			t.Errorf("rows %d..%d: %d %.200s", lo, hi-1, code, body)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for j, v := range vecs {
			ref := rows[lo+j]
			got := map[int32]float64{}
			for e, x := range v {
				if e > 0 && x.Index <= v[e-1].Index {
					t.Errorf("row %d: indices not ascending", lo+j)
				}
				got[x.Index] = float64(x.Value)
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
			checked++
		}
	})
	if code, _, body := f.post(t, "/embed_sparse", "", map[string]any{"inputs": []string{"a", ""}}); code != 422 || !strings.Contains(string(body), "inputs[1] is empty") {
		t.Errorf("empty text: %d %s", code, body)
	}
	long := strings.Repeat("word ", 600)
	if code, _, body := f.post(t, "/embed_sparse", "", map[string]any{"inputs": long}); code != 413 || !strings.Contains(string(body), "512 tokens") {
		t.Errorf("long text without truncate: %d %s", code, body)
	}
	t.Logf("/embed_sparse: %d vectors, worst abs diff %.3g, %d reference entries above 1e-4 missing", checked, worst, missing)
	if checked != len(rows) || missing > 0 || worst > 2e-5 {
		t.Errorf("%d of %d rows checked, %d entries missing, worst diff %.3g (bound 2e-5)", checked, len(rows), missing, worst)
	}
	// Top-k: the model's own top-k, through the shared batcher.
	ft := newModelFixture(t, dir, httpapi.Config{SparseTopK: 5}, workers.BatcherConfig{})
	texts := []string{rows[3].Text, rows[100].Text}
	code, _, body := ft.post(t, "/embed_sparse", "", map[string]any{"inputs": texts})
	var vecs [][]value
	if code != 200 || json.Unmarshal(body, &vecs) != nil {
		t.Fatalf("top-k: %d %s", code, body)
	}
	var b encoder.Batch
	for _, s := range texts {
		ft.m.AppendTo(&b, s, "", 0)
	}
	var want encoder.SparseVectors
	if err := ft.m.EmbedSparseBatch(context.Background(), &b, encoder.SparseOptions{TopK: 5}, &want); err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		idx, val := want.Vector(i)
		if len(vecs[i]) != 5 || len(idx) != 5 {
			t.Fatalf("top-k 5: %d entries, model %d", len(vecs[i]), len(idx))
		}
		for j := range idx {
			if vecs[i][j].Index != idx[j] || vecs[i][j].Value != val[j] {
				t.Fatalf("top-k 5 vector %d: %v, model gives %v %v", i, vecs[i], idx, val)
			}
		}
	}
}

// TestWrongModelKind checks that each endpoint refuses a model of another
// kind with TEI's 424 (error_type Backend) or OpenAI's 400
// invalid_request_error naming the endpoint to use, and that /info
// reports each model's type as TEI does.
func TestWrongModelKind(t *testing.T) {
	bert := newFixture(t, httpapi.Config{}, workers.BatcherConfig{})
	rr := newModelFixture(t, refs.ModelDir(t, "tiny-reranker"), httpapi.Config{}, workers.BatcherConfig{MaxWait: time.Millisecond})
	sp := newModelFixture(t, refs.ModelDir(t, "tiny-splade"), httpapi.Config{}, workers.BatcherConfig{MaxWait: time.Millisecond})
	embedBody := map[string]any{"inputs": "x"}
	rerankBody := map[string]any{"query": "q", "texts": []string{"a"}}
	for _, c := range []struct {
		f          *fixture
		path       string
		body       map[string]any
		use, model string
	}{
		{rr, "/embed", embedBody, "/rerank", "re-ranker"},
		{sp, "/embed", embedBody, "/embed_sparse", "sparse"},
		{bert, "/rerank", rerankBody, "/embed", "embedding model"},
		{sp, "/rerank", rerankBody, "/embed_sparse", "sparse"},
		{bert, "/embed_sparse", embedBody, "/embed", "embedding model"},
		{rr, "/embed_sparse", embedBody, "/rerank", "re-ranker"},
	} {
		code, _, body := c.f.post(t, c.path, "", c.body)
		var e teiErr
		if json.Unmarshal(body, &e); code != http.StatusFailedDependency || e.ErrorType != "Backend" ||
			!strings.Contains(e.Error, "use "+c.use) || !strings.Contains(e.Error, c.model) {
			t.Errorf("%s on %s: %d %s", c.path, c.model, code, body)
		}
	}
	for _, f := range []*fixture{rr, sp} {
		code, _, body := f.post(t, "/v1/embeddings", "", map[string]any{"input": "x", "model": "m"})
		var e openAIErr
		if json.Unmarshal(body, &e); code != 400 || e.Error.Type != "invalid_request_error" || e.Error.Code == nil ||
			*e.Error.Code != "model_not_supported" || !strings.Contains(e.Error.Message, "/v1/embeddings needs an embedding model") {
			t.Errorf("/v1/embeddings on %s: %d %s", f.m.Info().Kind, code, body)
		}
	}
	for _, c := range []struct {
		f         *fixture
		kind, typ string
		inner     string
	}{
		{bert, encoder.KindEmbedding, "embedding", `{"pooling":"mean"}`},
		{sp, encoder.KindSparse, "embedding", `{"pooling":"splade"}`},
		{rr, encoder.KindCrossEncoder, "reranker", `{"id2label":{"0":"LABEL_0"},"label2id":{"LABEL_0":0}}`},
	} {
		resp, err := http.Get(c.f.srv.URL + "/info")
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Kind      string                     `json:"kind"`
			ModelType map[string]json.RawMessage `json:"model_type"`
		}
		json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if got := string(info.ModelType[c.typ]); info.Kind != c.kind || len(info.ModelType) != 1 || got != c.inner {
			t.Errorf("/info of %s: kind %q model_type %s, want %s %s", c.kind, info.Kind, fmt.Sprint(info.ModelType), c.typ, c.inner)
		}
	}
	// The wrong-kind requests are not the batcher's to see: the right
	// ones still work on each server.
	if code, _, body := rr.post(t, "/rerank", "", rerankBody); code != 200 {
		t.Errorf("/rerank after the refusals: %d %s", code, body)
	}
	if code, _, body := sp.post(t, "/embed_sparse", "", embedBody); code != 200 || !slices.Contains([]byte(body), '[') {
		t.Errorf("/embed_sparse after the refusals: %d %s", code, body)
	}
}
