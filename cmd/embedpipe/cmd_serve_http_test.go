package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

var loadRequests = flag.Int("load-requests", 0, "requests of TestServeHTTPLoad (default 2000, 500 with -short; the figures in the README come from 20000)")

// freeAddr returns a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveArgs are the arguments of an HTTP-only serve of tiny-bert on addr.
func serveArgs(addr string, extra ...string) []string {
	return append([]string{"--model", "../../testdata/tiny-bert", "--no-nats", "--http", addr, "--threads", "2", "--log-level", "error"}, extra...)
}

// startHTTPServe runs "embedpipe serve --no-nats --http" on a free loopback
// port until the test ends, and returns its base URL once /health is ready.
func startHTTPServe(t *testing.T, extra ...string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, serveArgs(addr, extra...)) }()
	t.Cleanup(func() {
		cancel() // as SIGTERM: drain and return
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not drain within 30s")
		}
	})
	url := "http://" + addr
	waitHealthy(t, url, done)
	return url
}

// startHTTPServeProcess is startHTTPServe in a process of its own (this
// test binary running main), so that its memory can be measured apart from
// the clients'; it returns the URL and the process. The process gets
// SIGTERM when the test ends and must drain and exit 0.
func startHTTPServeProcess(t *testing.T, extra ...string) (string, *os.Process) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(exe, append([]string{"-test.run=^$", "serve"}, serveArgs(addr, extra...)...)...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve process: %v\n%s", err, out.Bytes())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("serve process did not drain within 30s")
		}
	})
	url := "http://" + addr
	waitHealthy(t, url, done)
	return url, cmd.Process
}

