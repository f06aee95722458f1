package workers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

var pathTexts = []string{
	"Hello, world!",
	"The quick brown fox jumps over the lazy dog.",
	"Embeddings map texts to vectors.",
	"a",
	"The bank of the river was muddy after the rain.",
	"Ünïcödé text and an emoji 🙂.",
	"Short.",
	"Matryoshka embeddings keep their meaning when truncated to their first dimensions.",
}

// pathOptions is one set of embedding options as each path takes them.
type pathOptions struct {
	name    string
	file    pipeline.Config // Inputs and Output are set by the test
	request string          // extra JSON fields of the embed request
	stream  embed.Options
}

// TestPathsGiveIdenticalVectors embeds the same texts with the same options
// through the file pipeline (embed), the NATS embed service (serve) and the
// stream bridge (stream): every value must be the same bits, because all
// three go through the one embedding seam. Cases: truncate-dim 16 with
// normalize, int8 precision with given ranges, and a model whose pooling
// excludes prompt tokens (include_prompt false) with a prompt, where the
// vectors must also equal pooling the run's token embeddings without the
// prompt's tokens.
func TestPathsGiveIdenticalVectors(t *testing.T) {
	m := tinyBERT(t)
	yes := true
	trunc := pathOptions{name: "truncate 16 normalize",
		file:    pipeline.Config{TruncateDim: 16, Normalize: &yes},
		request: `"truncate_dim":16,"normalize":true`,
		stream:  embed.Options{TruncateDim: 16, Normalize: &yes}}
	base := runPaths(t, m, trunc)

	// Calibration ranges from the truncated vectors themselves.
	lo, hi := make([]float32, 16), make([]float32, 16)
	for d := range lo {
		lo[d], hi[d] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for i := range pathTexts {
		for d, x := range base[i*16 : (i+1)*16] {
			lo[d], hi[d] = min(lo[d], x), max(hi[d], x)
		}
	}
	rj, _ := json.Marshal([][]float32{lo, hi})
	int8s := pathOptions{name: "int8 with ranges",
		file:    pipeline.Config{TruncateDim: 16, Precision: embed.Int8, Ranges: [2][]float32{lo, hi}},
		request: `"truncate_dim":16,"precision":"int8","ranges":` + string(rj),
		stream:  embed.Options{TruncateDim: 16, Precision: embed.Int8, Ranges: [2][]float32{lo, hi}}}
	q := runPaths(t, m, int8s)
	distinct := map[float32]bool{}
	for _, v := range q {
		if v != float32(int8(v)) {
			t.Fatalf("int8 output value %v is not an int8 code", v)
		}
		distinct[v] = true
	}
	if len(distinct) < 20 {
		t.Fatalf("int8 output has only %d distinct codes", len(distinct))
	}

	xm, err := encoder.Load(refs.ExcludedPromptVariant(t, "../testdata/tiny-bert"))
	if err != nil {
		t.Fatal(err)
	}
	excl := pathOptions{name: "include_prompt false",
		file:    pipeline.Config{PromptName: "query"},
		request: `"prompt_name":"query"`,
		stream:  embed.Options{PromptName: "query"}}
	got := runPaths(t, xm, excl)
	e, err := embed.New(xm, embed.Options{PromptName: "query"})
	if err != nil {
		t.Fatal(err)
	}
	skip, h := e.Config().PoolSkip, xm.Hidden()
	if skip < 2 {
		t.Fatalf("pool skip %d for the prompt %q", skip, e.Config().Prompt)
	}
	for i, text := range pathTexts {
		var b encoder.Batch
		b.Reset()
		ids, _ := e.TokenizeTo(nil, text)
		b.Add(ids)
		tok := make([]float32, len(ids)*h)
		if err := e.TokenEmbeddingsTo(context.Background(), tok, &b); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, h)
		for j := range want {
			var s float64
			for k := skip; k < len(ids); k++ {
				s += float64(tok[k*h+j])
			}
			want[j] = float32(s / float64(len(ids)-skip))
		}
		encoder.Normalize(want)
		closeTo(t, "text "+strconv.Itoa(i)+" pooled without the prompt", got[i*h:(i+1)*h], want)
	}
}

