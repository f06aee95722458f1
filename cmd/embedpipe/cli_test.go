package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/pipeline"
)

// runCLI runs the command line args as main would and returns its exit
// status and what it wrote to stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	defer func() { helpOutput = os.Stdout }()
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestHelpEveryCommand checks that -h, --help and "help NAME" print one help
// format for every command to stdout and exit 0: a usage line, the
// summary, the flags written with two dashes, and at least one example.
func TestHelpEveryCommand(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
			}
			if errOut != "" {
				t.Errorf("%v: help written to stderr: %q", args, errOut)
			}
			if !strings.HasPrefix(out, "usage: embedpipe "+c.name+" ") {
				t.Errorf("%v: help does not start with the usage line:\n%s", args, out)
			}
			for _, want := range []string{"\nFlags:\n  --", "\n  -h, --help\n", "\nExamples:\n  embedpipe " + c.name + " "} {
				if !strings.Contains(out, want) {
					t.Errorf("%v: help lacks %q:\n%s", args, want, out)
				}
			}
			// Internal Go names mean nothing to a user.
			if m := regexp.MustCompile(`\b(pipeline|encoder|workers|kernels)\.[A-Z]\w*`).FindString(out); m != "" {
				t.Errorf("%v: help names %s", args, m)
			}
		}
	}
	code, out, _ := runCLI(t, "--help")
	if code != 0 || !strings.Contains(out, "Commands:\n  embed ") || !strings.Contains(out, "version") {
		t.Errorf("embedpipe --help: exit %d:\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, _ := runCLI(t, arg)
		if code != 0 {
			t.Fatalf("%s: exit %d", arg, code)
		}
		for _, want := range []string{"embedpipe ", "commit ", runtime.Version(), runtime.GOARCH} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", arg, want, out)
			}
		}
		if !regexp.MustCompile(`(?m)^kernels +(avx2|gonum)$`).MatchString(out) {
			t.Errorf("%s: no kernel family:\n%s", arg, out)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	code, _, errOut := runCLI(t, "embed", "--modle", "x")
	if code != 2 || !strings.Contains(errOut, "unknown flag --modle (did you mean --model?)") {
		t.Errorf("mistyped flag: exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(errOut, "Flags:") {
		t.Errorf("a mistyped flag dumps the whole help:\n%s", errOut)
	}
	code, _, errOut = runCLI(t, "status", "--jsno", "JOB")
	if code != 2 || !strings.Contains(errOut, "did you mean --json?") {
		t.Errorf("mistyped bool flag: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "embd")
	if code != 2 || !strings.Contains(errOut, `unknown command "embd" (did you mean "embed"?)`) {
		t.Errorf("mistyped command: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "frobnicate")
	if code != 2 || strings.Contains(errOut, "did you mean") {
		t.Errorf("unrelated command: exit %d, stderr %q", code, errOut)
	}
	if s := suggest("output-colum", []string{"output", "output-column", "column"}); s != "output-column" {
		t.Errorf("suggest output-colum = %q", s)
	}
	if s := suggest("xyz", []string{"model", "input"}); s != "" {
		t.Errorf("suggest xyz = %q", s)
	}
}

// TestFlagsAfterArgs checks that flags after a positional argument are
// flags, not more arguments, and that "--" still ends the flags.
func TestFlagsAfterArgs(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := inspect(context.Background(), &out, &errOut, []string{"../../testdata/tiny-bert", "--json"}); err != nil {
		t.Fatal(err)
	}
	var info struct {
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.ModelType != "bert" {
		t.Fatalf("inspect DIR --json: %v:\n%s", err, out.String())
	}
	fs := newFlags("x", "")
	j := fs.Bool("json", false, "")
	n := fs.Int("n", 0, "")
	if err := fs.parse([]string{"a", "--json", "b", "-n", "3", "--", "--n", "c"}); err != nil {
		t.Fatal(err)
	}
	if !*j || *n != 3 || strings.Join(fs.Args(), " ") != "a b --n c" {
		t.Fatalf("json %v n %d args %q", *j, *n, fs.Args())
	}
}

// TestMaxLengthZero checks that --max-length 0 means the model's
// max_seq_length in tokenize, as it does in embed, and that --no-truncate
// keeps every id.
func TestMaxLengthZero(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "long.jsonl")
	long := strings.Repeat("the bank of the river ", 100)
	if err := os.WriteFile(in, []byte(`{"text": "`+long+`"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := func(extra ...string) int {
		out := filepath.Join(dir, strings.Join(append([]string{"ids"}, extra...), "")+".jsonl")
		args := append([]string{"--model", "../../testdata/tiny-bert", "--input", in, "--output", out}, extra...)
		if err := tokenizeCmd(context.Background(), &bytes.Buffer{}, args); err != nil {
			t.Fatalf("tokenize %v: %v", extra, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var row struct {
			IDs []int32 `json:"input_ids"`
		}
		if err := json.Unmarshal(b, &row); err != nil {
			t.Fatal(err)
		}
		return len(row.IDs)
	}
	if n := ids(); n != 128 {
		t.Errorf("default: %d ids, want the model's 128", n)
	}
	if n := ids("--max-length", "0"); n != 128 {
		t.Errorf("--max-length 0: %d ids, want the model's 128 (as in embed)", n)
	}
	if n := ids("--max-length", "16"); n != 16 {
		t.Errorf("--max-length 16: %d ids", n)
	}
	if n := ids("--no-truncate"); n <= 500 {
		t.Errorf("--no-truncate: %d ids, want every id", n)
	}
}

// TestRefusedFlags checks that flags which would do nothing in the mode
// given are refused with a usage error, and that the pipeline's option
// errors do not show internal names.
func TestRefusedFlags(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	out := filepath.Join(dir, "o.jsonl")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"embed", "--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl", "--output", out, "--ranges", "r.json"}, "--ranges applies only to --precision int8 or uint8"},
		{[]string{"embed", "--model", "m", "--input", "i", "--output", out, "--max-length", "-1"}, "--max-length -1"},
		{[]string{"tokenize", "--model", "m", "--input", "i", "--output", out, "--max-length", "5", "--no-truncate"}, "--no-truncate and --max-length"},
		{[]string{"submit", "--input", "x.parquet", "--output", dir, "--timeout", "1m"}, "--timeout applies only with --wait"},
		{[]string{"serve", "--model", "m", "--nats", "nats://127.0.0.1:1", "--store", dir}, "with --nats none is started"},
		{[]string{"serve", "--model", "m", "--store", dir, "--max-models", "0"}, "--max-models 0: want at least 1"},
		{[]string{"worker", "--model", "m", "--allow-path", dir, "--max-models", "-1"}, "--max-models -1: want at least 1"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	code, _, errOut := runCLI(t, "embed", "--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl",
		"--output", out, "--quiet", "--truncate-dim", "999")
	if code != 1 || strings.Contains(errOut, "pipeline") || !strings.Contains(errOut, "999") {
		t.Errorf("--truncate-dim 999: exit %d, stderr %q", code, errOut)
	}
}

// TestServeBusyPort checks that serve names the cause when the embedded
// NATS server's port is taken, and says what to do, before loading the
// model.
func TestServeBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	err = runServe(context.Background(), []string{"--model", "../../testdata/tiny-bert", "--store", t.TempDir(), "--listen", addr})
	if err == nil || !strings.Contains(err.Error(), "the port is in use") || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("busy port: %v", err)
	}
}

// TestOutputGuards checks that embed refuses to write over its input (also
// through a symbolic link and in a directory run) and over a finished
// output without --overwrite, and that tokenize refuses its input too.
func TestOutputGuards(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	data, err := os.ReadFile("../../testdata/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.jsonl")
	if err := os.Symlink(in, link); err != nil {
		t.Fatal(err)
	}
	embed := func(input, output string, extra ...string) error {
		args := append([]string{"--model", "../../testdata/tiny-bert", "--input", input, "--output", output, "--quiet"}, extra...)
		return embedCmd(context.Background(), &bytes.Buffer{}, args)
	}
	for _, out := range []string{in, link, dir} {
		if err := embed(in, out); !errors.Is(err, pipeline.ErrOutput) || !strings.Contains(err.Error(), "is the input") {
			t.Errorf("--output %s over the input: %v", out, err)
		}
	}
	// A directory run into the directory of its inputs.
	if err := embed(dir, dir); !errors.Is(err, pipeline.ErrOutput) {
		t.Errorf("directory run into its input directory: %v", err)
	}
	if b, _ := os.ReadFile(in); !bytes.Equal(b, data) {
		t.Fatal("the input was changed")
	}
	out := filepath.Join(dir, "out", "o.jsonl")
	os.MkdirAll(filepath.Dir(out), 0o755)
	if err := embed(in, out); err != nil {
		t.Fatal(err)
	}
	err = embed(in, out, "--truncate-dim", "16")
	if !errors.Is(err, pipeline.ErrOutput) || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("rerun over a finished output: %v", err)
	}
	if err := embed(in, out, "--truncate-dim", "16", "--overwrite"); err != nil {
		t.Errorf("--overwrite: %v", err)
	}
	err = tokenizeCmd(context.Background(), &bytes.Buffer{}, []string{"--model", "../../testdata/tiny-bert", "--input", in, "--output", link})
	if !errors.Is(err, pipeline.ErrOutput) {
		t.Errorf("tokenize over its input: %v", err)
	}
}

// TestEmbedGzipDirectory checks that a directory run reads a .jsonl.gz
// input and writes it uncompressed as .jsonl, every row accounted for.
func TestEmbedGzipDirectory(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	in, out := t.TempDir(), t.TempDir()
	data, err := os.ReadFile("../../testdata/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write(data)
	z.Close()
	os.WriteFile(filepath.Join(in, "a.jsonl.gz"), b.Bytes(), 0o644)
	os.WriteFile(filepath.Join(in, "b.jsonl"), data, 0o644)
	if err := embedCmd(context.Background(), &bytes.Buffer{}, []string{"--model", "../../testdata/tiny-bert", "--input", in, "--output", out, "--quiet"}); err != nil {
		t.Fatal(err)
	}
	a, errA := os.ReadFile(filepath.Join(out, "a.jsonl"))
	p, errB := os.ReadFile(filepath.Join(out, "b.jsonl"))
	if errA != nil || errB != nil || len(a) == 0 || !bytes.Equal(a, p) {
		t.Fatalf("gzip'd and plain inputs differ: %v %v (%d and %d bytes)", errA, errB, len(a), len(p))
	}
}

// TestEmbedOutputFormat checks that --output-format sets the format of a
// directory run's outputs, and is refused where it would do nothing.
func TestEmbedOutputFormat(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	in, out := t.TempDir(), t.TempDir()
	data, err := os.ReadFile("../../testdata/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(in, "a.jsonl"), data, 0o644)
	os.WriteFile(filepath.Join(in, "b.jsonl"), data, 0o644)
	args := []string{"--model", "../../testdata/tiny-bert", "--input", in, "--output", out, "--quiet"}
	if err := embedCmd(context.Background(), &bytes.Buffer{}, append(args, "--output-format", "parquet")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.parquet", "b.parquet"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("--output-format parquet: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "a.jsonl")); err == nil {
		t.Error("a.jsonl written despite --output-format parquet")
	}
	if err := embedCmd(context.Background(), &bytes.Buffer{}, append(args, "--output-format", "csv", "--overwrite")); err == nil || !strings.Contains(err.Error(), "want parquet, arrow, arrows or jsonl") {
		t.Errorf("--output-format csv: %v", err)
	}
	code, _, errOut := runCLI(t, "embed", "--model", "../../testdata/tiny-bert", "--input", filepath.Join(in, "a.jsonl"),
		"--output", filepath.Join(out, "one.jsonl"), "--output-format", "parquet")
	if code != 2 || !strings.Contains(errOut, "--output-format applies to runs into a directory") {
		t.Errorf("--output-format with an output file: exit %d, %s", code, errOut)
	}
}

// hangEnv adds, in a child test process, a command "hang" that ignores
// its cancellation, standing in for a run slow to stop.
const hangEnv = "EMBEDPIPE_TEST_HANG"

func init() {
	if os.Getenv(hangEnv) != "" {
		commands = append(commands, command{"hang", "block after cancellation", func(ctx context.Context, _ []string) error {
			fmt.Println("ready")
			<-ctx.Done()
			fmt.Println("cancelled")
			select {}
		}})
	}
}

// TestSecondInterrupt checks that the first SIGINT cancels the command and
// a second one exits at once with status 130, however slow the command is
// to stop.
func TestSecondInterrupt(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "hang")
	cmd.Env = append(os.Environ(), mainEnv+"=1", hangEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	expect := func(want string) {
		if !sc.Scan() || sc.Text() != want {
			cmd.Process.Kill()
			t.Fatalf("child said %q, want %q (stderr %s)", sc.Text(), want, stderr.String())
		}
	}
	expect("ready")
	cmd.Process.Signal(os.Interrupt)
	expect("cancelled")
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("a second SIGINT did not end the process")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "second interrupt") {
		t.Fatalf("after two SIGINTs: %v, stderr %q; want exit 130", err, stderr.String())
	}
}

// TestJSONLProgressTotal checks that a JSONL run knows its total rows up
// front (blank lines not counted), so progress and the summary show it.
func TestJSONLProgressTotal(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	data, err := os.ReadFile("../../testdata/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, append(append([]byte("\n  \n"), data...), "\n\n"...), 0o644)
	sumPath := filepath.Join(dir, "sum.json")
	if err := embedCmd(context.Background(), &bytes.Buffer{}, []string{"--model", "../../testdata/tiny-bert", "--input", in,
		"--output", filepath.Join(dir, "out.jsonl"), "--quiet", "--summary", sumPath}); err != nil {
		t.Fatal(err)
	}
	var sum struct {
		RowsIn    int64 `json:"rows_in"`
		TotalRows int64 `json:"total_rows"`
	}
	b, _ := os.ReadFile(sumPath)
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.TotalRows != 8 || sum.RowsIn != 8 {
		t.Fatalf("total_rows %d, rows_in %d; want 8 and 8", sum.TotalRows, sum.RowsIn)
	}
}
