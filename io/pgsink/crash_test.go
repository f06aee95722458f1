package pgsink

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pgvector/pgvector-go"
)

const (
	childEnv    = "PGSINK_CRASH_CHILD_URL"
	crashRows   = 6000
	crashChunk  = 200
	crashDim    = 64
	crashRunKey = "crash-run"
)

// crashChild loads crashRows rows in chunks, skipping the chunks the
// progress table lists, as a resumed embed run does; the parent kills it.
func crashChild() int {
	ctx := context.Background()
	rec := makeRecord(0, crashRows, crashDim, "float32")
	s, err := Open(ctx, Options{URL: os.Getenv(childEnv), Table: "crash"}, rec.Schema())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done, err := s.Done(ctx, crashRunKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for seq := 0; seq*crashChunk < crashRows; seq++ {
		if _, ok := done[seq]; ok {
			continue
		}
		lo := seq * crashChunk
		part := rec.NewSlice(int64(lo), int64(lo+crashChunk))
		_, err := s.Write(ctx, Batch{RunKey: crashRunKey, Seq: seq, Record: part, Keys: keysOf(lo, lo+crashChunk)})
		part.Release()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("chunk %d\n", seq)
	}
	return 0
}

// TestCrashExactlyOnce SIGKILLs a real loading process at random moments,
// then lets a last run finish: every row is in the table once, with its
// vector, and every chunk has one progress row.
func TestCrashExactlyOnce(t *testing.T) {
	url := newDB(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	ctx := context.Background()
	c := connect(t, url)
	count := func() int {
		var n int
		// The table appears when the first child opens the sink.
		if err := c.QueryRow(ctx, "SELECT count(*) FROM crash").Scan(&n); err != nil {
			return -1
		}
		return n
	}
	kills := 0
	for attempt := 0; kills < 5 && attempt < 40; attempt++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+url)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of committed chunks plus a random
		// delay, so that the kill lands anywhere in a transaction: during
		// the COPY, the upsert or the commit.
		left := crashRows/crashChunk - max(0, count())/crashChunk
		sc := bufio.NewScanner(out)
		for k := rng.Intn(max(1, left/3)); k > 0 && sc.Scan(); k-- {
		}
		time.Sleep(time.Duration(rng.Intn(30000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		io.Copy(io.Discard, out)
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
			t.Logf("kill %d: %d rows loaded", kills, count())
			continue
		}
		if err != nil {
			t.Fatalf("child failed: %v", err)
		}
		break // finished before the kill: nothing left to interrupt
	}
	if kills < 5 {
		t.Logf("only %d kills landed before the load finished", kills)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	var n, ids, chunks, progressRows int
	if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT id) FROM crash").Scan(&n, &ids); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT count(*), coalesce(sum(rows), 0) FROM embedpipe_progress WHERE target = 'crash' AND run_key = $1", crashRunKey).Scan(&chunks, &progressRows); err != nil {
		t.Fatal(err)
	}
	if n != crashRows || ids != crashRows || chunks != crashRows/crashChunk || progressRows != crashRows {
		t.Fatalf("after %d kills: %d rows, %d ids, %d chunks covering %d rows; want %d rows in %d chunks", kills, n, ids, chunks, progressRows, crashRows, crashRows/crashChunk)
	}
	rows, err := c.Query(ctx, "SELECT id, embedding FROM crash")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var v pgvector.Vector
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		r, err := strconv.Atoi(id[len("in.parquet:"):])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.Slice(), vecOf(r, crashDim)) {
			t.Fatalf("row %s: vector differs from the clean one", id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if kills == 0 {
		t.Fatal("no kill landed: the test proved nothing")
	}
}
