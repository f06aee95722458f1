package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parquet-go/parquet-go"
	"github.com/pgvector/pgvector-go"
)

type docRow struct {
	N    int64  `parquet:"n"`
	Text string `parquet:"text"`
}

// writeDocsParquet writes texts with a number column n (no id column, so
// that the rows get the default ids "<file>:<row>") to dir/name, with
// rowsPerGroup rows per row group.
func writeDocsParquet(t *testing.T, dir, name string, texts []string, rowsPerGroup int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	rows := make([]docRow, len(texts))
	for i, x := range texts {
		rows[i] = docRow{N: int64(i) * 7, Text: x}
	}
	if err := parquet.WriteFile(p, rows, parquet.MaxRowsPerRowGroup(rowsPerGroup)); err != nil {
		t.Fatal(err)
	}
	return p
}

// textCorpus returns n texts of the public corpus (repeated as needed)
// without the rows holding a NUL byte, which PostgreSQL text cannot store
// (pgsink refuses such rows; TestBadInput covers that).
func textCorpus(t *testing.T, n int) []string {
	var out []string
	for len(out) < n {
		for _, x := range corpus(t) {
			if !strings.ContainsRune(x, 0) && len(out) < n {
				out = append(out, x)
			}
		}
	}
	return out
}

// pgRow is one row of a loaded table.
type pgRow struct {
	text string
	vec  []float32
}

