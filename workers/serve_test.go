package workers

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/micro"
)

// TestServeEmbedded runs "embedpipe serve" with its embedded JetStream
// server, exactly as the command contract gives it (no --allow-path: a
// loopback-only embedded server lets its in-process workers use any path):
// submit --wait and status work against it, the embed endpoint answers, and
// SIGTERM stops it cleanly.
func TestServeEmbedded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	root := t.TempDir()
	texts := corpus(t)[:200]
	in := writeCorpusParquet(t, root, "in.parquet", texts, 50)
	model, _ := filepath.Abs("../testdata/tiny-bert")
	lines := make(chan procLine, 1024)
	p := startProc(t, "serve", lines, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--store", filepath.Join(root, "store"),
		"--model", model, "--workers", "2")
	for deadline := time.After(60 * time.Second); ; {
		select {
		case l := <-lines:
			if strings.Contains(l.line, "embed service ready") {
				goto ready
			}
		case <-deadline:
			t.Fatal("serve did not become ready")
		}
	}
ready:
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	out := filepath.Join(root, "out")
	if o, err := runBin(t, "submit", "--nats", url, "--input", in, "--output", out, "--job", "served", "--rows-per-task", "50", "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("submit: %v\n%s", err, o)
	}
	checkOutput(t, out, texts, tinyBERT(t))
	if o, err := runBin(t, "status", "--nats", url, "--json", "served"); err != nil || !strings.Contains(o, `"state": "completed"`) {
		t.Fatalf("status: %v\n%s", err, o)
	}
	nc, _ := connectJS(t, url)
	msg, err := nc.Request(EmbedSubject, []byte(`{"texts":["Hello, world!"]}`), 10*time.Second)
	if err != nil || msg.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("embed request: %v %v", err, msg)
	}
	var rep schemas.EmbedReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil || len(rep.Embeddings) != 1 || rep.Dim != tinyBERT(t).Dim() {
		t.Fatalf("embed reply: %v %+v", err, rep)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
}

// TestServeReachableNeedsAllowPath checks that serve refuses to run workers
// without --allow-path when its server can be reached from other machines.
func TestServeReachableNeedsAllowPath(t *testing.T) {
	root := t.TempDir()
	model, _ := filepath.Abs("../testdata/tiny-bert")
	o, err := runBin(t, "serve", "--listen", "0.0.0.0:0", "--insecure-no-auth", "--store", filepath.Join(root, "store"), "--model", model)
	if err == nil || !strings.Contains(o, "--allow-path is required") {
		t.Fatalf("serve on 0.0.0.0 without --allow-path: err %v, output:\n%s", err, o)
	}
}