// waitHealthy polls url's /health until it answers 200; the test fails
// when done reports that the server stopped first or after 30s.
func waitHealthy(t *testing.T, url string, done <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("serve not healthy within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// embedRef embeds texts through the model as embedpipe embed does.
func embedRef(t *testing.T, texts []string) ([]float32, int) {
	t.Helper()
	m, err := encoder.Load("../../testdata/tiny-bert")
	if err != nil {
		t.Fatal(err)
	}
	var b encoder.Batch
	for _, s := range texts {
		m.AppendTo(&b, s, "", 0)
	}
	out := make([]float32, b.Len()*m.Dim())
	if err := m.EmbedBatch(context.Background(), &b, out); err != nil {
		t.Fatal(err)
	}
	return out, m.Dim()
}

func cos32(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func postEmbeddings(url, key string, body any) (int, []byte, error) {
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/embeddings", bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type embResp struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
}

// TestServeHTTP checks /v1/embeddings of a running serve against embed's
// vectors, with the API key enforced.
func TestServeHTTP(t *testing.T) {
	url := startHTTPServe(t, "--api-key", "sk-local")
	texts := []string{"Hello, world!", "The bank of the river was muddy.", "She deposited money at the bank."}
	want, dim := embedRef(t, texts)
	code, body, err := postEmbeddings(url, "sk-local", map[string]any{"model": "tiny-bert", "input": texts})
	if err != nil || code != 200 {
		t.Fatalf("%d %s %v", code, body, err)
	}
	var r embResp
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data) != len(texts) {
		t.Fatalf("%s", body)
	}
	for i, d := range r.Data {
		if c := cos32(d.Embedding, want[i*dim:(i+1)*dim]); c < 0.999999 {
			t.Fatalf("text %d: cosine %v to embed's vector", i, c)
		}
	}
	if code, body, _ := postEmbeddings(url, "", map[string]any{"model": "tiny-bert", "input": "x"}); code != 401 {
		t.Fatalf("no key: %d %s", code, body)
	}
}

// TestServeOpenAINodeSDK drives a running serve with the official OpenAI
// Node SDK (testdata/node, installed by .ci/run with npm ci).
func TestServeOpenAINodeSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the OpenAI Node SDK test")
	}
	if _, err := os.Stat(filepath.Join("..", "..", "testdata", "node", "node_modules", "openai")); err != nil {
		t.Skip("the openai npm package is not installed: run (cd testdata/node && npm ci) to enable this test")
	}
	url := startHTTPServe(t, "--api-key", "sk-node")
	texts := []string{"Hello from Node.", "A second input, a little longer than the first."}
	want, dim := embedRef(t, texts)
	in, _ := json.Marshal(texts)
	cmd := exec.Command(node, "embed.mjs", string(in))
	cmd.Dir = filepath.Join("..", "..", "testdata", "node")
	cmd.Env = append(os.Environ(), "EMBEDPIPE_URL="+url, "EMBEDPIPE_KEY=sk-node")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var got struct {
		Float, Base64, Dims [][]float32
		Error               struct {
			Status int    `json:"status"`
			Type   string `json:"type"`
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %s: %v", out, err)
	}
	for name, vs := range map[string][][]float32{"float": got.Float, "base64": got.Base64} {
		if len(vs) != len(texts) {
			t.Fatalf("%s: %d vectors", name, len(vs))
		}
		for i, v := range vs {
			if c := cos32(v, want[i*dim:(i+1)*dim]); c < 0.999999 {
				t.Fatalf("%s %d: cosine %v to embed's vector", name, i, c)
			}
		}
	}
	for i, v := range got.Dims {
		tr := slices.Clone(want[i*dim : i*dim+8]) // Matryoshka: the first 8, renormalized
		encoder.Normalize(tr)
		if len(v) != 8 || cos32(v, tr) < 0.999999 {
			t.Fatalf("dimensions 8, text %d: %v, want %v", i, v, tr)
		}
	}
	if got.Error.Status != 400 || got.Error.Type != "invalid_request_error" {
		t.Fatalf("SDK error for an empty input: %+v", got.Error)
	}
}

// TestServeHTTPLoad sends a bounded number of requests from 64 concurrent
// clients to a serve process with a small queue: every reply is 200 with
// its own request's vector or 429, nothing else, and the process's peak
// RSS (VmHWM) stays under maxServeRSS. It logs p50/p99 latency, throughput
// and the peak RSS; with -load-requests 20000 it gives the README's
// figures.
func TestServeHTTPLoad(t *testing.T) {
	n := *loadRequests
	if n <= 0 {
		n = 2000
		if testing.Short() {
			n = 500
		}
	}
	const clients = 64
	url, proc := startHTTPServeProcess(t, "--queue", "32", "--executors", "2")
	status := fmt.Sprintf("/proc/%d/status", proc.Pid)
	idle := vmHWM(status)
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = fmt.Sprintf("load test request text number %d about topic %d", i, i*7%13)
	}
	want, dim := embedRef(t, texts)
	var next, ok, busy atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var failures []string
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				k := i % len(texts)
				js, _ := json.Marshal(map[string]any{"model": "tiny-bert", "input": texts[k]})
				t0 := time.Now()
				resp, err := hc.Post(url+"/v1/embeddings", "application/json", bytes.NewReader(js))
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				switch resp.StatusCode {
				case 200:
					var r embResp
					if json.Unmarshal(body, &r) != nil || len(r.Data) != 1 || !slices.Equal(r.Data[0].Embedding, want[k*dim:(k+1)*dim]) {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("request %d: reply does not match its text", i))
						mu.Unlock()
						continue
					}
					ok.Add(1)
					mine = append(mine, d)
				case 429:
					if resp.Header.Get("Retry-After") == "" {
						mu.Lock()
						failures = append(failures, "429 without Retry-After")
						mu.Unlock()
					}
					busy.Add(1)
				default:
					mu.Lock()
					failures = append(failures, fmt.Sprintf("request %d: %d %s", i, resp.StatusCode, body))
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	tr.CloseIdleConnections()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	if ok.Load()+busy.Load() != int64(n) || ok.Load() == 0 {
		t.Fatalf("%d ok + %d 429 of %d requests", ok.Load(), busy.Load(), n)
	}
	peak := vmHWM(status)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("load: %d requests from %d clients in %.2fs: %d ok (%.0f req/s), %d 429; latency of ok replies p50 %v p99 %v; serve peak RSS %.1f MiB (%.1f MiB when ready)",
		n, clients, wall.Seconds(), ok.Load(), float64(ok.Load())/wall.Seconds(), busy.Load(),
		q(0.50).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), float64(peak)/(1<<20), float64(idle)/(1<<20))
	if peak == 0 {
		t.Logf("no %s here: peak RSS not checked", status)
	} else if peak > maxServeRSS {
		t.Fatalf("serve peak RSS %d MiB over the bound of %d MiB", peak>>20, maxServeRSS>>20)
	}
}

