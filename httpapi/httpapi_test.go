package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/httpapi"
	"github.com/embedpipe/embedpipe/metrics"
	"github.com/embedpipe/embedpipe/workers"
)

const tinyBERT = "../testdata/tiny-bert"

type fixture struct {
	m   *encoder.Model
	srv *httptest.Server
	met *metrics.Metrics
}

func newFixture(t *testing.T, cfg httpapi.Config, bc workers.BatcherConfig) *fixture {
	t.Helper()
	return newModelFixture(t, tinyBERT, cfg, bc)
}

// newModelFixture serves the model in dir, named by the directory.
func newModelFixture(t *testing.T, dir string, cfg httpapi.Config, bc workers.BatcherConfig) *fixture {
	t.Helper()
	m, err := encoder.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	met := metrics.New()
	bc.Metrics = met
	b := workers.NewBatcher(m, bc)
	t.Cleanup(b.Close)
	cfg.Model, cfg.Batcher, cfg.Metrics, cfg.ModelID = m, b, met, filepath.Base(dir)
	cfg.Health = &metrics.Health{}
	cfg.Health.SetReady(true)
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &fixture{m: m, srv: srv, met: met}
}

func (f *fixture) post(t *testing.T, path, key string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// want embeds texts as embedpipe embed does: the model's batch path.
func (f *fixture) want(t *testing.T, texts []string) []float32 {
	t.Helper()
	var b encoder.Batch
	for _, s := range texts {
		f.m.AppendTo(&b, s, "", 0)
	}
	out := make([]float32, b.Len()*f.m.Dim())
	if err := f.m.EmbedBatch(context.Background(), &b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

type openAIResp struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func decodeVec(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	var v []float32
	if json.Unmarshal(raw, &v) == nil {
		return v
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("embedding %s is neither floats nor base64", raw)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("bad base64 embedding: %v", err)
	}
	v = make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func TestOpenAIEmbeddings(t *testing.T) {
	f := newFixture(t, httpapi.Config{}, workers.BatcherConfig{})
	texts := []string{"Hello, world!", "Vectors for every row.", "a third, somewhat longer input text"}
	want := f.want(t, texts)
	dim := f.m.Dim()
	for _, format := range []string{"", "float", "base64"} {
		code, _, body := f.post(t, "/v1/embeddings", "", map[string]any{"input": texts, "model": "tiny-bert", "encoding_format": format, "user": "u1"})
		if code != 200 {
			t.Fatalf("%q: %d %s", format, code, body)
		}
		var r openAIResp
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Object != "list" || r.Model != "tiny-bert" || len(r.Data) != 3 || r.Usage.PromptTokens <= 0 || r.Usage.TotalTokens != r.Usage.PromptTokens {
			t.Fatalf("%q: response %+v", format, r)
		}
		for i, d := range r.Data {
			v := decodeVec(t, d.Embedding)
			w := want[i*dim : (i+1)*dim]
			if d.Object != "embedding" || d.Index != i || len(v) != dim {
				t.Fatalf("%q: data[%d] = %+v", format, i, d)
			}
			if c := cosine(v, w); c < 0.999999 {
				t.Fatalf("%q: data[%d] cosine %v to embed's vector", format, i, c)
			}
			for j := range v {
				if v[j] != w[j] {
					t.Fatalf("%q: data[%d][%d] = %v, embed gives %v", format, i, j, v[j], w[j])
				}
			}
		}
	}
	// A single string, and dimensions: Matryoshka truncation, renormalized.
	code, _, body := f.post(t, "/v1/embeddings", "", map[string]any{"input": texts[0], "model": "x", "dimensions": 8})
	if code != 200 {
		t.Fatalf("dimensions: %d %s", code, body)
	}
	var r openAIResp
	json.Unmarshal(body, &r)
	v := decodeVec(t, r.Data[0].Embedding)
	tr := append([]float32(nil), want[:8]...)
	encoder.Normalize(tr)
	if len(v) != 8 || cosine(v, tr) < 0.999999 {
		t.Fatalf("dimensions 8: %v, want %v", v, tr)
	}
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if math.Abs(n-1) > 1e-5 {
		t.Fatalf("truncated vector has norm² %v", n)
	}
	// Token id arrays, as /tokenize returns them, give the same vectors.
	ids, _ := f.m.TokenizeTo(nil, texts[1], "", 0)
	code, _, body = f.post(t, "/v1/embeddings", "", map[string]any{"input": [][]int32{ids}, "model": "x"})
	if code != 200 {
		t.Fatalf("token ids: %d %s", code, body)
	}
	json.Unmarshal(body, &r)
	if v := decodeVec(t, r.Data[0].Embedding); cosine(v, want[dim:2*dim]) < 0.999999 {
		t.Fatal("token-id input embeds differently from its text")
	}
}

type openAIErr struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestOpenAIErrors(t *testing.T) {
	f := newFixture(t, httpapi.Config{APIKey: "sk-test", MaxClientBatchSize: 4, MaxBodyBytes: 4096}, workers.BatcherConfig{})
	for _, c := range []struct {
		name, key string
		body      any
		status    int
		typ, msg  string
	}{
		{"no key", "", map[string]any{"input": "x"}, 401, "invalid_request_error", "API key"},
		{"wrong key", "sk-bad", map[string]any{"input": "x"}, 401, "invalid_request_error", "API key"},
		{"no input", "sk-test", map[string]any{"model": "x"}, 400, "invalid_request_error", "input is required"},
		{"empty array", "sk-test", map[string]any{"input": []string{}}, 400, "invalid_request_error", "empty"},
		{"empty string", "sk-test", map[string]any{"input": ""}, 400, "invalid_request_error", "empty"},
		{"mixed", "sk-test", `{"input":["a",1]}`, 400, "invalid_request_error", "not mixed"},
		{"bad json", "sk-test", `{"input":`, 400, "invalid_request_error", "JSON"},
		{"unknown field", "sk-test", `{"input":"a","bogus":1}`, 400, "invalid_request_error", "bogus"},
		{"format", "sk-test", map[string]any{"input": "a", "encoding_format": "int8"}, 400, "invalid_request_error", "encoding_format"},
		{"dimensions", "sk-test", map[string]any{"input": "a", "dimensions": 999}, 400, "invalid_request_error", "dimensions 999"},
		{"token id", "sk-test", map[string]any{"input": [][]int{{101, 99999999}}}, 400, "invalid_request_error", "outside the vocabulary"},
		{"too many", "sk-test", map[string]any{"input": []string{"a", "b", "c", "d", "e"}}, 413, "invalid_request_error", "limit of 4"},
		{"body", "sk-test", map[string]any{"input": strings.Repeat("x", 5000)}, 413, "invalid_request_error", "4096 bytes"},
	} {
		code, _, body := f.post(t, "/v1/embeddings", c.key, c.body)
		var e openAIErr
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s: %d %s is not an OpenAI error", c.name, code, body)
		}
		if code != c.status || e.Error.Type != c.typ || !strings.Contains(e.Error.Message, c.msg) {
			t.Errorf("%s: %d %+v, want %d %s containing %q", c.name, code, e.Error, c.status, c.typ, c.msg)
		}
	}
	// Health and liveness need no key.
	for _, p := range []string{"/health", "/live", "/metrics"} {
		resp, err := http.Get(f.srv.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

// slowEmbedder holds each batch for a while so that the queue fills.
type slowEmbedder struct{ *encoder.Model }

func (s slowEmbedder) EmbedBatch(ctx context.Context, b *encoder.Batch, dst []float32) error {
	time.Sleep(20 * time.Millisecond)
	return s.Model.EmbedBatch(ctx, b, dst)
}

func TestOverloadIs429(t *testing.T) {
	m, err := encoder.Load(tinyBERT)
	if err != nil {
		t.Fatal(err)
	}
	b := workers.NewBatcher(slowEmbedder{m}, workers.BatcherConfig{Queue: 2, BatchTokens: 1})
	defer b.Close()
	api, err := httpapi.New(httpapi.Config{Model: m, Batcher: b, ModelID: "tiny-bert"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	type res struct {
		code  int
		retry string
		body  string
	}
	out := make(chan res, 40)
	for i := range 40 {
		go func() {
			resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json", strings.NewReader(fmt.Sprintf(`{"input":"text %d","model":"m"}`, i)))
			if err != nil {
				out <- res{code: -1, body: err.Error()}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out <- res{resp.StatusCode, resp.Header.Get("Retry-After"), string(body)}
		}()
	}
	var ok, busy int
	for range 40 {
		r := <-out
		switch r.code {
		case 200:
			ok++
		case 429:
			busy++
			var e openAIErr
			if r.retry == "" || json.Unmarshal([]byte(r.body), &e) != nil || e.Error.Type != "rate_limit_exceeded" {
				t.Fatalf("429 without Retry-After or OpenAI error: %+v", r)
			}
		default:
			t.Fatalf("unexpected reply %+v", r)
		}
	}
	if ok == 0 || busy == 0 {
		t.Fatalf("%d ok, %d 429: want both under overload", ok, busy)
	}
}

func TestTEIEndpoints(t *testing.T) {
	f := newFixture(t, httpapi.Config{MaxInputTokens: 16}, workers.BatcherConfig{})
	texts := []string{"Hello, world!", "short"}
	want := f.want(t, texts)
	dim := f.m.Dim()
	code, _, body := f.post(t, "/embed", "", map[string]any{"inputs": texts})
	if code != 200 {
		t.Fatalf("/embed: %d %s", code, body)
	}
	var rows [][]float32
	if err := json.Unmarshal(body, &rows); err != nil || len(rows) != 2 {
		t.Fatalf("/embed: %s", body)
	}
	for i := range rows {
		if cosine(rows[i], want[i*dim:(i+1)*dim]) < 0.999999 {
			t.Fatalf("/embed row %d differs from embed", i)
		}
	}
	long := strings.Repeat("word ", 40)
	code, _, body = f.post(t, "/embed", "", map[string]any{"inputs": long})
	var te struct {
		Error     string `json:"error"`
		ErrorType string `json:"error_type"`
	}
	if json.Unmarshal(body, &te); code != 413 || te.ErrorType != "Validation" || !strings.Contains(te.Error, "16 tokens") {
		t.Fatalf("/embed too long: %d %s", code, body)
	}
	if code, _, body = f.post(t, "/embed", "", map[string]any{"inputs": long, "truncate": true, "dimensions": 4}); code != 200 {
		t.Fatalf("/embed truncate: %d %s", code, body)
	}
	json.Unmarshal(body, &rows)
	if len(rows) != 1 || len(rows[0]) != 4 {
		t.Fatalf("/embed dimensions 4: %s", body)
	}
	if code, _, body = f.post(t, "/embed", "", map[string]any{"inputs": "a", "prompt_name": "nope"}); code != 422 {
		t.Fatalf("/embed unknown prompt: %d %s", code, body)
	}
	// /tokenize gives TEI's offsets: the bytes of the input each text
	// token comes from ("Héllo" is 6 bytes and one token), none for the
	// special tokens, which add_special_tokens false leaves out.
	const in = "Héllo, wörld! Hello again"
	code, _, body = f.post(t, "/tokenize", "", map[string]any{"inputs": []string{in}})
	type token struct {
		ID      int32  `json:"id"`
		Text    string `json:"text"`
		Special bool   `json:"special"`
		Start   *int   `json:"start"`
		Stop    *int   `json:"stop"`
	}
	var toks [][]token
	if json.Unmarshal(body, &toks); code != 200 || len(toks) != 1 {
		t.Fatalf("/tokenize: %d %s", code, body)
	}
	ids, _ := f.m.TokenizeTo(nil, in, "", 16)
	got := toks[0]
	if len(got) != len(ids) || !got[0].Special || got[0].Start != nil || !got[len(got)-1].Special || got[len(got)-1].Stop != nil {
		t.Fatalf("/tokenize: %+v, want ids %v framed by special tokens without offsets", got, ids)
	}
	if first := got[1]; first.Special || first.Start == nil || *first.Start != 0 || *first.Stop != 6 || first.Text != "Héllo" {
		t.Fatalf("/tokenize: first token %+v, want Héllo at [0, 6)", first)
	}
	prev := 0
	for j, tk := range got[1 : len(got)-1] {
		if tk.ID != ids[j+1] || tk.Start == nil || *tk.Start < prev || in[*tk.Start:*tk.Stop] != tk.Text {
			t.Fatalf("/tokenize: token %d %+v: want id %d and the text at its offsets, in order", j+1, tk, ids[j+1])
		}
		prev = *tk.Stop
	}
	code, _, body = f.post(t, "/tokenize", "", map[string]any{"inputs": in, "add_special_tokens": false})
	if json.Unmarshal(body, &toks); code != 200 || len(toks[0]) != len(ids)-2 || toks[0][0].Text != "Héllo" {
		t.Fatalf("/tokenize add_special_tokens false: %d %s", code, body)
	}
	resp, err := http.Get(f.srv.URL + "/info")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info["model_id"] != "tiny-bert" || info["dim"] != float64(dim) || info["max_input_length"] != float64(16) || info["max_client_batch_size"] != float64(2048) {
		t.Fatalf("/info: %v", info)
	}
	// The requests moved the counters.
	resp, err = http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`te_request_success{method="batch"} 1`, `embedpipe_requests_total{api="tei",outcome="ok"} 2`, `te_request_failure{err="validation"} 2`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// embedRows posts body to /embed and returns its vectors.
func (f *fixture) embedRows(t *testing.T, body map[string]any) [][]float32 {
	t.Helper()
	code, _, out := f.post(t, "/embed", "", body)
	var rows [][]float32
	if code != 200 || json.Unmarshal(out, &rows) != nil {
		t.Fatalf("/embed %v: %d %s", body, code, out)
	}
	return rows
}

// TestTEIEmbedUnnormalized checks normalize false on a model whose
// pipeline ends with Normalize (tiny-bert, mean pooling): the vectors are
// the mean of the token embeddings, computed here directly, not unit
// length; normalizing them gives the default reply; with dimensions they
// are cut, not renormalized. Requests with and without normalize share the
// batcher and each gets its own kind of vector.
func TestTEIEmbedUnnormalized(t *testing.T) {
	f := newFixture(t, httpapi.Config{}, workers.BatcherConfig{MaxWait: 20 * time.Millisecond})
	texts := []string{"Hello, world!", "a rather longer second text to pool"}
	dim, h := f.m.Dim(), f.m.Hidden()
	var b encoder.Batch
	for _, s := range texts {
		f.m.AppendTo(&b, s, "", 0)
	}
	tokens := make([]float32, b.Tokens()*h)
	if err := f.m.TokenEmbeddingsBatch(context.Background(), &b, tokens); err != nil {
		t.Fatal(err)
	}
	var raw, unit [][]float32
	done := make(chan struct{})
	go func() { // at the same time as the unnormalized request
		defer close(done)
		code, _, out := f.post(t, "/embed", "", map[string]any{"inputs": texts})
		if code != 200 || json.Unmarshal(out, &unit) != nil {
			t.Errorf("/embed: %d %s", code, out)
		}
	}()
	raw = f.embedRows(t, map[string]any{"inputs": texts, "normalize": false})
	<-done
	if len(raw) != 2 || len(unit) != 2 {
		t.Fatalf("got %d and %d rows", len(raw), len(unit))
	}
	for i := range texts {
		lo, hi := b.Starts[i], b.Starts[i+1]
		var sq float64
		for d := range dim {
			var sum float64
			for k := lo; k < hi; k++ {
				sum += float64(tokens[k*h+d])
			}
			mean := sum / float64(hi-lo)
			if diff := math.Abs(mean - float64(raw[i][d])); diff > 2e-5 {
				t.Fatalf("row %d dim %d: %v, the mean of the token embeddings is %v", i, d, raw[i][d], mean)
			}
			sq += mean * mean
		}
		if n := math.Sqrt(sq); math.Abs(n-1) < 1e-3 {
			t.Fatalf("row %d: norm %v, an unnormalized mean should not be unit", i, n)
		}
		v := slices.Clone(raw[i])
		encoder.Normalize(v)
		if !slices.Equal(v, unit[i]) {
			t.Fatalf("row %d: normalizing the normalize=false vector does not give the default reply", i)
		}
	}
	cut := f.embedRows(t, map[string]any{"inputs": texts[:1], "normalize": false, "dimensions": 4})
	if !slices.Equal(cut[0], raw[0][:4]) {
		t.Fatalf("normalize false, dimensions 4: %v, want the first 4 of %v", cut[0], raw[0])
	}
}

// TestTEIEmbedTruncateLeft checks truncation_direction Left against the
// model's batch path on ids built here: [CLS], the text's last tokens,
// [SEP]; token id inputs keep their last ids. Right, the default, keeps
// the first tokens; anything else is refused.
func TestTEIEmbedTruncateLeft(t *testing.T) {
	const maxTok = 16
	f := newFixture(t, httpapi.Config{MaxInputTokens: maxTok}, workers.BatcherConfig{})
	var words []string
	for i := range 30 {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	long := strings.Join(words, " ")
	full := f.m.TokenizeFullTo(nil, long, "")
	if len(full) <= maxTok {
		t.Fatalf("%d tokens: the text must be longer than %d", len(full), maxTok)
	}
	direct := func(ids []int32) []float32 {
		var b encoder.Batch
		b.Add(ids)
		out := make([]float32, f.m.Dim())
		if err := f.m.EmbedBatch(context.Background(), &b, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	n := len(full)
	left := append(append([]int32{full[0]}, full[n-1-(maxTok-2):n-1]...), full[n-1])
	right := append(slices.Clone(full[:maxTok-1]), full[n-1])
	got := f.embedRows(t, map[string]any{"inputs": long, "truncate": true, "truncation_direction": "Left"})
	if !slices.Equal(got[0], direct(left)) {
		t.Fatalf("Left: the vector differs from embedding %v", left)
	}
	got = f.embedRows(t, map[string]any{"inputs": long, "truncate": true, "truncation_direction": "right"})
	if !slices.Equal(got[0], direct(right)) {
		t.Fatalf("Right: the vector differs from embedding %v", right)
	}
	got = f.embedRows(t, map[string]any{"inputs": [][]int32{full}, "truncate": true, "truncation_direction": "Left"})
	if !slices.Equal(got[0], direct(full[n-maxTok:])) {
		t.Fatal("Left on token ids: the vector differs from embedding the last ids")
	}
	if code, _, body := f.post(t, "/embed", "", map[string]any{"inputs": long, "truncate": true, "truncation_direction": "Up"}); code != 422 {
		t.Fatalf("truncation_direction Up: %d %s", code, body)
	}
}
