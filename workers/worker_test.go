package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// startWorkers runs n in-process workers until the test ends.
func startWorkers(t *testing.T, js jetstream.JetStream, n int, cfg WorkerConfig) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		c := cfg
		c.ID = "w" + string(rune('0'+i))
		w := NewWorker(js, c)
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func TestJobInProcess(t *testing.T) {
	texts := corpus(t)[:600]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 50)
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	emb := tinyBERT(t)
	allow, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 3}
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "job1", Inputs: []schemas.Input{{Path: in}}, Column: "text",
		Output: schemas.Output{Dir: out}, Model: schemas.Model{Dir: "tiny-bert"}}
	ctx := context.Background()
	st, err := Submit(ctx, js, job, lay, 100)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tasks != 6 || st.TotalRows != 600 || st.State != schemas.StateRunning {
		t.Fatalf("submitted status %+v", st)
	}
	if _, err := Submit(ctx, js, job, lay, 100); !errors.Is(err, ErrJobExists) {
		t.Fatalf("resubmit: %v", err)
	}
	startWorkers(t, js, 2, WorkerConfig{Runner: &PipelineRunner{Model: tinyModel(t)}, Allow: allow, Layout: lay, Logger: testLogger(t)})
	if err := waitJob(t, js, "job1", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	m := checkOutput(t, out, texts, emb)
	if len(m.Parts) != 6 || m.Tokens == 0 {
		t.Fatalf("manifest %+v", m)
	}
	kv, _ := OpenBucket(ctx, js)
	st, rs, err := Progress(ctx, kv, "job1")
	if err != nil || st.Done != 6 || st.Rows != 600 || len(rs) != 6 || st.State != schemas.StateCompleted {
		t.Fatalf("progress %+v %v", st, err)
	}
	// Other formats: one task per file.
	var jl strings.Builder
	for i, tx := range texts[:50] {
		b, _ := json.Marshal(map[string]any{"id": i, "text": tx})
		jl.Write(append(b, '\n'))
	}
	jpath := filepath.Join(root, "in.jsonl")
	if err := os.WriteFile(jpath, []byte(jl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	jout := filepath.Join(root, "jout")
	jjob := schemas.Job{ID: "jsonl", Inputs: []schemas.Input{{Path: jpath}}, Column: "text", Output: schemas.Output{Dir: jout}}
	if st, err := Submit(ctx, js, jjob, lay, 100); err != nil || st.Tasks != 1 || st.TotalRows != 50 {
		t.Fatalf("jsonl submit: %+v %v", st, err)
	}
	if err := waitJob(t, js, "jsonl", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, jout, texts[:50], emb)
	var csv strings.Builder
	csv.WriteString("id,text\n")
	for i, tx := range texts[50:80] {
		csv.WriteString(fmt.Sprintf("%d,%q\n", i+50, strings.ReplaceAll(tx, "\"", "")))
	}
	cpath := filepath.Join(root, "in.csv")
	if err := os.WriteFile(cpath, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cout := filepath.Join(root, "cout")
	cjob := schemas.Job{ID: "csv", Inputs: []schemas.Input{{Path: cpath}}, Column: "text", Output: schemas.Output{Dir: cout}}
	if st, err := Submit(ctx, js, cjob, lay, 100); err != nil || st.Tasks != 1 {
		t.Fatalf("csv submit: %+v %v", st, err)
	}
	if err := waitJob(t, js, "csv", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	var cm schemas.Manifest
	if b, err := os.ReadFile(filepath.Join(cout, "manifest.json")); err != nil || json.Unmarshal(b, &cm) != nil || cm.Rows != 30 {
		t.Fatalf("csv manifest: %v %+v", err, cm)
	}
}

func TestPoisonAndMalformedTasks(t *testing.T) {
	texts := corpus(t)[:40]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 20)
	gone := writeCorpusParquet(t, root, "gone.parquet", texts, 20)
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, _ := NewAllowList(root)
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 3}
	ctx := context.Background()
	job := schemas.Job{ID: "poison", Inputs: []schemas.Input{{Path: in}, {Path: gone}}, Column: "text",
		Output: schemas.Output{Dir: filepath.Join(root, "out")}, Model: schemas.Model{Dir: "m"}}
	if _, err := Submit(ctx, js, job, lay, 1000); err != nil {
		t.Fatal(err)
	}
	// The second input disappears after the plan: its task fails on every
	// delivery and must land in the dead-letter stream after MaxDeliver.
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	// A malformed message and a task escaping the allowed root.
	if _, err := js.Publish(ctx, TaskSubjectPrefix+"junk.0", []byte(`{"schema":"embedpipe.task/v1","job_id":`)); err != nil {
		t.Fatal(err)
	}
	startWorkers(t, js, 1, WorkerConfig{Runner: &PipelineRunner{Model: tinyModel(t)}, Allow: allow, Layout: lay})
	err := waitJob(t, js, "poison", 60*time.Second)
	if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "gone.parquet") {
		t.Fatalf("job error %v, want ErrJobFailed naming gone.parquet", err)
	}
	dlq, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, DeadLetterSubjectPrefix+"poison.1")
	if err != nil {
		t.Fatal(err)
	}
	if h := m.Header.Get(HeaderError); !strings.Contains(h, "gone.parquet") || m.Header.Get(HeaderDeliveries) != "3" {
		t.Fatalf("dead letter headers %v", m.Header)
	}
	task, err := schemas.DecodeTask(m.Data)
	if err != nil || task.Index != 1 {
		t.Fatalf("dead letter body: %v %+v", err, task)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err = dlq.GetLastMsgForSubject(ctx, DeadLetterSubjectPrefix+"malformed")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !strings.Contains(m.Header.Get(HeaderError), "malformed task") {
		t.Fatalf("malformed message not dead-lettered: %v %v", err, m)
	}
	// The worker kept running: a new job still completes.
	texts2 := texts[:10]
	in2 := writeCorpusParquet(t, root, "in2.parquet", texts2, 5)
	out2 := filepath.Join(root, "out2")
	job2 := schemas.Job{ID: "after", Inputs: []schemas.Input{{Path: in2}}, Column: "text",
		Output: schemas.Output{Dir: out2}, Model: schemas.Model{Dir: "m"}}
	if _, err := Submit(ctx, js, job2, lay, 5); err != nil {
		t.Fatal(err)
	}
	escape := job2
	escape.ID = "escape"
	escape.Output.Dir = root + "/../escaped"
	if _, err := Submit(ctx, js, escape, lay, 100); err != nil {
		t.Fatal(err)
	}
	if err := waitJob(t, js, "after", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out2, texts2, tinyBERT(t))
	err = waitJob(t, js, "escape", 60*time.Second)
	if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("escaping job: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escaped")); err == nil {
		t.Fatal("a worker wrote outside its allowed root")
	}
}
