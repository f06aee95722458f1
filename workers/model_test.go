package workers

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
)

func TestCheckModel(t *testing.T) {
	dir := t.TempDir()
	w := &Worker{cfg: WorkerConfig{Model: schemas.Model{Dir: dir, Hub: "org/m", ContentHash: "aaa"}}}
	for _, c := range []struct {
		want schemas.Model
		ok   bool
	}{
		{schemas.Model{}, true},
		{schemas.Model{ContentHash: "aaa"}, true},
		{schemas.Model{ContentHash: "bbb"}, false},
		{schemas.Model{Dir: "/elsewhere", ContentHash: "aaa"}, true}, // the hash pins the weights
		{schemas.Model{Dir: dir + "/."}, true},
		{schemas.Model{Dir: "/elsewhere"}, false},
		{schemas.Model{Hub: "org/m"}, true},
		{schemas.Model{Hub: "org/other"}, false},
	} {
		err := w.checkModel(c.want)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrWrongModel) {
			t.Errorf("%+v: err = %v, want ok %v", c.want, err, c.ok)
		}
	}
	if err := (&Worker{}).checkModel(schemas.Model{Dir: "/x"}); err != nil {
		t.Errorf("a worker that does not know its model refused a task: %v", err)
	}
}

// TestJobRunsOnlyWithItsModel runs a worker with tiny-bert and one with a
// variant of it (another content hash): a job naming the variant's
// directory is embedded by the variant's worker only, and its manifest
// records the variant.
func TestJobRunsOnlyWithItsModel(t *testing.T) {
	texts := corpus(t)[:200]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 25)
	// The variant differs in config.json only: another content hash.
	variant := filepath.Join(root, "variant")
	src := "../testdata/tiny-bert"
	if err := os.CopyFS(variant, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(variant, "config.json")
	b, _ := os.ReadFile(cfgPath)
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["layer_norm_eps"] = 1e-11
	b, _ = json.Marshal(cfg)
	os.WriteFile(cfgPath, b, 0o644)
	mA := tinyModel(t)
	mB, err := encoder.Load(variant, encoder.WithThreads(2))
	if err != nil {
		t.Fatal(err)
	}
	if mA.ContentHash() == mB.ContentHash() {
		t.Fatal("the variant has the same content hash")
	}
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, _ := NewAllowList(root)
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 20}
	absA, _ := filepath.Abs(src)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, w := range []*Worker{
		NewWorker(js, WorkerConfig{ID: "has-A", Runner: &PipelineRunner{Model: mA}, Allow: allow, Layout: lay, Logger: testLogger(t),
			Model: schemas.Model{Dir: absA, ContentHash: mA.ContentHash()}}),
		NewWorker(js, WorkerConfig{ID: "has-B", Runner: &PipelineRunner{Model: mB}, Allow: allow, Layout: lay, Logger: testLogger(t),
			Model: schemas.Model{Dir: variant, ContentHash: mB.ContentHash()}}),
	} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "jobB", Inputs: []schemas.Input{{Path: in}}, Column: "text",
		Output: schemas.Output{Dir: out}, Model: schemas.Model{Dir: variant}}
	if _, err := Submit(ctx, js, job, lay, 50); err != nil {
		t.Fatal(err)
	}
	if err := waitJob(t, js, "jobB", 120*time.Second); err != nil {
		t.Fatal(err)
	}
	m := checkOutput(t, out, texts, mB)
	if m.Model.ContentHash != mB.ContentHash() || m.Model.Dir != variant {
		t.Errorf("manifest model %+v, want the variant's (%s)", m.Model, mB.ContentHash())
	}
	kv, _ := OpenBucket(ctx, js)
	_, rs, err := Progress(ctx, kv, "jobB")
	if err != nil || len(rs) == 0 {
		t.Fatalf("progress: %v", err)
	}
	for _, r := range rs {
		if r.Worker != "has-B" {
			t.Errorf("task %d was embedded by %s, whose model the job did not name", r.Index, r.Worker)
		}
	}
}
