package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildEmbedpipe builds the real command once per test binary.
func buildEmbedpipe(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "embedpipe-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "embedpipe")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/embedpipe")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// corpusTexts returns the public corpus texts, or a generated set when the
// shared material is absent.
func corpusTexts(t testing.TB) []string {
	var texts []string
	if f, err := os.Open(filepath.Join(repoRoot(), "..", "shared", "refs", "corpus.public.jsonl")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var row struct{ Text string }
			if json.Unmarshal(sc.Bytes(), &row) == nil {
				texts = append(texts, row.Text)
			}
		}
	}
	if len(texts) == 0 {
		for i := 0; i < 500; i++ {
			texts = append(texts, strings.Repeat(fmt.Sprintf("word%d ", i%37), 1+i%40))
		}
	}
	return texts
}

// genInput writes n rows over row groups of rg rows: texts from the corpus
// with the row number appended (so rows differ), and some nulls.
func genInput(t testing.TB, path string, n, rg int) {
	base := corpusTexts(t)
	texts := make([]*string, n)
	for i := range texts {
		if i%97 == 13 {
			continue
		}
		s := fmt.Sprintf("%s #%d", base[i%len(base)], i)
		texts[i] = &s
	}
	writeTexts(t, path, arrow.BinaryTypes.String, texts, rg)
}

// sameOutput compares two output files row by row, bit for bit.
func sameOutput(t *testing.T, got, want string) {
	t.Helper()
	gt, wt := readOutput(t, got), readOutput(t, want)
	if gt.NumRows() != wt.NumRows() {
		t.Fatalf("%s has %d rows, want %d", got, gt.NumRows(), wt.NumRows())
	}
	for c := 0; c < int(wt.NumCols()); c++ {
		if !array.ChunkedEqual(gt.Column(c).Data(), wt.Column(c).Data()) {
			t.Fatalf("column %s differs from the uninterrupted run", wt.Schema().Field(c).Name)
		}
	}
}

func TestSIGKILLResume(t *testing.T) { sigkillResume(t, 4000, 8, 4, nil) }

// TestSIGKILLResumeChunked is TestSIGKILLResume for a chunked run
// (--chunk-tokens): after SIGKILLs at random moments the final output is
// identical to an uninterrupted run's, every input row accounted for, and
// the chunks counted the same.
func TestSIGKILLResumeChunked(t *testing.T) {
	sigkillResume(t, 2000, 5, 3, []string{"--chunk-tokens", "24", "--chunk-overlap", "6"})
}

