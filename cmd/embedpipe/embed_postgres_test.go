package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// mainEnv makes the test binary run main, so crash tests kill a real
// embedpipe process.
const mainEnv = "EMBEDPIPE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		os.Args = append([]string{"embedpipe"}, os.Args[2:]...) // drop -test.run=^$
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// readParquetVectors returns the embedding column of a Parquet file by row
// (nil for a null embedding).
func readParquetVectors(t *testing.T, path string) [][]float32 {
	t.Helper()
	r, err := dataset.Open(path, dataset.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	col := r.Schema().FieldIndices("embedding")[0]
	var out [][]float32
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		l := c.Record.Column(col).(*array.FixedSizeList)
		vals := l.ListValues().(*array.Float32).Float32Values()
		for i := 0; i < l.Len(); i++ {
			if l.IsNull(i) {
				out = append(out, nil)
				continue
			}
			lo, hi := l.ValueOffsets(i)
			out = append(out, slices.Clone(vals[lo:hi]))
		}
		c.Record.Release()
	}
	return out
}

// tableVectors returns the embeddings of table by row number, which rowOf
// derives from the id (as text).
func tableVectors(t *testing.T, c *pgx.Conn, table string, rows int, rowOf func(id string) int) [][]float32 {
	t.Helper()
	ctx := context.Background()
	var n, ids int
	if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT id) FROM "+table).Scan(&n, &ids); err != nil {
		t.Fatal(err)
	}
	if n != rows || ids != rows {
		t.Fatalf("table %s: %d rows, %d distinct ids; want %d", table, n, ids, rows)
	}
	out := make([][]float32, rows)
	r, err := c.Query(ctx, "SELECT id::text, embedding FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var id string
		var v *pgvector.Vector
		if err := r.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		k := rowOf(id)
		if k < 0 || k >= rows {
			t.Fatalf("id %q", id)
		}
		if v != nil {
			out[k] = v.Slice()
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEmbedPostgresMatchesParquet embeds the sample to Parquet and to
// Postgres: the same vectors, and the same top-5 neighbours by <=> as by
// cosine over the Parquet vectors; a second identical run changes nothing.
func TestEmbedPostgresMatchesParquet(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	dir := t.TempDir()
	pq := filepath.Join(dir, "sample.parquet")
	common := []string{"--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl", "--quiet"}
	if err := runEmbed(context.Background(), append(slices.Clone(common), "--output", pq)); err != nil {
		t.Fatal(err)
	}
	pgArgs := append(slices.Clone(common), "--output", url, "--table", "items", "--create-index", "hnsw", "--work-dir", filepath.Join(dir, "work"))
	if err := runEmbed(context.Background(), pgArgs); err == nil || !strings.Contains(err.Error(), "--id-column id") {
		t.Fatalf("an input with an id column and no --id-column: %v", err)
	}
	pgArgs = append(pgArgs, "--id-column", "id")
	for run := 0; run < 2; run++ {
		if err := runEmbed(context.Background(), pgArgs); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "work")); !os.IsNotExist(err) {
		t.Fatalf("work directory left after a complete load: %v", err)
	}
	want := readParquetVectors(t, pq)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	got := tableVectors(t, c, "items", len(want), func(id string) int { k, _ := strconv.Atoi(id); return k - 1 })
	var q []float32
	for i := range want {
		if (want[i] == nil) != (got[i] == nil) {
			t.Fatalf("row %d: null in one output only", i)
		}
		if want[i] == nil {
			continue
		}
		if q == nil {
			q = want[i]
		}
		if cs := cosine(want[i], got[i]); cs < 0.9999999 {
			t.Fatalf("row %d: cosine %.9f between Postgres and Parquet", i, cs)
		}
	}
	// The pass-through columns are there.
	var text string
	if err := c.QueryRow(ctx, "SELECT text FROM items WHERE id = 1").Scan(&text); err != nil || text != "The bank of the river was muddy." {
		t.Fatalf("row 0 text %q, %v", text, err)
	}
	order := make([]int, 0, len(want))
	for i := range want {
		if want[i] != nil {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return 1-cosine(q, want[order[a]]) < 1-cosine(q, want[order[b]]) })
	rows, err := c.Query(ctx, "SELECT id::text FROM items WHERE embedding IS NOT NULL ORDER BY embedding <=> $1 LIMIT 5", pgvector.NewVector(q))
	if err != nil {
		t.Fatal(err)
	}
	var top []int
	for rows.Next() {
		var id string
		rows.Scan(&id)
		k, _ := strconv.Atoi(id)
		top = append(top, k-1)
	}
	if !slices.Equal(top, order[:5]) {
		t.Fatalf("top-5 by <=> %v, from the Parquet vectors %v", top, order[:5])
	}
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

// writeCorpus writes n JSONL rows of varied texts without an id column.
func writeCorpus(t *testing.T, path string, n int) {
	t.Helper()
	words := strings.Fields("the bank of a river was muddy she deposited money at to fish café naïve résumé over under bright dark quick slow fox dog jumps lazy")
	rng := rand.New(rand.NewSource(1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		k := 3 + rng.Intn(40)
		parts := make([]string, k)
		for j := range parts {
			parts[j] = words[rng.Intn(len(words))]
		}
		fmt.Fprintf(&b, "{\"text\": %q, \"n\": %d}\n", strings.Join(parts, " ")+fmt.Sprintf(" #%d", i), i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEmbedPostgresSIGKILL kills a real "embedpipe embed --output
// postgres://…" process at random moments (while embedding and while
// loading), then runs the same command to the end: the table holds every
// input row once, with the vectors of a clean run.
func TestEmbedPostgresSIGKILL(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	dir := t.TempDir()
	const rows = 8000
	in := filepath.Join(dir, "corpus.jsonl")
	writeCorpus(t, in, rows)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := func(table string) []string {
		return []string{"-test.run=^$", "embed", "--model", "../../testdata/tiny-bert", "--input", in, "--output", url,
			"--table", table, "--work-dir", filepath.Join(dir, "work-"+table), "--chunk-rows", "256"}
	}
	run := func(table string) (*exec.Cmd, *strings.Builder) {
		cmd := exec.Command(exe, args(table)...)
		cmd.Env = append(os.Environ(), mainEnv+"=1")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	start := time.Now()
	clean, out := run("clean")
	if err := clean.Wait(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	d := time.Since(start)
	t.Logf("clean run %v: %s", d, strings.TrimSpace(out.String()))
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	count := func() int {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM crash").Scan(&n); err != nil {
			return 0 // not created yet
		}
		return n
	}
	marker := filepath.Join(dir, "work-crash", "000-corpus.parquet.done")
	exists := func() bool { _, err := os.Stat(marker); return err == nil }
	waitFor := func(cond func() bool, limit time.Duration) {
		for deadline := time.Now().Add(limit); time.Now().Before(deadline) && !cond(); {
			time.Sleep(2 * time.Millisecond)
		}
	}
	kills, loadKills := 0, 0
	for attempt := 0; (kills < 5 || loadKills < 2) && attempt < 30; attempt++ {
		before := count()
		embedded := exists()
		cmd, out := run("crash")
		loading := embedded
		switch {
		case !embedded && kills < 2:
			// Embedding: a random moment within a third of a clean run
			// (or as the embedding ends).
			waitFor(exists, time.Duration(50+rng.Int63n(max(1, d.Milliseconds()/3)))*time.Millisecond)
		case !embedded:
			// The moment the embedding ends and the load begins.
			waitFor(exists, 2*d)
			time.Sleep(time.Duration(rng.Int63n(30)) * time.Millisecond)
			loading = true
		default:
			// Loading: a random moment after the next batch commits, so
			// that the kill lands in a later batch's COPY, upsert or commit.
			waitFor(func() bool { return count() != before }, 2*d)
			time.Sleep(time.Duration(rng.Int63n(30)) * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
			n := count()
			if n > 0 && n < rows {
				loadKills++
			}
			t.Logf("kill %d (%s): %d rows in the table", kills, map[bool]string{true: "loading", false: "embedding"}[loading], n)
			continue
		}
		if err != nil {
			t.Fatalf("run %d failed: %v\n%s", attempt, err, out)
		}
		break
	}
	final, out := run("crash")
	if err := final.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	t.Logf("%d kills; final run: %s", kills, strings.TrimSpace(out.String()))
	if kills < 5 || loadKills < 1 {
		t.Fatalf("only %d kills (%d with the table partly loaded) landed before the run finished", kills, loadKills)
	}
	rowOf := func(id string) int {
		k, err := strconv.Atoi(strings.TrimPrefix(id, "corpus.jsonl:"))
		if err != nil {
			return -1
		}
		return k
	}
	want := tableVectors(t, c, "clean", rows, rowOf)
	got := tableVectors(t, c, "crash", rows, rowOf)
	for i := range want {
		if !slices.Equal(want[i], got[i]) || want[i] == nil {
			t.Fatalf("row %d: vector differs from the clean run's", i)
		}
	}
	var mismatched int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM crash x JOIN clean y USING (id) WHERE x.text <> y.text OR x.n <> y.n").Scan(&mismatched); err != nil || mismatched != 0 {
		t.Fatalf("%d rows with other pass-through values (%v)", mismatched, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work-crash")); !os.IsNotExist(err) {
		t.Fatalf("work directory left after the load: %v", err)
	}
	_ = pgsink.ProgressTable
}
