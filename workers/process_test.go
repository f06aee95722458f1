package workers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/schemas"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// embedpipeBin builds cmd/embedpipe once per test binary.
func embedpipeBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "embedpipe-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "embedpipe")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/embedpipe/embedpipe/cmd/embedpipe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a worker process whose stderr lines go to the test log and to
// lines.
type proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan procLine
	done  chan struct{}
}

// procLine is one stderr line of a process.
type procLine struct {
	p    *proc
	line string
}

// startProc starts the embedpipe binary with args; its stderr lines go to
// lines (when not nil) and, for warnings and errors, to the test log.
func startProc(t *testing.T, name string, lines chan procLine, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(embedpipeBin(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, lines: lines, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "task started") {
				t.Logf("%s: %s", name, line)
			}
			if p.lines != nil {
				select {
				case p.lines <- procLine{p, line}:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
			}
			_ = p.cmd.Wait()
		}
	})
	return p
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()
}

func workerArgs(url, root, model, id string) []string {
	return []string{"worker", "--nats", url, "--model", model, "--allow-path", root, "--threads", "1",
		"--ack-wait", "2s", "--max-deliver", "5", "--id", id, "--log-level", "info"}
}

// TestWorkerProcessesSurviveSIGKILL runs a job on three worker processes
// and kills one with SIGKILL while it holds a task: the job completes, the
// task is redelivered, and every input row is in the output exactly once.
func TestWorkerProcessesSurviveSIGKILL(t *testing.T) {
	base := corpus(t)
	var texts []string
	for range 3 {
		texts = append(texts, base...)
	}
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "big.parquet", texts, 150)
	srv := natstest.Start(t, "")
	model, _ := filepath.Abs("../testdata/tiny-bert")
	lines := make(chan procLine, 4096)
	for i := range 3 {
		id := fmt.Sprintf("proc%d", i)
		startProc(t, id, lines, workerArgs(srv.URL(), root, model, id)...)
	}
	out := filepath.Join(root, "out")
	submit := exec.Command(embedpipeBin(t), "submit", "--nats", srv.URL(), "--ack-wait", "2s", "--max-deliver", "5",
		"--input", in, "--output", out, "--job", "crash", "--rows-per-task", "600", "--wait", "--timeout", "120s")
	var subOut strings.Builder
	submit.Stdout, submit.Stderr = &subOut, &subOut
	if err := submit.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = submit.Process.Kill() })
	// Kill the worker that starts the third task of the job, right after
	// it started it.
	started := 0
	var victim *proc
	deadline := time.After(90 * time.Second)
	for victim == nil {
		select {
		case l := <-lines:
			if strings.Contains(l.line, "task started") {
				if started++; started == 3 {
					victim = l.p
				}
			}
		case <-deadline:
			t.Fatal("the workers never started three tasks")
		}
	}
	victim.kill(t)
	t.Logf("%s killed with SIGKILL mid-task", victim.name)
	if err := submit.Wait(); err != nil {
		t.Fatalf("submit --wait: %v\n%s", err, subOut.String())
	}
	_, js := connectJS(t, srv.URL())
	m := checkOutput(t, out, texts, tinyBERT(t))
	if len(m.Parts) != 11 {
		t.Fatalf("%d parts, want 11", len(m.Parts))
	}
	kv, _ := OpenBucket(context.Background(), js)
	_, rs, err := Progress(context.Background(), kv, "crash")
	if err != nil {
		t.Fatal(err)
	}
	redelivered := 0
	for _, r := range rs {
		if r.Deliveries > 1 {
			redelivered++
			if r.Worker == victim.name {
				t.Errorf("task %d redelivered but recorded by the killed worker", r.Index)
			}
		}
	}
	if redelivered == 0 {
		t.Fatal("no task was redelivered: the kill did not hit a task in flight")
	}
	// Status as the CLI prints it.
	st, err := exec.Command(embedpipeBin(t), "status", "--nats", srv.URL(), "crash").CombinedOutput()
	if err != nil || !strings.Contains(string(st), "completed") || !strings.Contains(string(st), fmt.Sprintf("%d of %d", len(texts), len(texts))) {
		t.Fatalf("status: %v\n%s", err, st)
	}
}

// TestJobSurvivesServerRestart restarts the NATS server (same port, same
// file store) in the middle of a job run by two worker processes.
func TestJobSurvivesServerRestart(t *testing.T) {
	base := corpus(t)
	texts := append(append([]string(nil), base...), base...)
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "in.parquet", texts, 100)
	srv := natstest.Start(t, "")
	model, _ := filepath.Abs("../testdata/tiny-bert")
	for i := range 2 {
		id := fmt.Sprintf("rproc%d", i)
		startProc(t, id, nil, workerArgs(srv.URL(), root, model, id)...)
	}
	_, js := connectJS(t, srv.URL())
	ctx := context.Background()
	out := filepath.Join(root, "out")
	job := schemas.Job{ID: "restart", Inputs: []schemas.Input{{Path: in}}, Column: "text", Output: schemas.Output{Dir: out}}
	if _, err := Submit(ctx, js, job, Layout{AckWait: 2 * time.Second, MaxDeliver: 5}, 300); err != nil {
		t.Fatal(err)
	}
	kv, _ := OpenBucket(ctx, js)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rs, err := Results(ctx, kv, "restart")
		if err == nil && len(rs) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress before the restart")
		}
	}
	srv.Restart(time.Second)
	restarted := time.Now()
	t.Log("server restarted")
	err := waitJob(t, js, "restart", 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m := checkOutput(t, out, texts, tinyBERT(t))
	if len(m.Parts) != 14 {
		t.Fatalf("%d parts, want 14", len(m.Parts))
	}
	rs, err := Results(ctx, kv, "restart")
	if err != nil {
		t.Fatal(err)
	}
	after := 0
	for _, r := range rs {
		if r.FinishedAt.After(restarted) {
			after++
		}
	}
	if after == 0 {
		t.Fatal("every task finished before the restart: the test did not restart the server mid-job")
	}
	t.Logf("%d of %d tasks finished after the restart", after, len(rs))
}

// TestSubmitWaitFailsWithReason checks the exit status and message of
// submit --wait for a job that cannot succeed (its output escapes the
// workers' allowed root).
func TestSubmitWaitFailsWithReason(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "allowed")
	if err := os.Mkdir(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	in := writeCorpusParquet(t, allowed, "in.parquet", corpus(t)[:20], 10)
	srv := natstest.Start(t, "")
	model, _ := filepath.Abs("../testdata/tiny-bert")
	startProc(t, "fproc", nil, workerArgs(srv.URL(), allowed, model, "fproc")...)
	out, err := exec.Command(embedpipeBin(t), "submit", "--nats", srv.URL(), "--ack-wait", "2s", "--max-deliver", "5",
		"--input", in, "--output", filepath.Join(root, "elsewhere"), "--job", "bad", "--wait", "--timeout", "60s").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("submit --wait of a failing job: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "job failed") || !strings.Contains(string(out), "not allowed") {
		t.Fatalf("submit --wait gave no reason:\n%s", out)
	}
}

// runBin runs the embedpipe binary to its end and returns its combined
// output.
func runBin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(embedpipeBin(t), args...).CombinedOutput()
	return string(out), err
}
