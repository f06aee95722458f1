package workers

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/natstest"
	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/jackc/pgx/v5"
)

// TestSparseJobToPostgres runs a job on a SPLADE model into a table with an
// HNSW inner-product index: the workers load sparsevec(vocabulary) rows
// equal to embed --output postgres://'s for the same input, and the index
// is built on the sparse column.
func TestSparseJobToPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	url := pg.NewDatabase(t)
	texts := textCorpus(t, 120)
	root := t.TempDir()
	in := writeDocsParquet(t, root, "docs.parquet", texts, 40)
	model := filepath.Join(refs.Shared(t), "models", "tiny-splade")
	index := []string{"--create-index", "hnsw", "--distance", "ip"}
	if out, err := runBin(t, append([]string{"embed", "--model", model, "--input", in, "--output", url, "--table", "sparse_embed",
		"--work-dir", filepath.Join(root, "embed-work"), "--quiet"}, index...)...); err != nil {
		t.Fatalf("embed --output postgres: %v\n%s", err, out)
	}
	m, err := encoder.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t, "")
	_, js := connectJS(t, srv.URL())
	allow, err := NewAllowList(root)
	if err != nil {
		t.Fatal(err)
	}
	startWorkers(t, js, 1, WorkerConfig{Runner: &PipelineRunner{Model: m, WorkDir: filepath.Join(root, "work"), Logger: testLogger(t)},
		Allow: allow, Layout: Layout{AckWait: 2 * time.Second, MaxDeliver: 5}, Logger: testLogger(t)})
	if out, err := runBin(t, append([]string{"submit", "--nats", srv.URL(), "--ack-wait", "2s", "--input", in, "--output", url,
		"--table", "sparse_job", "--job", "sparse", "--rows-per-task", "40", "--wait", "--timeout", "120s"}, index...)...); err != nil {
		t.Fatalf("submit --output postgres: %v\n%s", err, out)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var typ string
	if err := c.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sparse_job'::regclass AND attname = 'embedding'").Scan(&typ); err != nil || typ != "sparsevec(30522)" {
		t.Fatalf("the job's embedding column is %q (%v), want sparsevec(30522)", typ, err)
	}
	var n, differ int
	if err := c.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE a.embedding::text IS DISTINCT FROM b.embedding::text OR a.id IS NULL OR b.id IS NULL)
		FROM sparse_embed a FULL JOIN sparse_job b USING (id)`).Scan(&n, &differ); err != nil {
		t.Fatal(err)
	}
	if n != len(texts) || differ != 0 {
		t.Fatalf("%d rows, %d differ from embed's (want %d rows, 0 differing)", n, differ, len(texts))
	}
	var idx string
	if err := c.QueryRow(ctx, "SELECT indexdef FROM pg_indexes WHERE tablename = 'sparse_job' AND indexdef LIKE '%hnsw%'").Scan(&idx); err != nil {
		t.Fatalf("no HNSW index on the job's table: %v", err)
	}
	if want := "sparsevec_ip_ops"; !strings.Contains(idx, want) {
		t.Fatalf("index %q, want %s", idx, want)
	}
}
