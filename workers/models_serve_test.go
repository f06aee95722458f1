package workers

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/hubtest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/schemas"
)

// TestServeLoadsHubModel runs "embedpipe serve --model tiny-bert" and
// submits a job naming hub model acme/tiny-mpnet at its commit (HF_ENDPOINT
// a fake hub, HF_HOME empty): serve's workers download and embed with
// tiny-mpnet, not their own model, and the manifest names it; a job that
// names no model is still embedded with tiny-bert.
func TestServeLoadsHubModel(t *testing.T) {
	hsrv, err := hubtest.New(map[string]hubtest.Repo{"acme/tiny-mpnet": {Dir: refs.ModelDir(t, "tiny-mpnet")}})
	if err != nil {
		t.Fatal(err)
	}
	defer hsrv.Close()
	t.Setenv("HF_ENDPOINT", hsrv.URL)
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	root := t.TempDir()
	texts := corpus(t)[:100]
	in := writeCorpusParquet(t, root, "in.parquet", texts, 50)
	model, _ := filepath.Abs("../testdata/tiny-bert")
	lines := make(chan procLine, 1024)
	p := startProc(t, "serve", lines, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--store", filepath.Join(root, "store"),
		"--model", model, "--workers", "1", "--threads", "1")
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
	mB, err := encoder.Load(refs.ModelDir(t, "tiny-mpnet"))
	if err != nil {
		t.Fatal(err)
	}
	commit := hsrv.Commit("acme/tiny-mpnet")
	for _, c := range []struct {
		id, model string
		m         *encoder.Model
		want      schemas.Model
	}{
		{"hubjob", "acme/tiny-mpnet@" + commit, mB, schemas.Model{Hub: "acme/tiny-mpnet", Revision: commit, ContentHash: mB.ContentHash()}},
		{"ownjob", "", tinyModel(t), schemas.Model{Dir: model, ContentHash: tinyModel(t).ContentHash()}},
	} {
		out := filepath.Join(root, c.id)
		args := []string{"submit", "--nats", url, "--input", in, "--output", out, "--job", c.id, "--rows-per-task", "50", "--wait", "--timeout", "60s"}
		if c.model != "" {
			args = append(args, "--model", c.model)
		}
		if o, err := runBin(t, args...); err != nil {
			t.Fatalf("submit %s: %v\n%s", c.id, err, o)
		}
		m := checkOutput(t, out, texts, c.m)
		checkCosine(t, out, m, texts, c.m)
		if m.Model != c.want {
			t.Errorf("job %s: manifest model %+v, want %+v", c.id, m.Model, c.want)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
}
