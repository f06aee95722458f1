package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/hub"
	"github.com/embedpipe/embedpipe/internal/hubtest"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/parquet-go/parquet-go"
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

// hubModels starts a fake hub serving acme/tiny-mpnet (model B) and
// returns it with a Models cache whose default is tiny-bert (model A), the
// hub client pointed at the fake hub with an empty cache.
func hubModels(t *testing.T, max int, allow *AllowList) (*hubtest.Server, *Models, string) {
	t.Helper()
	srv, err := hubtest.New(map[string]hubtest.Repo{"acme/tiny-mpnet": {Dir: refs.ModelDir(t, "tiny-mpnet")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	c := &hub.Client{Endpoint: srv.URL, CacheDir: t.TempDir()}
	absA, _ := filepath.Abs("../testdata/tiny-bert")
	ms, err := NewModels(ModelsConfig{Default: absA, Max: max, Allow: allow, Logger: testLogger(t),
		Options: []encoder.Option{encoder.WithThreads(2), encoder.WithHub(c)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Close)
	return srv, ms, absA
}

// TestModelsCache checks the cache on its own: one load for concurrent
// Acquires of a model, a held model never evicted (a second model waits
// for its slot), the least recently used idle model evicted, and the
// refusals with their reasons.
func TestModelsCache(t *testing.T) {
	root := t.TempDir()
	allow, _ := NewAllowList(root)
	srv, ms, absA := hubModels(t, 1, allow)
	commit := srv.Commit("acme/tiny-mpnet")
	direct, err := encoder.Load(refs.ModelDir(t, "tiny-mpnet"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wantB := schemas.Model{Hub: "acme/tiny-mpnet", Revision: commit}

	// Eight tasks ask for B at once: one download, one model.
	leases := make([]*ModelLease, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range leases {
		wg.Add(1)
		go func() { defer wg.Done(); leases[i], errs[i] = ms.Acquire(ctx, wantB) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
		if leases[i].Model != leases[0].Model {
			t.Fatalf("acquire %d loaded a second copy of the model", i)
		}
	}
	revs := 0
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r, "GET /api/models/") {
			revs++
		}
	}
	if revs != 1 {
		t.Errorf("%d revision requests for eight concurrent acquires, want 1", revs)
	}
	used := leases[0].Used
	if used.Hub != "acme/tiny-mpnet" || used.Revision != commit || used.ContentHash != direct.ContentHash() || used.Dir != "" {
		t.Errorf("lease names %+v, want the hub id, commit %s and content hash %s", used, commit, direct.ContentHash())
	}

	// B is held: A (the default) cannot take the only slot.
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = ms.Acquire(tctx, schemas.Model{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquiring a second model while the only slot is held: %v, want a wait that times out", err)
	}
	if got := embedTexts(t, leases[0].Model, []string{"still loaded"}); len(got) != direct.Dim() {
		t.Fatalf("held model embeds %d values", len(got))
	}
	// Released, B is evicted for A.
	for _, l := range leases {
		l.Release()
	}
	la, err := ms.Acquire(ctx, schemas.Model{})
	if err != nil {
		t.Fatal(err)
	}
	if la.Used.Dir != absA || la.Used.ContentHash != tinyModel(t).ContentHash() || ms.Len() != 1 {
		t.Fatalf("default lease %+v, %d models in memory", la.Used, ms.Len())
	}
	la.Release()
	// Named by its directory or by its content hash alone, A is the
	// same model.
	for _, w := range []schemas.Model{{Dir: absA}, {ContentHash: la.Used.ContentHash}, {Dir: absA, ContentHash: la.Used.ContentHash}} {
		l, err := ms.Acquire(ctx, w)
		if err != nil || l.Model != la.Model {
			t.Fatalf("%+v: %v, or another model", w, err)
		}
		l.Release()
	}

	for _, c := range []struct {
		want     schemas.Model
		sentinel error
		reason   string
	}{
		{schemas.Model{Hub: "acme/tiny-mpnet", ContentHash: la.Used.ContentHash}, ErrModelMismatch, "pins content hash"},
		{schemas.Model{Hub: "acme/missing", Revision: "main"}, ErrPermanent, "acme/missing"},
		{schemas.Model{Dir: refs.ModelDir(t, "tiny-mpnet")}, ErrWrongModel, "outside every --allow-path root"},
		{schemas.Model{ContentHash: strings.Repeat("ab", 32)}, ErrWrongModel, "no model loaded here"},
		{schemas.Model{Dir: filepath.Join(root, "empty")}, ErrWrongModel, "no such file"},
	} {
		l, err := ms.Acquire(ctx, c.want)
		if err == nil {
			l.Release()
			t.Errorf("%+v: acquired %+v", c.want, l.Used)
			continue
		}
		if !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%+v: %v, want %v with %q", c.want, err, c.sentinel, c.reason)
		}
	}
	// A broken directory under the roots fails for good, with the reason.
	broken := filepath.Join(root, "broken")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "config.json"), []byte("{"), 0o644)
	if _, err := ms.Acquire(ctx, schemas.Model{Dir: broken}); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), broken) {
		t.Errorf("broken model directory: %v", err)
	}
}

// TestWorkerLoadsJobModels runs one worker started with tiny-bert (A) and
// room for a single model: jobs naming hub model B at a commit, A by its
// directory, B at main and no model at all alternate, each embedded with
// the model it names (the vectors of that model loaded directly), with
// manifests and part metadata naming it, so each job evicts the model of
// the one before. A job pinning B to A's content hash fails with the
// reason and no _SUCCESS.
func TestWorkerLoadsJobModels(t *testing.T) {
	texts := corpus(t)[:120]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 40)
	allow, _ := NewAllowList(root)
	srv, ms, absA := hubModels(t, 1, allow)
	commit := srv.Commit("acme/tiny-mpnet")
	mA := tinyModel(t)
	mB, err := encoder.Load(refs.ModelDir(t, "tiny-mpnet"), encoder.WithThreads(2))
	if err != nil {
		t.Fatal(err)
	}
	nsrv := natstest.Start(t, "")
	_, js := connectJS(t, nsrv.URL())
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 5}
	startWorkers(t, js, 1, WorkerConfig{Runner: &PipelineRunner{}, Models: ms, Allow: allow, Layout: lay, Logger: testLogger(t)})
	ctx := context.Background()
	for i, c := range []struct {
		model schemas.Model
		m     *encoder.Model
	}{
		{schemas.Model{Hub: "acme/tiny-mpnet", Revision: commit}, mB},
		{schemas.Model{Dir: absA}, mA},
		{schemas.Model{Hub: "acme/tiny-mpnet"}, mB},
		{schemas.Model{}, mA},
	} {
		id := fmt.Sprintf("alt%d", i)
		out := filepath.Join(root, id)
		job := schemas.Job{ID: id, Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}, Model: c.model}
		if _, err := Submit(ctx, js, job, lay, 40); err != nil {
			t.Fatal(err)
		}
		if err := waitJob(t, js, id, 120*time.Second); err != nil {
			t.Fatalf("job %s naming %+v: %v", id, c.model, err)
		}
		m := checkOutput(t, out, texts, c.m)
		want := schemas.Model{Dir: absA, ContentHash: mA.ContentHash()}
		if c.m == mB {
			want = schemas.Model{Hub: "acme/tiny-mpnet", Revision: commit, ContentHash: mB.ContentHash()}
		}
		if m.Model != want {
			t.Errorf("job %s: manifest model %+v, want %+v", id, m.Model, want)
		}
		for _, p := range m.Parts {
			pm, ok, err := PartModel(filepath.Join(out, p.Name))
			if err != nil || !ok || pm != want {
				t.Errorf("job %s part %s: metadata model %+v (%v, %v), want %+v", id, p.Name, pm, ok, err, want)
			}
		}
		checkCosine(t, out, m, texts, c.m)
		if n := ms.Len(); n != 1 {
			t.Errorf("after job %s: %d models in memory, --max-models 1", id, n)
		}
	}

	out := filepath.Join(root, "pinned")
	job := schemas.Job{ID: "pinned", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out},
		Model: schemas.Model{Hub: "acme/tiny-mpnet", Revision: commit, ContentHash: mA.ContentHash()}}
	if _, err := Submit(ctx, js, job, lay, 40); err != nil {
		t.Fatal(err)
	}
	err = waitJob(t, js, "pinned", 60*time.Second)
	if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "pins content hash "+mA.ContentHash()) {
		t.Fatalf("job pinning B to A's content hash: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "_SUCCESS")); err == nil {
		t.Error("the mismatched job has a _SUCCESS")
	}
}

