package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/parquet-go/parquet-go"
)

// benchRow is one input row of BenchmarkEmbedPostgres.
type benchRow struct {
	ID   int64  `parquet:"id"`
	Text string `parquet:"text"`
}

// BenchmarkEmbedPostgres measures embed end to end into PostgreSQL (read,
// tokenize, encode, the work-directory Parquet file, the load by binary
// COPY) against the same run into a Parquet file, over
// EMBEDPIPE_BENCH_ROWS rows (default 4096) of the public corpus, with the
// model in EMBEDPIPE_BENCH_MODEL (default testdata/tiny-bert). It reports
// rows/s of both and the Postgres run's share of the Parquet run's speed.
func BenchmarkEmbedPostgres(b *testing.B) {
	rows := 4096
	if v := os.Getenv("EMBEDPIPE_BENCH_ROWS"); v != "" {
		rows, _ = strconv.Atoi(v)
	}
	model := os.Getenv("EMBEDPIPE_BENCH_MODEL")
	if model == "" {
		model = "../../testdata/tiny-bert"
	}
	srv := pgtest.Start(b)
	url := srv.NewDatabase(b)
	dir := b.TempDir()
	in := filepath.Join(dir, "in.parquet")
	f, err := os.Open(filepath.Join(refs.Shared(b), "refs", "corpus.public.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && !containsNUL(r.Text) {
			texts = append(texts, r.Text)
		}
	}
	f.Close()
	in0 := make([]benchRow, rows)
	for i := range in0 {
		in0[i] = benchRow{ID: int64(i), Text: texts[i%len(texts)]}
	}
	if err := parquet.WriteFile(in, in0, parquet.MaxRowsPerRowGroup(1024)); err != nil {
		b.Fatal(err)
	}
	common := []string{"--model", model, "--input", in, "--quiet"}
	ctx := context.Background()
	var pqTime, pgTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := runEmbed(ctx, append(common, "--output", filepath.Join(dir, fmt.Sprintf("out%d.parquet", i)))); err != nil {
			b.Fatal(err)
		}
		pqTime += time.Since(start)
		start = time.Now()
		if err := runEmbed(ctx, append(common, "--output", url, "--table", fmt.Sprintf("bench%d", i), "--id-column", "id",
			"--work-dir", filepath.Join(dir, fmt.Sprintf("work%d", i)))); err != nil {
			b.Fatal(err)
		}
		pgTime += time.Since(start)
	}
	n := float64(b.N * rows)
	b.ReportMetric(n/pgTime.Seconds(), "rows/s-postgres")
	b.ReportMetric(n/pqTime.Seconds(), "rows/s-parquet")
	b.ReportMetric(pqTime.Seconds()/pgTime.Seconds(), "postgres/parquet")
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}
