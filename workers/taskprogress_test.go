package workers

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// gateRunner reports progress, waits to be released, then runs the task
// with the real PipelineRunner, which reports its own progress.
type gateRunner struct {
	inner   *PipelineRunner
	started chan struct{}
	release chan struct{}
}

func (r *gateRunner) RunTask(ctx context.Context, t schemas.Task, in, out string) (PartInfo, error) {
	ReportTaskProgress(ctx, 120, 1200)
	r.started <- struct{}{}
	select {
	case <-r.release:
	case <-ctx.Done():
		return PartInfo{}, ctx.Err()
	}
	return r.inner.RunTask(ctx, t, in, out)
}

// TestStatusShowsRunningTask checks that while a task runs, Progress lists
// it with the rows and tokens its runner reported, its worker and its
// planned rows, and that the entry goes once the task's result is in.
func TestStatusShowsRunningTask(t *testing.T) {
	root := t.TempDir()
	texts := corpus(t)[:300]
	in := writeCorpusParquet(t, root, "in.parquet", texts, 300)
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 3}
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "watched", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}}
	ctx := context.Background()
	if st, err := Submit(ctx, js, job, lay, 1000); err != nil || st.Tasks != 1 {
		t.Fatalf("submit: %+v %v", st, err)
	}
	m := tinyModel(t)
	run := &gateRunner{inner: &PipelineRunner{Model: m}, started: make(chan struct{}, 1), release: make(chan struct{})}
	startWorkers(t, js, 1, WorkerConfig{Runner: run, Allow: allow, Layout: lay, Heartbeat: 50 * time.Millisecond, Logger: testLogger(t)})
	select {
	case <-run.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no task started")
	}
	kv, err := OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	var st schemas.Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _, err = Progress(ctx, kv, "watched"); err != nil {
			t.Fatal(err)
		}
		if len(st.Running) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(st.Running) != 1 {
		t.Fatalf("running tasks %+v, want the one task", st.Running)
	}
	if p := st.Running[0]; p.Index != 0 || p.Worker != "w0" || p.Rows != 120 || p.Tokens != 1200 || p.TotalRows != 300 || p.StartedAt.IsZero() || p.UpdatedAt.Before(p.StartedAt) {
		t.Fatalf("running task %+v", p)
	}
	close(run.release)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := Wait(wctx, kv, "watched"); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out, texts, m)
	if st, _, err = Progress(ctx, kv, "watched"); err != nil || len(st.Running) != 0 {
		t.Fatalf("after the job: running %+v, %v", st.Running, err)
	}
	if _, err := kv.Get(ctx, progressKey("watched", 0)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the progress entry of a finished task is still there: %v", err)
	}
}