// checkCosine reads the parts of a finished job with parquet-go, apart from
// checkOutput's reader: each part's key-value metadata must name the
// manifest's model, and every vector must match model em's through the
// embedding seam by cosine similarity.
func checkCosine(t *testing.T, dir string, m schemas.Manifest, texts []string, em *encoder.Model) {
	t.Helper()
	want := embedTexts(t, em, texts)
	dim := em.Dim()
	wantMD, _ := json.Marshal(usedModel(em))
	for _, p := range m.Parts {
		rows, err := parquet.ReadFile[partRow](filepath.Join(dir, p.Name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(dir, p.Name))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		pf, err := parquet.OpenFile(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		var got schemas.Model
		md, ok := pf.Lookup(ModelMetadataKey)
		f.Close()
		if err := json.Unmarshal([]byte(md), &got); !ok || err != nil || got != m.Model {
			t.Fatalf("part %s: key-value metadata %s = %q (%v), want the manifest's model %s", p.Name, ModelMetadataKey, md, ok, wantMD)
		}
		for _, r := range rows {
			w := want[int(r.Row)*dim : int(r.Row+1)*dim]
			var dot, nw, ng float64
			for j := range w {
				dot += float64(w[j]) * float64(r.Embedding[j])
				nw += float64(w[j]) * float64(w[j])
				ng += float64(r.Embedding[j]) * float64(r.Embedding[j])
			}
			if cos := dot / math.Sqrt(nw*ng); !(cos >= 0.999999) {
				t.Fatalf("part %s row %d: cosine %.7f to %s's vector", p.Name, r.Row, cos, em.Info().Dir)
			}
		}
	}
}

// TestPinnedWorkerLeavesTask runs a worker pinned to tiny-bert (no Models,
// as --pin-model): it refuses a job naming hub model B and leaves it, so
// the job waits, undone, until a worker that can load B takes it.
func TestPinnedWorkerLeavesTask(t *testing.T) {
	texts := corpus(t)[:60]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 30)
	allow, _ := NewAllowList(root)
	srv, ms, absA := hubModels(t, 2, allow)
	mA := tinyModel(t)
	nsrv := natstest.Start(t, "")
	_, js := connectJS(t, nsrv.URL())
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 100}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	run := func(w *Worker) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	run(NewWorker(js, WorkerConfig{ID: "pinned", Runner: &PipelineRunner{Model: mA}, Allow: allow, Layout: lay, Logger: testLogger(t),
		Model: schemas.Model{Dir: absA, ContentHash: mA.ContentHash()}, ModelHash: mA.ContentHash()}))
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "jobB", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out},
		Model: schemas.Model{Hub: "acme/tiny-mpnet", Revision: srv.Commit("acme/tiny-mpnet")}}
	if _, err := Submit(ctx, js, job, lay, 30); err != nil {
		t.Fatal(err)
	}
	if err := waitJob(t, js, "jobB", 3*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with only the pinned worker the job ended: %v", err)
	}
	kv, _ := OpenBucket(ctx, js)
	st, rs, err := Progress(ctx, kv, "jobB")
	if err != nil || len(rs) != 0 || st.State != schemas.StateRunning {
		t.Fatalf("after the pinned worker's refusals: status %+v, %d results, %v", st, len(rs), err)
	}
	if _, err := os.Stat(out); err == nil {
		if ents, _ := os.ReadDir(out); len(ents) > 0 {
			t.Fatalf("the pinned worker wrote %d files for a job naming another model", len(ents))
		}
	}
	run(NewWorker(js, WorkerConfig{ID: "multi", Runner: &PipelineRunner{}, Models: ms, Allow: allow, Layout: lay, Logger: testLogger(t)}))
	if err := waitJob(t, js, "jobB", 120*time.Second); err != nil {
		t.Fatal(err)
	}
	mB, err := encoder.Load(refs.ModelDir(t, "tiny-mpnet"))
	if err != nil {
		t.Fatal(err)
	}
	m := checkOutput(t, out, texts, mB)
	if m.Model.Hub != "acme/tiny-mpnet" || m.Model.ContentHash != mB.ContentHash() {
		t.Errorf("manifest model %+v", m.Model)
	}
	_, rs, _ = Progress(ctx, kv, "jobB")
	for _, r := range rs {
		if r.Worker != "multi" {
			t.Errorf("task %d embedded by %s", r.Index, r.Worker)
		}
	}
}