// runPaths embeds pathTexts through the three paths with o, checks that
// they agree bit for bit and returns the vectors (quantized values as
// numbers), row-major.
func runPaths(t *testing.T, m *encoder.Model, o pathOptions) []float32 {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()

	// embed: the file pipeline.
	cfg := o.file
	cfg.Inputs = []pipeline.Input{{Path: writeCorpusParquet(t, dir, "in.parquet", pathTexts, 3)}}
	cfg.Output = filepath.Join(dir, "out.parquet")
	cfg.ChunkRows = 3
	if _, err := pipeline.Run(ctx, m, cfg); err != nil {
		t.Fatalf("%s: embed: %v", o.name, err)
	}
	file := readVectors(t, cfg.Output)

	// serve: the embed endpoint of the NATS service.
	srv := natstest.Start(t, "")
	nc, js := connectJS(t, srv.URL())
	svc, err := StartService(nc, ServiceConfig{Encoder: m, Model: "tiny-bert"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	texts, _ := json.Marshal(pathTexts)
	msg, err := nc.Request(EmbedSubject, []byte(`{"texts":`+string(texts)+`,`+o.request+`}`), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("%s: serve: error %s %s", o.name, code, msg.Header.Get(micro.ErrorHeader))
	}
	var rep schemas.EmbedReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		t.Fatal(err)
	}
	var served []float32
	for _, v := range rep.Embeddings {
		served = append(served, v...)
	}

	// stream: the JetStream bridge.
	for name, subj := range map[string]string{"TEXTS": "texts.>", "VECTORS": "vectors.>"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, tx := range pathTexts {
		body, _ := json.Marshal(schemas.Record{ID: strconv.Itoa(i), Text: tx})
		if _, err := js.Publish(ctx, "texts.in", body); err != nil {
			t.Fatal(err)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunStream(sctx, js, StreamConfig{Encoder: m, Options: o.stream, Model: "tiny-bert", From: "TEXTS", To: "VECTORS",
			Batch: 3, Logger: testLogger(t)})
	}()
	vs, _ := js.Stream(ctx, "VECTORS")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if info, err := vs.Info(ctx); err == nil && info.State.Msgs >= uint64(len(pathTexts)) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%s: stream: %v", o.name, err)
	}
	rows := make([][]float32, len(pathTexts))
	for seq := uint64(1); seq <= uint64(len(pathTexts)); seq++ {
		raw, err := vs.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("%s: stream record %d: %v", o.name, seq, err)
		}
		var rec schemas.Embedded
		if err := json.Unmarshal(raw.Data, &rec); err != nil {
			t.Fatal(err)
		}
		i, _ := strconv.Atoi(rec.ID)
		rows[i] = rec.Embedding
	}
	var streamed []float32
	for _, r := range rows {
		streamed = append(streamed, r...)
	}

	sameBits(t, o.name+": serve vs embed", served, file)
	sameBits(t, o.name+": stream vs embed", streamed, file)
	return file
}

// readVectors reads the embedding column of a pipeline output as numbers
// (int8 codes as their values).
func readVectors(t *testing.T, path string) []float32 {
	t.Helper()
	r, err := dataset.Open(path, dataset.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	col := r.Schema().FieldIndices("embedding")[0]
	var out []float32
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fl := c.Record.Column(col).(*array.FixedSizeList)
		switch v := fl.ListValues().(type) {
		case *array.Float32:
			out = append(out, v.Float32Values()...)
		case *array.Int8:
			for _, x := range v.Int8Values() {
				out = append(out, float32(x))
			}
		default:
			t.Fatalf("embedding values of type %s", v.DataType())
		}
		c.Record.Release()
	}
	return out
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: value %d is %v, want %v (not bit-identical)", what, i, got[i], want[i])
		}
	}
}
