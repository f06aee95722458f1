package workers

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
)

// TestClusterR3 runs a job on a three-node JetStream cluster with
// replicated streams and bucket, and shuts one node down mid-job: the job
// completes with every row exactly once.
func TestClusterR3(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	url := natstest.ClusterURL(nodes)
	base := corpus(t)
	texts := append(append([]string(nil), base...), base...)
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 100)
	_, js := connectJS(t, url)
	ctx := context.Background()
	lay := Layout{Replicas: 3, AckWait: 3 * time.Second, MaxDeliver: 5}
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "cluster", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}}
	if _, err := Submit(ctx, js, job, lay, 200); err != nil {
		t.Fatal(err)
	}
	allow, _ := NewAllowList(root)
	for i := range 2 {
		_, wjs := connectJS(t, nodes[i].URL()+","+url)
		startWorkers(t, wjs, 1, WorkerConfig{Runner: &PipelineRunner{Model: tinyModel(t)}, Allow: allow, Layout: lay, Logger: testLogger(t)})
	}
	kv, _ := OpenBucket(ctx, js)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rs, err := Results(ctx, kv, "cluster")
		if err == nil && len(rs) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress")
		}
	}
	nodes[1].Shutdown()
	down := time.Now()
	t.Log("node n2 shut down")
	if err := waitJob(t, js, "cluster", 120*time.Second); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out, texts, tinyBERT(t))
	rs, _ := Results(ctx, kv, "cluster")
	after := 0
	for _, r := range rs {
		if r.FinishedAt.After(down) {
			after++
		}
	}
	if after == 0 {
		t.Fatal("the job ended before the node went down")
	}
	t.Logf("%d of %d tasks finished with one node down", after, len(rs))
}