// readTable returns the rows of table by id, failing on a duplicate id.
func readTable(t *testing.T, c *pgx.Conn, table string) map[string]pgRow {
	t.Helper()
	ctx := context.Background()
	rows, err := c.Query(ctx, "SELECT id::text, text, embedding FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]pgRow{}
	for rows.Next() {
		var id, text string
		var v pgvector.Vector
		if err := rows.Scan(&id, &text, &v); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[id]; dup {
			t.Fatalf("table %s: id %s twice", table, id)
		}
		out[id] = pgRow{text, v.Slice()}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTable checks that tables a and b hold the same ids, texts and
// bit-identical vectors, n rows each with distinct ids.
func sameTable(t *testing.T, c *pgx.Conn, a, b string, n int) {
	t.Helper()
	for _, tb := range []string{a, b} {
		var rows, ids int
		if err := c.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT id) FROM "+tb).Scan(&rows, &ids); err != nil {
			t.Fatal(err)
		}
		if rows != n || ids != n {
			t.Fatalf("table %s: %d rows, %d distinct ids; want %d", tb, rows, ids, n)
		}
	}
	ra, rb := readTable(t, c, a), readTable(t, c, b)
	for id, x := range ra {
		y, ok := rb[id]
		if !ok {
			t.Fatalf("id %s is in %s, not in %s", id, a, b)
		}
		if x.text != y.text {
			t.Fatalf("id %s: text %q in %s, %q in %s", id, x.text, a, y.text, b)
		}
		if !slices.Equal(x.vec, y.vec) {
			t.Fatalf("id %s: the vectors of %s and %s differ", id, a, b)
		}
	}
}

// tableDigest is an md5 of every id and vector of table, to tell whether
// anything changed.
func tableDigest(t *testing.T, c *pgx.Conn, table string) string {
	t.Helper()
	var d string
	if err := c.QueryRow(context.Background(), "SELECT md5(string_agg(id::text || embedding::text, ',' ORDER BY id)) FROM "+table).Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// jobRecord is the job record of id as the jobs bucket holds it.
func jobRecord(t *testing.T, kv jetstream.KeyValue, id string) []byte {
	t.Helper()
	e, err := kv.Get(context.Background(), jobKey(id))
	if err != nil {
		t.Fatal(err)
	}
	return e.Value()
}

// TestJobToPostgresMatchesEmbed loads a Parquet file of 300 rows in three
// tasks (two in-process workers) into a pgvector table with submit
// --output postgres://… and checks it against embed --output postgres://…
// of the same file: the same ids, texts and bit-identical vectors. The
// HNSW index is built once after the last task and status shows it; the
// password of the URL stays out of the job record; a redelivered task
// changes nothing; submit refuses a table of another shape, an unreachable
// server and a database without pgvector before queueing anything.
func TestJobToPostgresMatchesEmbed(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	texts := textCorpus(t, 300)
	root := t.TempDir()
	in := writeDocsParquet(t, root, "docs.parquet", texts, 50)
	model, _ := filepath.Abs("../testdata/tiny-bert")
	if out, err := runBin(t, "embed", "--model", model, "--input", in, "--output", url, "--table", "from_embed",
		"--work-dir", filepath.Join(root, "embed-work"), "--quiet"); err != nil {
		t.Fatalf("embed --output postgres: %v\n%s", err, out)
	}
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	lay := Layout{AckWait: 2 * time.Second, MaxDeliver: 5}
	allow, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	startWorkers(t, js, 2, WorkerConfig{Runner: &PipelineRunner{Model: tinyModel(t), WorkDir: filepath.Join(root, "work"), Logger: testLogger(t)},
		Allow: allow, Layout: lay, Logger: testLogger(t)})
	// trust authentication ignores the password, which lets the test see
	// where it goes: nowhere but submit's own connection.
	withPassword := strings.Replace(url, "postgres@", "postgres:Top-Secret-42@", 1)
	out, err := runBin(t, "submit", "--nats", srv.URL(), "--ack-wait", "2s", "--input", in, "--output", withPassword,
		"--table", "from_job", "--create-index", "hnsw", "--index-memory", "128MB", "--job", "pgjob", "--rows-per-task", "100", "--wait", "--timeout", "120s")
	if err != nil {
		t.Fatalf("submit --output postgres: %v\n%s", err, out)
	}
	if strings.Contains(out, "Top-Secret-42") || !strings.Contains(out, "keeps no password") || !strings.Contains(out, "job pgjob: hnsw index from_job_embedding_hnsw_idx built in") {
		t.Fatalf("submit output:\n%s", out)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	sameTable(t, c, "from_embed", "from_job", len(texts))
	kv, err := OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	rec := jobRecord(t, kv, "pgjob")
	if strings.Contains(string(rec), "Top-Secret-42") {
		t.Fatalf("the job record holds the password: %s", rec)
	}
	st, rs, err := Progress(ctx, kv, "pgjob")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != schemas.StateCompleted || st.Tasks != 3 || st.Rows != int64(len(texts)) || len(rs) != 3 {
		t.Fatalf("status %+v, %d results", st, len(rs))
	}
	if !strings.Contains(st.Index, "hnsw index from_job_embedding_hnsw_idx built in") || strings.Contains(st.Output, "Top-Secret-42") {
		t.Fatalf("status index %q, output %q", st.Index, st.Output)
	}
	var indexes int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE tablename = 'from_job' AND indexdef LIKE '%hnsw%'").Scan(&indexes); err != nil || indexes != 1 {
		t.Fatalf("%d HNSW indexes on from_job (%v)", indexes, err)
	}
	var tasks int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM embedpipe_progress WHERE target = 'from_job' AND run_key LIKE 'job:pgjob:%'").Scan(&tasks); err != nil || tasks != 3 {
		t.Fatalf("%d task records in embedpipe_progress (%v), want 3", tasks, err)
	}
	status, err := runBin(t, "status", "--nats", srv.URL(), "pgjob")
	if err != nil || !strings.Contains(status, "completed") || !strings.Contains(status, "index    hnsw index") ||
		!strings.Contains(status, "#from_job") || strings.Contains(status, "Top-Secret-42") {
		t.Fatalf("status: %v\n%s", err, status)
	}

	// A task delivered again (the same message) changes nothing.
	before := tableDigest(t, c, "from_job")
	job, err := schemas.DecodeJob(rec)
	if err != nil {
		t.Fatal(err)
	}
	planned, _, err := Plan(job, 100)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(planned[1])
	if _, err := js.Publish(ctx, taskSubject("pgjob", 1), b, jetstream.WithMsgID("pgjob.1.again")); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, TaskStream, WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task sent again was not acknowledged")
		}
	}
	if after := tableDigest(t, c, "from_job"); after != before {
		t.Fatal("a redelivered task changed the table")
	}
	if err := c.QueryRow(ctx, "SELECT count(*) FROM embedpipe_progress WHERE target = 'from_job'").Scan(&tasks); err != nil || tasks != 3 {
		t.Fatalf("%d task records after the redelivery (%v), want 3", tasks, err)
	}

	// Bad outputs are refused by submit, with the reason, before anything
	// is queued.
	plain, err := pg.CreateDatabase(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "CREATE ROLE novector LOGIN"); err != nil {
		t.Fatal(err)
	}
	for i, bad := range []struct {
		name, url string
		args      []string
		want      string
	}{
		{"other shape", url, []string{"--table", "from_embed", "--id-column", "n"}, "primary key is (id), this run upserts by (n)"},
		{"unreachable", "postgres://u:Top-Secret-42@127.0.0.1:1/x?sslmode=disable&connect_timeout=5", []string{"--table", "t"}, "cannot connect"},
		{"no pgvector", strings.Replace(plain, "postgres@", "novector@", 1), []string{"--table", "t"}, "pgvector extension missing"},
		{"no table", url, nil, "needs --table"},
		{"bad index", url, []string{"--table", "t", "--create-index", "btree"}, "want hnsw, ivfflat or none"},
		{"bad index memory", url, []string{"--table", "t", "--create-index", "hnsw", "--index-memory", "5 GB"}, "want a size such as 512MB"},
	} {
		id := "bad-" + strconv.Itoa(i)
		args := append([]string{"submit", "--nats", srv.URL(), "--input", in, "--output", bad.url, "--job", id}, bad.args...)
		out, err := runBin(t, args...)
		var ee *exec.ExitError
		if !asExit(err, &ee) || !strings.Contains(out, bad.want) || strings.Contains(out, "Top-Secret-42") {
			t.Errorf("%s: submit: %v\n%s\nwant an error saying %q", bad.name, err, out, bad.want)
		}
		if _, err := kv.Get(ctx, jobKey(id)); err == nil {
			t.Errorf("%s: the refused job was recorded", bad.name)
		}
	}
	if out, err := runBin(t, "submit", "--nats", srv.URL(), "--input", in, "--output", filepath.Join(root, "o"), "--table", "t"); err == nil || !strings.Contains(out, "--table applies only to --output postgres://") {
		t.Errorf("--table with a directory output: %v\n%s", err, out)
	}
}

