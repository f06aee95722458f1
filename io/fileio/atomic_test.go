package fileio

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the writer process of TestStaleTempsOfKilledWriter:
// with EMBEDPIPE_TEMP_WRITER set it starts an AtomicFile for that path,
// writes to it, says "ready" and waits to be killed.
func TestMain(m *testing.M) {
	if final := os.Getenv("EMBEDPIPE_TEMP_WRITER"); final != "" {
		f, err := CreateAtomic(final)
		if err != nil {
			os.Exit(3)
		}
		f.Write(make([]byte, 4096))
		os.Stdout.WriteString("ready\n")
		time.Sleep(time.Hour)
		os.Exit(4)
	}
	os.Exit(m.Run())
}

func temps(t *testing.T, final string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(final), tempPrefix(final)+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStaleTempsOfKilledWriter kills a real writer process with SIGKILL in
// the middle of its write: its temporary stays beside the output until
// RemoveStaleTemps, which keeps it while the writer lives, removes it once
// the writer is dead, and keeps a live writer's of this process and files of
// other names.
func TestStaleTempsOfKilledWriter(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("stale temporaries are recognised by flock, which this system lacks")
	}
	dir := t.TempDir()
	final := filepath.Join(dir, "out.parquet")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EMBEDPIPE_TEMP_WRITER="+final)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("writer process: %q, %v", line, err)
	}
	if n, err := RemoveStaleTemps(final); err != nil || n != 0 {
		t.Fatalf("while the writer lives: removed %d, err %v", n, err)
	}
	if len(temps(t, final)) != 1 {
		t.Fatalf("temporaries %v, want the live writer's", temps(t, final))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	live, err := CreateAtomic(final)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	live.Write([]byte("x"))
	other := filepath.Join(dir, ".other.parquet.tmp-123")
	if err := os.WriteFile(other, []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := RemoveStaleTemps(final)
	if err != nil || n != 1 {
		t.Fatalf("after SIGKILL: removed %d, err %v; want the killed writer's 1", n, err)
	}
	if got := temps(t, final); len(got) != 1 || got[0] != live.Name() {
		t.Fatalf("temporaries %v, want only the live %s", got, live.Name())
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("a temporary of another output was removed: %v", err)
	}
	if err := live.Commit(); err != nil {
		t.Fatalf("the live writer's commit after the sweep: %v", err)
	}
	if n, _ := RemoveStaleTempsIn(dir, nil); n != 1 {
		t.Fatalf("RemoveStaleTempsIn: removed %d, want the other output's dead one", n)
	}
}

func TestChunkWhere(t *testing.T) {
	if got := (Chunk{RowGroup: -1}).Where("in.jsonl", 7); got != "in.jsonl: row 7" {
		t.Errorf("JSONL chunk: %q", got)
	}
	if got := (Chunk{RowGroup: 2}).Where("in.parquet", 7); got != "in.parquet: row group 2, row 7" {
		t.Errorf("Parquet chunk: %q", got)
	}
	if got := (Chunk{RowGroup: -1, FirstRow: 5}).WhereGroup("in.csv"); got != "in.csv: rows from 5" {
		t.Errorf("CSV chunk: %q", got)
	}
}
