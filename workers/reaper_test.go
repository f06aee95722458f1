package workers

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// TestTaskThatKillsEveryWorker takes a task through MaxDeliver deliveries
// that are never acknowledged (as when the task kills its worker every
// time): the server's advisory must make a worker dead-letter the task and
// fail the job with the reason.
func TestTaskThatKillsEveryWorker(t *testing.T) {
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", corpus(t)[:10], 10)
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	ctx := context.Background()
	lay := Layout{AckWait: time.Second, MaxDeliver: 2}
	job := schemas.Job{ID: "killer", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: filepath.Join(root, "out")}}
	if _, err := Submit(ctx, js, job, lay, 100); err != nil {
		t.Fatal(err)
	}
	// Two "workers" that die holding the task: they pull it and never
	// answer.
	cons, err := js.Consumer(ctx, TaskStream, WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range b.Messages() {
			got++
			if md, _ := m.Metadata(); md.NumDelivered != uint64(i+1) {
				t.Fatalf("delivery %d of the task", md.NumDelivered)
			}
		}
		if got != 1 {
			t.Fatalf("pull %d got %d messages", i, got)
		}
	}
	// A real worker (no job for it) runs the reaper.
	allow, _ := NewAllowList(root)
	startWorkers(t, js, 1, WorkerConfig{Runner: &PipelineRunner{Model: tinyModel(t)}, Allow: allow, Layout: lay, Logger: testLogger(t)})
	err = waitJob(t, js, "killer", 30*time.Second)
	if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "never acknowledged") {
		t.Fatalf("job: %v", err)
	}
	dlq, _ := js.Stream(ctx, DeadLetterStream)
	m, err := dlq.GetLastMsgForSubject(ctx, DeadLetterSubjectPrefix+"killer.0")
	if err != nil || m.Header.Get(HeaderDeliveries) != "2" || !strings.Contains(m.Header.Get(HeaderError), "never acknowledged") {
		t.Fatalf("dead letter: %v %v", err, m)
	}
	tasks, _ := js.Stream(ctx, TaskStream)
	info, _ := tasks.Info(ctx)
	if info.State.Msgs != 0 {
		t.Fatalf("%d messages left in the work queue", info.State.Msgs)
	}
}
