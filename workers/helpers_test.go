package workers

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"
)

// corpus returns the texts of the public corpus.
func corpus(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open(filepath.Join(refs.Shared(tb), "refs", "corpus.public.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatal(err)
		}
		texts = append(texts, r.Text)
	}
	return texts
}

type textRow struct {
	ID   int64  `parquet:"id"`
	Text string `parquet:"text"`
}

// writeCorpusParquet writes texts to dir/name with rowsPerGroup rows per
// row group and returns the path.
func writeCorpusParquet(tb testing.TB, dir, name string, texts []string, rowsPerGroup int64) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	w := parquet.NewGenericWriter[textRow](f, parquet.MaxRowsPerRowGroup(rowsPerGroup))
	rows := make([]textRow, len(texts))
	for i, t := range texts {
		rows[i] = textRow{ID: int64(i), Text: t}
	}
	if _, err := w.Write(rows); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return p
}

var (
	modelOnce sync.Once
	model     *encoder.Model
	modelErr  error
)

// tinyBERT loads the bundled tiny-bert model once per test binary.
func tinyBERT(tb testing.TB) *encoder.Model {
	tb.Helper()
	modelOnce.Do(func() { model, modelErr = encoder.Load("../testdata/tiny-bert", encoder.WithThreads(2)) })
	if modelErr != nil {
		tb.Fatal(modelErr)
	}
	return model
}

// embedTexts embeds texts through the embedding seam with default options,
// the vectors every path must reproduce.
func embedTexts(tb testing.TB, m *encoder.Model, texts []string) []float32 {
	tb.Helper()
	e, err := embed.New(m, embed.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]float32, len(texts)*e.Dim())
	if _, err := e.Embed(context.Background(), out, texts); err != nil {
		tb.Fatal(err)
	}
	return out
}

func connectJS(tb testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := Connect(ConnOptions{URL: url, Name: tb.Name()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

type partRow struct {
	Row       int64     `parquet:"id"`
	Embedding []float32 `parquet:"embedding,list"`
}

// checkOutput reads every part in the manifest of dir and checks that each
// of the n input rows appears exactly once with the direct encoder's vector.
func checkOutput(tb testing.TB, dir string, texts []string, e *encoder.Model) schemas.Manifest {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var m schemas.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_SUCCESS")); err != nil {
		tb.Fatal(err)
	}
	if p := m.Provenance; p == nil || p.Model.ContentHash != e.ContentHash() || p.Dim != e.Dim() || p.Precision != string(embed.Float32) || p.Pooling != e.Info().Pooling {
		tb.Fatalf("manifest provenance %+v, want model %s, dim %d, float32", m.Provenance, e.ContentHash(), e.Dim())
	}
	dim := e.Dim()
	want := embedTexts(tb, e, texts)
	seen := make([]int, len(texts))
	var rows int64
	for _, p := range m.Parts {
		sum, size, n, err := checkPart(filepath.Join(dir, p.Name))
		if err != nil {
			tb.Fatal(err)
		}
		if sum != p.SHA256 || size != p.Bytes || n != p.Rows {
			tb.Fatalf("part %s: sha %s size %d rows %d, manifest says %s %d %d", p.Name, sum, size, n, p.SHA256, p.Bytes, p.Rows)
		}
		got, err := parquet.ReadFile[partRow](filepath.Join(dir, p.Name))
		if err != nil {
			tb.Fatal(err)
		}
		for _, r := range got {
			if r.Row < 0 || int(r.Row) >= len(texts) {
				tb.Fatalf("part %s: row %d out of range", p.Name, r.Row)
			}
			seen[r.Row]++
			w := want[int(r.Row)*dim : int(r.Row+1)*dim]
			if len(r.Embedding) != dim {
				tb.Fatalf("row %d: %d dims", r.Row, len(r.Embedding))
			}
			for j := range w {
				if math.Abs(float64(w[j]-r.Embedding[j])) > 1e-5 {
					tb.Fatalf("row %d dim %d: %g, direct encoder %g", r.Row, j, r.Embedding[j], w[j])
				}
			}
		}
		rows += int64(len(got))
	}
	for i, c := range seen {
		if c != 1 {
			tb.Fatalf("row %d appears %d times in the output", i, c)
		}
	}
	if rows != m.Rows || rows != int64(len(texts)) {
		tb.Fatalf("%d rows in parts, manifest %d, input %d", rows, m.Rows, len(texts))
	}
	return m
}

// waitJob waits for job id with a deadline.
func waitJob(tb testing.TB, js jetstream.JetStream, id string, d time.Duration) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	kv, err := OpenBucket(ctx, js)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = Wait(ctx, kv, id)
	return err
}

type tlogWriter struct{ tb testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tinyModel returns the bundled tiny-bert model, loaded once.
func tinyModel(tb testing.TB) *encoder.Model {
	tinyBERT(tb)
	return model
}