// onlyTask runs task index only and hands every other task back (a
// transient error), so that the test decides which worker embeds which
// task.
type onlyTask struct {
	TaskRunner
	index int
}

func (r onlyTask) RunTask(ctx context.Context, t schemas.Task, input, outDir string) (PartInfo, error) {
	if t.Index != r.index {
		return PartInfo{}, fmt.Errorf("task %d is for another worker of this test", t.Index)
	}
	return r.TaskRunner.RunTask(ctx, t, input, outDir)
}

// TestMixedModelPartsFailJob runs a job that names no model on two workers
// with different models, task 0 on one and task 1 on the other: the parts
// record different models, so the job fails with the reason instead of
// completing with a manifest that names one model for both.
func TestMixedModelPartsFailJob(t *testing.T) {
	texts := corpus(t)[:80]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 40)
	mB, err := encoder.Load(refs.ModelDir(t, "tiny-mpnet"))
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, _ := NewAllowList(root)
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 50}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, m := range []*encoder.Model{tinyModel(t), mB} {
		w := NewWorker(js, WorkerConfig{ID: fmt.Sprintf("w%d", i), Runner: onlyTask{&PipelineRunner{Model: m}, i}, Allow: allow, Layout: lay, Logger: testLogger(t)})
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "mixed", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}}
	if st, err := Submit(ctx, js, job, lay, 40); err != nil || st.Tasks != 2 {
		t.Fatalf("submit: %+v %v", st, err)
	}
	err = waitJob(t, js, "mixed", 60*time.Second)
	if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "one job's parts must share a model") {
		t.Fatalf("job embedded with two models: %v", err)
	}
	for _, name := range []string{"manifest.json", "_SUCCESS"} {
		if _, err := os.Stat(filepath.Join(out, name)); err == nil {
			t.Errorf("the job with mixed parts has %s", name)
		}
	}
}
