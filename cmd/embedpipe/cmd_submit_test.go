package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/workers"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestSubmitChecksInputs checks that submit refuses, before it connects or
// queues anything, inputs that a worker would fail on.
func TestSubmitChecksInputs(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "notes.txt")
	os.WriteFile(bad, []byte("hello\n"), 0o644)
	for _, tc := range []struct{ input, column, want string }{
		{filepath.Join(dir, "absent.parquet"), "text", "no such file"},
		{dir, "text", "is a directory"},
		{bad, "text", "notes.txt"},
		{"../../testdata/sample.jsonl", "body", `"body"`},
	} {
		// An unreachable server: reaching it would be the wrong error.
		err := runSubmit(context.Background(), []string{"--nats", "nats://127.0.0.1:1", "--input", tc.input,
			"--column", tc.column, "--output", filepath.Join(dir, "out")})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "no servers") {
			t.Errorf("--input %s --column %s: %v; want an error naming %s", tc.input, tc.column, err, tc.want)
		}
	}
}

// TestSubmitWaitNoWorker checks that --wait says when no task has finished
// for a while and that --timeout ends the wait with a clear error.
func TestSubmitWaitNoWorker(t *testing.T) {
	srv := natstest.Start(t, "")
	dir := t.TempDir()
	defer func(e, i time.Duration) { submitWatchEvery, submitIdleWarn = e, i }(submitWatchEvery, submitIdleWarn)
	submitWatchEvery, submitIdleWarn = 50*time.Millisecond, 200*time.Millisecond
	err := runSubmit(context.Background(), []string{"--nats", srv.URL(), "--input", "../../testdata/sample.jsonl",
		"--output", filepath.Join(dir, "out"), "--job", "nowork", "--wait", "--timeout", "1s"})
	if err == nil || !strings.Contains(err.Error(), "did not end within --timeout 1s") {
		t.Fatalf("--wait with no worker: %v", err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := workers.OpenBucket(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	stop := watchJob(context.Background(), kv, "nowork", &out, 50*time.Millisecond, 200*time.Millisecond)
	time.Sleep(600 * time.Millisecond)
	stop()
	for _, want := range []string{"job nowork: 0 of 1 tasks done, 0 of 8 rows", "no task has finished in", "is a worker"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("watch output lacks %q:\n%s", want, out.String())
		}
	}
}