// sigkillResume kills a real embed process of rows input rows (extra
// flags added) at random moments until kills SIGKILLs landed, mid of them
// with checkpoints, then finishes the run and compares it with an
// uninterrupted one.
func sigkillResume(t *testing.T, rows, minKills, minMid int, extra []string) {
	if testing.Short() {
		t.Skip("SIGKILL resume test runs a real process repeatedly")
	}
	bin := buildEmbedpipe(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, rows, 500)
	model := filepath.Join(repoRoot(), "testdata", "tiny-bert")
	args := func(out string) []string {
		return append([]string{"embed", "--model", model, "--input", in, "--output", out, "--chunk-rows", "128",
			"--workers", "1", "--quiet", "--summary", out + ".summary.json"}, extra...)
	}
	ref := filepath.Join(dir, "ref.parquet")
	start := time.Now()
	if out, err := exec.Command(bin, args(ref)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	full := time.Since(start)

	out := filepath.Join(dir, "out.parquet")
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	kills, midKills := 0, 0
	for attempt := 0; attempt < 60 && (kills < minKills || midKills < minMid); attempt++ {
		cmd := exec.Command(bin, args(out)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int63n(int64(full)))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d failed: %v\n%s", attempt, err, stderr.Bytes())
			}
			// Finished before the kill: start the next round from scratch.
			os.Remove(out)
			continue
		case <-time.After(delay):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-done
		var ee *exec.ExitError
		if _, statErr := os.Stat(out); statErr == nil {
			// The kill landed after the run had finished its output: that
			// is a finished run, which the next one would refuse to
			// overwrite, not an interrupted one.
			os.Remove(out)
			continue
		}
		if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
			kills++
			parts, _ := filepath.Glob(filepath.Join(checkpointDir(out), "part-*.arrow"))
			if len(parts) > 0 {
				midKills++
			}
			t.Logf("kill %d at %v: %d chunks checkpointed", kills, delay, len(parts))
		} else if err == nil {
			os.Remove(out) // it finished first
		}
	}
	if midKills < minMid {
		t.Fatalf("only %d of %d kills hit a run with checkpoints", midKills, kills)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an output file exists although the last run was killed")
	}
	res, err := exec.Command(bin, args(out)...).CombinedOutput()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, res)
	}
	var sum Summary
	js, _ := os.ReadFile(out + ".summary.json")
	if err := json.Unmarshal(js, &sum); err != nil {
		t.Fatal(err)
	}
	var refSum Summary
	js, _ = os.ReadFile(ref + ".summary.json")
	if err := json.Unmarshal(js, &refSum); err != nil {
		t.Fatal(err)
	}
	// genInput leaves row i null where i%97 == 13.
	nulls := int64((rows - 13 + 96) / 97)
	if sum.RowsIn != int64(rows) || sum.RowsOut != int64(rows) || sum.Nulls != nulls || sum.ChunksOut != refSum.ChunksOut || extra != nil && sum.ChunksOut <= sum.RowsOut {
		t.Fatalf("final summary %+v (uninterrupted: %d chunks)", sum, refSum.ChunksOut)
	}
	t.Logf("%d SIGKILLs; the final run resumed %d of %d rows (%d chunks out)", kills, sum.Resumed, rows, sum.ChunksOut)
	// Every killed run left a temporary of out; the final run removed them.
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".out.parquet.tmp-*")); len(tmps) > 0 {
		t.Fatalf("%d temporaries of killed runs left beside the output: %v", len(tmps), tmps)
	}
	sameOutput(t, out, ref)
	if _, err := os.Stat(checkpointDir(out)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("checkpoint directory left behind")
	}

	// --resume=false (with --overwrite, as the output is finished) starts
	// over and gives the same file again.
	res, err = exec.Command(bin, append(args(out), "--resume=false", "--overwrite")...).CombinedOutput()
	if err != nil {
		t.Fatalf("--resume=false: %v\n%s", err, res)
	}
	js, _ = os.ReadFile(out + ".summary.json")
	json.Unmarshal(js, &sum)
	if sum.Resumed != 0 {
		t.Fatalf("--resume=false resumed %d rows", sum.Resumed)
	}
	sameOutput(t, out, ref)
}

func TestSIGINTCheckpointsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real process")
	}
	bin := buildEmbedpipe(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, 3000, 400)
	model := filepath.Join(repoRoot(), "testdata", "tiny-bert")
	out := filepath.Join(dir, "out.jsonl")
	args := []string{"embed", "--model", model, "--input", in, "--output", out, "--chunk-rows", "100", "--workers", "1", "--quiet"}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the first checkpoint, then interrupt.
	ck := checkpointDir(out)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if parts, _ := filepath.Glob(filepath.Join(ck, "part-*.arrow")); len(parts) > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Skipf("the run finished before SIGINT arrived (%v)", err)
	}
	if ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "rerun the same command to resume") {
		t.Fatalf("exit %d, stderr:\n%s", ee.ExitCode(), stderr.String())
	}
	if res, err := exec.Command(bin, append(args, "--summary", out+".json")...).CombinedOutput(); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, res)
	}
	var sum Summary
	js, _ := os.ReadFile(out + ".json")
	json.Unmarshal(js, &sum)
	if sum.Resumed == 0 || sum.RowsOut != 3000 {
		t.Fatalf("resumed summary %+v", sum)
	}
	ref := filepath.Join(dir, "ref.jsonl")
	if _, err := Run(context.Background(), loadTinyBert(t), Config{Inputs: []Input{{Path: in}}, Output: ref, ChunkRows: 100}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(ref)
	if string(a) != string(b) {
		t.Fatal("interrupted and resumed output differs from an uninterrupted run")
	}
}

// TestMain removes the command built by buildEmbedpipe.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