// TestChunkedJobToPostgres runs a job with --chunk-tokens into a table in
// three tasks and checks it against embed --chunk-tokens of the same file
// into Postgres: the same chunk rows, keyed "<file>:<row>:<chunk>" from
// each task's first input row, with bit-identical vectors.
func TestChunkedJobToPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	texts := textCorpus(t, 150)
	root := t.TempDir()
	in := writeDocsParquet(t, root, "docs.parquet", texts, 25)
	model, _ := filepath.Abs("../testdata/tiny-bert")
	chunk := []string{"--chunk-tokens", "12", "--chunk-overlap", "3"}
	if out, err := runBin(t, append([]string{"embed", "--model", model, "--input", in, "--output", url, "--table", "chunks_embed",
		"--work-dir", filepath.Join(root, "embed-work"), "--quiet"}, chunk...)...); err != nil {
		t.Fatalf("embed --chunk-tokens --output postgres: %v\n%s", err, out)
	}
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	startWorkers(t, js, 2, WorkerConfig{Runner: &PipelineRunner{Model: tinyModel(t), WorkDir: filepath.Join(root, "work"), Logger: testLogger(t)},
		Allow: allow, Layout: Layout{AckWait: 2 * time.Second, MaxDeliver: 5}, Logger: testLogger(t)})
	if out, err := runBin(t, append([]string{"submit", "--nats", srv.URL(), "--ack-wait", "2s", "--input", in, "--output", url,
		"--table", "chunks_job", "--job", "chunked", "--rows-per-task", "50", "--wait", "--timeout", "120s"}, chunk...)...); err != nil {
		t.Fatalf("submit --chunk-tokens --output postgres: %v\n%s", err, out)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n, rows int
	if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT split_part(id, ':', 2)) FROM chunks_embed").Scan(&n, &rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(texts) || n <= len(texts) {
		t.Fatalf("embed's table: %d chunks of %d rows; want more chunks than the %d rows", n, rows, len(texts))
	}
	sameTable(t, c, "chunks_embed", "chunks_job", n)
	var last string
	if err := c.QueryRow(ctx, "SELECT id FROM chunks_job WHERE split_part(id, ':', 2)::int = $1 AND chunk_index = 0", len(texts)-1).Scan(&last); err != nil || last != fmt.Sprintf("docs.parquet:%d:0", len(texts)-1) {
		t.Fatalf("the last row's first chunk: %q, %v", last, err)
	}
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok && e.ExitCode() != 0
}

