package workers

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// workerPermissions are the permissions the package documentation lists
// for a worker that does not create the layout.
var workerPermissions = &server.Permissions{
	Publish: &server.SubjectPermission{Allow: []string{
		"$JS.API.CONSUMER.INFO.EMBEDPIPE_TASKS.embedpipe-workers",
		"$JS.API.CONSUMER.MSG.NEXT.EMBEDPIPE_TASKS.embedpipe-workers",
		"$JS.ACK.EMBEDPIPE_TASKS.embedpipe-workers.>",
		"$JS.API.STREAM.INFO.KV_EMBEDPIPE_JOBS",
		"$JS.API.DIRECT.GET.KV_EMBEDPIPE_JOBS.>",
		"$JS.API.STREAM.MSG.GET.KV_EMBEDPIPE_JOBS",
		"$JS.API.CONSUMER.CREATE.KV_EMBEDPIPE_JOBS.>",
		"$JS.API.CONSUMER.DELETE.KV_EMBEDPIPE_JOBS.>",
		"$KV.EMBEDPIPE_JOBS.>",
		"embedpipe.dlq.>",
	}},
	Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
}

// TestWorkerWithDocumentedPermissions runs a job with a worker that has
// only the documented permissions, and checks that it cannot do more.
func TestWorkerWithDocumentedPermissions(t *testing.T) {
	srv := natstest.Start(t, "", func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "admin-pw"},
			{Username: "worker", Password: "worker-pw", Permissions: workerPermissions},
		}
	})
	texts := corpus(t)[:100]
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 25)
	admin, err := Connect(ConnOptions{URL: srv.URL(), User: "admin", Password: "admin-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ajs, _ := jetstream.New(admin)
	ctx := context.Background()
	lay := Layout{AckWait: 5 * time.Second, MaxDeliver: 3}
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "perm", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}}
	if _, err := Submit(ctx, ajs, job, lay, 50); err != nil {
		t.Fatal(err)
	}
	wc, err := Connect(ConnOptions{URL: srv.URL(), User: "worker", Password: "worker-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wc.Close) // after the workers stop
	wjs, _ := jetstream.New(wc)
	// The narrow user may not create or change streams.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, _, err := EnsureLayout(short, wjs, lay); err == nil {
		t.Fatal("the worker user could create the layout")
	}
	allow, _ := NewAllowList(root)
	startWorkers(t, wjs, 1, WorkerConfig{Runner: &PipelineRunner{Model: tinyModel(t)}, Allow: allow, Layout: lay, NoCreate: true, Logger: testLogger(t)})
	if err := waitJob(t, ajs, "perm", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out, texts, tinyBERT(t))
}