// maxServeRSS bounds the peak RSS of the serve process under
// TestServeHTTPLoad (tiny-bert, a queue of 32 requests, 64 clients'
// connections; about 65 MiB measured). A server that buffered requests
// beyond its queue or leaked per request would pass it within the 20,000
// requests of the README's run.
const maxServeRSS = 256 << 20

// postJSON posts body to url+path and returns the status and the reply.
func postJSON(t *testing.T, url, path string, body any) (int, []byte) {
	t.Helper()
	js, _ := json.Marshal(body)
	resp, err := http.Post(url+path, "application/json", bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServeHTTPRerank runs serve --http on tiny-reranker and checks TEI's
// /rerank against embedpipe score on the same pairs (the first 40
// reference pairs and every truncation pair) and against the float64
// reference, both within 2e-5: the pairs of one query in one request,
// the reply sorted by descending score with each index naming its text.
// /embed and /v1/embeddings refuse the model with TEI's 424 and OpenAI's
// 400.
func TestServeHTTPRerank(t *testing.T) {
	model := refs.ModelDir(t, "tiny-reranker")
	in, pairs := scoreInput(t, 40)
	out := filepath.Join(t.TempDir(), "scored.jsonl")
	if err := runScore(context.Background(), []string{"--model", model, "--input", in, "--output", out, "--quiet",
		"--query-column", "query", "--document-column", "document"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	scored := make([]float64, len(pairs))
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n"))[:len(pairs)] {
		var r struct {
			Score float64 `json:"score"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		scored[i] = r.Score
	}
	url := startHTTPServe(t, "--model", model)
	var queries []string
	byQuery := map[string][]int{}
	for i, p := range pairs {
		if _, ok := byQuery[p.Query]; !ok {
			queries = append(queries, p.Query)
		}
		byQuery[p.Query] = append(byQuery[p.Query], i)
	}
	worstScore, worstRef, checked := 0.0, 0.0, 0
	for _, q := range queries {
		idx := byQuery[q]
		var texts []string
		for _, i := range idx {
			texts = append(texts, pairs[i].Passage)
		}
		code, body := postJSON(t, url, "/rerank", map[string]any{"query": q, "texts": texts, "truncate": true})
		var ranks []struct {
			Index int     `json:"index"`
			Score float64 `json:"score"`
		}
		if code != 200 || json.Unmarshal(body, &ranks) != nil || len(ranks) != len(texts) {
			t.Fatalf("/rerank: %d %s", code, body)
		}
		seen := map[int]bool{}
		for k, r := range ranks {
			if r.Index < 0 || r.Index >= len(texts) || seen[r.Index] || (k > 0 && r.Score > ranks[k-1].Score) {
				t.Fatalf("/rerank %q: %+v is not a permutation sorted by descending score", q, ranks)
			}
			seen[r.Index] = true
			i := idx[r.Index]
			worstScore = max(worstScore, math.Abs(r.Score-scored[i]))
			worstRef = max(worstRef, math.Abs(r.Score-pairs[i].Score))
			checked++
		}
	}
	t.Logf("/rerank: %d pairs in %d requests, worst |diff| to score %.3g, to the reference %.3g", checked, len(queries), worstScore, worstRef)
	if checked != len(pairs) || worstScore > 2e-5 || worstRef > 2e-5 {
		t.Errorf("%d of %d pairs, worst diff to score %.3g, to the reference %.3g (bound 2e-5)", checked, len(pairs), worstScore, worstRef)
	}
	if code, body := postJSON(t, url, "/embed", map[string]any{"inputs": "x"}); code != 424 || !bytes.Contains(body, []byte("use /rerank")) {
		t.Errorf("/embed on a reranker: %d %s", code, body)
	}
	if code, body := postJSON(t, url, "/v1/embeddings", map[string]any{"input": "x"}); code != 400 || !bytes.Contains(body, []byte("model_not_supported")) {
		t.Errorf("/v1/embeddings on a reranker: %d %s", code, body)
	}
}

// TestServeHTTPSparse runs serve --http on tiny-splade and checks TEI's
// /embed_sparse against the float64 reference (every entry above 1e-4
// present, values within 2e-5, indices ascending) on 200 rows, 50 texts a
// request; --sparse-top-k 4 keeps the 4 largest; /rerank and /embed
// refuse the model with 424.
func TestServeHTTPSparse(t *testing.T) {
	model := refs.ModelDir(t, "tiny-splade")
	var rows []refs.SparseRow
	for _, r := range refs.ReadJSONL[refs.SparseRow](t, "tiny-splade.jsonl.gz") {
		if r.Text != "" && len(rows) < 200 {
			rows = append(rows, r)
		}
	}
	url := startHTTPServe(t, "--model", model)
	type value struct {
		Index int32   `json:"index"`
		Value float64 `json:"value"`
	}
	worst, missing := 0.0, 0
	for lo := 0; lo < len(rows); lo += 50 {
		var texts []string
		for _, r := range rows[lo : lo+50] {
			texts = append(texts, r.Text)
		}
		code, body := postJSON(t, url, "/embed_sparse", map[string]any{"inputs": texts, "truncate": true})
		var vecs [][]value
		if code != 200 || json.Unmarshal(body, &vecs) != nil || len(vecs) != len(texts) {
			t.Fatalf("/embed_sparse: %d %.300s", code, body)
		}
		for j, v := range vecs {
			ref := rows[lo+j]
			got := map[int32]float64{}
			for e, x := range v {
				if e > 0 && x.Index <= v[e-1].Index {
					t.Fatalf("row %d: indices not ascending", lo+j)
				}
				got[x.Index] = x.Value
			}
			for e, ix := range ref.Indices {
				g, ok := got[ix]
				if !ok && ref.Values[e] > 1e-4 {
					missing++
				}
				worst = max(worst, math.Abs(g-ref.Values[e]))
				delete(got, ix)
			}
			for _, g := range got {
				worst = max(worst, g)
			}
		}
	}
	t.Logf("/embed_sparse: %d vectors, worst abs diff %.3g, %d reference entries above 1e-4 missing", len(rows), worst, missing)
	if missing > 0 || worst > 2e-5 {
		t.Errorf("%d entries missing, worst diff %.3g (bound 2e-5)", missing, worst)
	}
	for _, c := range []struct {
		path string
		body any
	}{{"/rerank", map[string]any{"query": "q", "texts": []string{"a"}}}, {"/embed", map[string]any{"inputs": "a"}}} {
		if code, body := postJSON(t, url, c.path, c.body); code != 424 || !bytes.Contains(body, []byte("use /embed_sparse")) {
			t.Errorf("%s on a sparse model: %d %s", c.path, code, body)
		}
	}
	top := startHTTPServe(t, "--model", model, "--sparse-top-k", "4")
	code, body := postJSON(t, top, "/embed_sparse", map[string]any{"inputs": []string{rows[0].Text, rows[1].Text}})
	var vecs [][]value
	if code != 200 || json.Unmarshal(body, &vecs) != nil || len(vecs) != 2 || len(vecs[0]) != 4 || len(vecs[1]) != 4 {
		t.Fatalf("--sparse-top-k 4: %d %s", code, body)
	}
	for i, v := range vecs {
		// The 4 kept are the 4 largest of the reference's.
		ref := slices.Clone(rows[i].Values)
		slices.Sort(ref)
		var kept []float64
		for _, x := range v {
			kept = append(kept, x.Value)
		}
		slices.Sort(kept)
		for k := range 4 {
			if math.Abs(kept[k]-ref[len(ref)-4+k]) > 2e-5 {
				t.Fatalf("vector %d: kept %v, the reference's 4 largest are %v", i, kept, ref[len(ref)-4:])
			}
		}
	}
	if err := runServe(context.Background(), serveArgs(freeAddr(t), "--sparse-top-k", "4")); err == nil || !strings.Contains(err.Error(), "--sparse-top-k applies to a sparse") {
		t.Errorf("--sparse-top-k on tiny-bert: %v", err)
	}
}