// TestWorkerProcessSIGKILLPostgres runs a job into a table, with the
// password in PGPASSWORD only, on real worker processes: the first is
// killed with SIGKILL right as it starts loading a task (inside or just
// before the task's transaction), the second while it embeds one, and a
// third finishes the job. The table then holds every input row once, with
// vectors bit-identical to a clean run of the same job, and the job record
// holds no password.
func TestWorkerProcessSIGKILLPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	ctx := context.Background()
	db := url[strings.LastIndexByte(url, '/')+1 : strings.IndexByte(url, '?')]
	// A role that must give its password, over scram, as in production.
	for _, sql := range []string{"CREATE ROLE loader LOGIN PASSWORD 'Loader-Pw-7'", "GRANT ALL ON DATABASE " + db + " TO loader"} {
		if err := pg.Exec(ctx, "postgres", sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.Exec(ctx, db, "GRANT ALL ON SCHEMA public TO loader"); err != nil {
		t.Fatal(err)
	}
	hba := filepath.Join(pg.Dir, "data", "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte("host all loader 127.0.0.1/32 scram-sha-256\n"), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "postgres", "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	loaderURL := strings.Replace(url, "postgres@", "loader@", 1)
	t.Setenv("PGPASSWORD", "")
	if c, err := pgx.Connect(ctx, loaderURL); err == nil {
		c.Close(ctx)
		t.Fatal("loader connected without a password: the test would prove nothing")
	}
	// The workers (and submit) inherit it; the test's own connections, as
	// postgres over trust, need none.
	t.Setenv("PGPASSWORD", "Loader-Pw-7")
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the workers' work directory

	texts := textCorpus(t, 900)
	root := t.TempDir()
	in := writeCorpusParquet(t, root, "docs.parquet", texts, 75)
	srv := natstest.Start(t, "")
	model, _ := filepath.Abs("../testdata/tiny-bert")
	lines := make(chan procLine, 4096)
	submit := func(job, table string) *exec.Cmd {
		cmd := exec.Command(embedpipeBin(t), "submit", "--nats", srv.URL(), "--ack-wait", "2s", "--max-deliver", "10",
			"--input", in, "--output", loaderURL, "--table", table, "--id-column", "id", "--job", job, "--rows-per-task", "150", "--wait", "--timeout", "240s")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("submit %s:\n%s", job, out.String())
			}
		})
		return cmd
	}
	a := startProc(t, "pgA", lines, workerArgs(srv.URL(), root, model, "pgA")...)
	crash := submit("pgcrash", "crashed")
	waitLine := func(p *proc, what string) {
		t.Helper()
		deadline := time.After(120 * time.Second)
		for {
			select {
			case l := <-lines:
				if l.p == p && strings.Contains(l.line, what) {
					return
				}
			case <-deadline:
				t.Fatalf("%s never logged %q", p.name, what)
			}
		}
	}
	// Kill A as it begins loading its second task: the first is committed.
	waitLine(a, "task loaded")
	waitLine(a, "task loading")
	a.kill(t)
	t.Log("pgA killed with SIGKILL at the start of a task's load")
	b := startProc(t, "pgB", lines, workerArgs(srv.URL(), root, model, "pgB")...)
	waitLine(b, "task started")
	time.Sleep(50 * time.Millisecond)
	b.kill(t)
	t.Log("pgB killed with SIGKILL while it embedded a task")
	startProc(t, "pgC", lines, workerArgs(srv.URL(), root, model, "pgC")...)
	if err := crash.Wait(); err != nil {
		t.Fatalf("submit --wait of the crashed job: %v", err)
	}
	clean := submit("pgclean", "clean")
	if err := clean.Wait(); err != nil {
		t.Fatalf("submit --wait of the clean job: %v", err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	sameTable(t, c, "clean", "crashed", len(texts))
	_, js := connectJS(t, srv.URL())
	kv, err := OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if rec := jobRecord(t, kv, "pgcrash"); strings.Contains(string(rec), "Loader-Pw-7") {
		t.Fatalf("the job record holds the password: %s", rec)
	}
	_, rs, err := Progress(ctx, kv, "pgcrash")
	if err != nil {
		t.Fatal(err)
	}
	redelivered := 0
	for _, r := range rs {
		if r.Deliveries > 1 {
			redelivered++
		}
		if r.Worker == "pgA" && r.Deliveries > 1 {
			t.Errorf("task %d recorded by the killed worker after a redelivery", r.Index)
		}
	}
	if redelivered == 0 {
		t.Fatal("no task was redelivered: the kills hit no task in flight")
	}
	var tasks int
	var rows int64
	if err := c.QueryRow(ctx, "SELECT count(*), sum(rows) FROM embedpipe_progress WHERE target = 'crashed'").Scan(&tasks, &rows); err != nil {
		t.Fatal(err)
	}
	if tasks != len(rs) || rows != int64(len(texts)) {
		t.Fatalf("%d task records with %d rows, want %d with %d", tasks, rows, len(rs), len(texts))
	}
	t.Logf("%d tasks, %d redelivered", len(rs), redelivered)
}
