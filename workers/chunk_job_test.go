package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/parquet-go/parquet-go"
)

type chunkRow struct {
	Row       int64     `parquet:"id"`
	Index     int32     `parquet:"chunk_index"`
	Text      string    `parquet:"chunk_text"`
	Embedding []float32 `parquet:"embedding,list"`
}

// TestChunkedJob runs a job with chunking options through the workers: its
// parts hold one row per chunk, the same chunks with the same vectors as
// the file pipeline gives for the same input and options; Submit refuses
// chunking options it can already tell are wrong.
func TestChunkedJob(t *testing.T) {
	texts := corpus(t)[:200]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 50)
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 3}
	ctx := context.Background()
	for _, bad := range []schemas.Options{{ChunkTokens: 8, ChunkOverlap: 8}, {ChunkOverlap: 2}, {ChunkTokens: 8, ChunkMode: "sideways"}} {
		job := schemas.Job{ID: "badchunks", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: filepath.Join(root, "bad")}, Options: bad}
		if _, err := Submit(ctx, js, job, lay, 100); !errors.Is(err, ErrBadOptions) && !errors.Is(err, schemas.ErrInvalid) {
			t.Errorf("submit with %+v: %v, want a refusal", bad, err)
		}
	}
	out := filepath.Join(root, "out")
	opts := schemas.Options{ChunkTokens: 16, ChunkOverlap: 4}
	job := schemas.Job{ID: "chunks", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}, Options: opts}
	if _, err := Submit(ctx, js, job, lay, 100); err != nil {
		t.Fatal(err)
	}
	m := tinyModel(t)
	startWorkers(t, js, 1, WorkerConfig{Runner: &PipelineRunner{Model: m}, Allow: allow, Layout: lay, Logger: testLogger(t)})
	if err := waitJob(t, js, "chunks", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(root, "ref.parquet")
	sum, err := pipeline.Run(ctx, m, pipeline.Config{Inputs: []pipeline.Input{{Path: in}}, Output: ref, ChunkTokens: 16, ChunkOverlap: 4})
	if err != nil {
		t.Fatal(err)
	}
	want, err := parquet.ReadFile[chunkRow](ref)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]chunkRow{}
	for _, r := range want {
		byKey[fmt.Sprint(r.Row, ":", r.Index)] = r
	}
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man schemas.Manifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, p := range man.Parts {
		rows, err := parquet.ReadFile[chunkRow](filepath.Join(out, p.Name))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			w, ok := byKey[fmt.Sprint(r.Row, ":", r.Index)]
			if !ok || w.Text != r.Text || len(w.Embedding) != len(r.Embedding) {
				t.Fatalf("row %d chunk %d: %q, the file pipeline has %q (found %v)", r.Row, r.Index, r.Text, w.Text, ok)
			}
			for j := range w.Embedding {
				if w.Embedding[j] != r.Embedding[j] {
					t.Fatalf("row %d chunk %d dim %d: %g, the file pipeline %g", r.Row, r.Index, j, r.Embedding[j], w.Embedding[j])
				}
			}
			got++
		}
	}
	if int64(got) != sum.ChunksOut || got != len(want) || got <= len(texts) {
		t.Fatalf("the job's parts hold %d chunks, the file pipeline %d (%d rows)", got, len(want), len(texts))
	}
}
