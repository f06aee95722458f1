package workers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
)

// holdRunner stands for a long task: it runs until its context ends.
type holdRunner struct {
	started chan struct{}
	runs    atomic.Int32
	stopped chan error
}

func (r *holdRunner) RunTask(ctx context.Context, _ schemas.Task, _, _ string) (PartInfo, error) {
	r.runs.Add(1)
	r.started <- struct{}{}
	<-ctx.Done()
	r.stopped <- ctx.Err()
	return PartInfo{}, ctx.Err()
}

func TestCancelJob(t *testing.T) {
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", corpus(t)[:300], 50)
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 3}
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "cancelme", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}}
	ctx := context.Background()
	if st, err := Submit(ctx, js, job, lay, 100); err != nil || st.Tasks != 3 {
		t.Fatalf("submit: %+v %v", st, err)
	}
	run := &holdRunner{started: make(chan struct{}, 4), stopped: make(chan error, 4)}
	startWorkers(t, js, 1, WorkerConfig{Runner: run, Allow: allow, Layout: lay, Heartbeat: 100 * time.Millisecond, Logger: testLogger(t)})
	select {
	case <-run.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no task started")
	}
	kv, err := OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Cancel(ctx, kv, "cancelme")
	if err != nil || st.State != schemas.StateCancelled {
		t.Fatalf("cancel: %+v %v", st, err)
	}
	select {
	case err := <-run.stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("running task ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the running task did not stop after the cancel")
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := Wait(wctx, kv, "cancelme"); !errors.Is(err, ErrJobCancelled) {
		t.Fatalf("Wait: %v, want ErrJobCancelled", err)
	}
	// The other tasks are terminated without running.
	time.Sleep(time.Second)
	if n := run.runs.Load(); n != 1 {
		t.Fatalf("%d tasks ran, want only the one running at the cancel", n)
	}
	if _, err := os.Stat(filepath.Join(out, "_SUCCESS")); err == nil {
		t.Fatal("a cancelled job has _SUCCESS")
	}
	if st, _, err := Progress(ctx, kv, "cancelme"); err != nil || st.State != schemas.StateCancelled {
		t.Fatalf("status after cancel: %+v %v", st, err)
	}
	if _, err := Cancel(ctx, kv, "nosuchjob"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("cancel of an unknown job: %v", err)
	}
}
