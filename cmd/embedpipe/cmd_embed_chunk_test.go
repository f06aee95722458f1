package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// TestEmbedChunkFlags runs embed --chunk-tokens on the public corpus with
// tiny-bert into Parquet and JSONL: the outputs hold the chunk columns with
// their types (int32 chunk_index, chunk_start and chunk_end, string
// chunk_text) before the embedding, each chunk_text the text's bytes
// [chunk_start, chunk_end), and the summary counts the rows in and out and
// the chunks; bad chunk flags exit 2 with the reason.
func TestEmbedChunkFlags(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	model := refs.ModelDir(t, "tiny-bert")
	in := filepath.Join(refs.Shared(t), "refs", "corpus.public.jsonl")
	dir := t.TempDir()
	var chunks [2]int64
	for k, ext := range []string{"parquet", "jsonl"} {
		out := filepath.Join(dir, "out."+ext)
		sumPath := filepath.Join(dir, ext+".summary.json")
		code, _, errOut := runCLI(t, "embed", "--model", model, "--input", in, "--output", out, "--quiet",
			"--chunk-tokens", "32", "--chunk-overlap", "8", "--summary", sumPath)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", ext, code, errOut)
		}
		var sum pipeline.Summary
		data, err := os.ReadFile(sumPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &sum); err != nil {
			t.Fatal(err)
		}
		if sum.RowsIn != 2092 || sum.RowsOut != 2092 || sum.ChunksOut <= sum.RowsOut {
			t.Fatalf("%s: summary rows in %d out %d chunks %d; want 2092, 2092 and more chunks", ext, sum.RowsIn, sum.RowsOut, sum.ChunksOut)
		}
		chunks[k] = sum.ChunksOut
		r, err := dataset.Open(out, dataset.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sc := r.Schema()
		names := []string{}
		for _, f := range sc.Fields() {
			names = append(names, f.Name)
		}
		if strings.Join(names, ",") != "text,chunk_index,chunk_start,chunk_end,chunk_text,embedding" {
			t.Fatalf("%s: columns %v", ext, names)
		}
		intType := arrow.INT32
		if ext == "jsonl" {
			intType = arrow.INT64 // JSON numbers read back as int64
		}
		for i, want := range []arrow.Type{arrow.STRING, intType, intType, intType, arrow.STRING} {
			if got := sc.Field(i).Type.ID(); got != want {
				t.Fatalf("%s: column %s is %s, want %s", ext, names[i], sc.Field(i).Type, want)
			}
		}
		var rows int64
		for {
			c, err := r.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			rec := c.Record
			text, ctext := rec.Column(0).(*array.String), rec.Column(4).(*array.String)
			for i := 0; i < int(rec.NumRows()); i++ {
				var start, end int64
				switch col := rec.Column(2).(type) {
				case *array.Int32:
					start, end = int64(col.Value(i)), int64(rec.Column(3).(*array.Int32).Value(i))
				case *array.Int64:
					start, end = col.Value(i), rec.Column(3).(*array.Int64).Value(i)
				}
				if s := text.Value(i); ctext.Value(i) != s[start:end] {
					t.Fatalf("%s row %d: chunk_text %q, text[%d:%d] %q", ext, rows+int64(i), ctext.Value(i), start, end, s[start:end])
				}
			}
			rows += rec.NumRows()
			rec.Release()
		}
		r.Close()
		if rows != sum.ChunksOut {
			t.Fatalf("%s: %d output rows, summary says %d chunks", ext, rows, sum.ChunksOut)
		}
	}
	if chunks[0] != chunks[1] {
		t.Fatalf("parquet %d chunks, jsonl %d", chunks[0], chunks[1])
	}
	// Late chunking from the command line, on a long-context model.
	late := filepath.Join(dir, "late.jsonl")
	sumPath := filepath.Join(dir, "late.summary.json")
	code, _, errOut := runCLI(t, "embed", "--model", refs.ModelDir(t, "tiny-modernbert"), "--input", in, "--output", late, "--quiet",
		"--chunk-tokens", "32", "--chunk-overlap", "8", "--chunk-mode", "late", "--on-error", "null", "--summary", sumPath)
	if code != 0 {
		t.Fatalf("late: exit %d: %s", code, errOut)
	}
	var sum pipeline.Summary
	if data, err := os.ReadFile(sumPath); err != nil || json.Unmarshal(data, &sum) != nil {
		t.Fatalf("late summary: %v", err)
	}
	if sum.RowsIn != 2092 || sum.RowsOut != 2092 || sum.ChunksOut <= 2092 || sum.Errors == 0 {
		t.Fatalf("late: summary rows in %d out %d chunks %d errors %d; want every row, more chunks, and the documents too long for the model nulled", sum.RowsIn, sum.RowsOut, sum.ChunksOut, sum.Errors)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--chunk-tokens", "200"}, "at most 126"},
		{[]string{"--chunk-tokens", "16", "--chunk-overlap", "16"}, "less than the chunk tokens"},
		{[]string{"--chunk-overlap", "4"}, "needs chunk tokens"},
		{[]string{"--chunk-tokens", "16", "--chunk-mode", "diagonal"}, "chunk mode"},
		{[]string{"--chunk-tokens", "16", "--chunk-mode", "late"}, "late chunking encodes the whole document"},
	} {
		args := append([]string{"embed", "--model", model, "--input", in, "--output", filepath.Join(dir, "bad.parquet"), "--quiet"}, c.args...)
		code, _, errOut := runCLI(t, args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error saying %q", c.args, code, errOut, c.want)
		}
	}
}

// TestEmbedPostgresChunks loads a chunked run into a real PostgreSQL with
// pgvector: one table row per chunk keyed by (--id-column, chunk_index),
// with the chunk columns and the vectors of the same run into Parquet; a
// second run changes nothing; without --id-column the run is refused.
func TestEmbedPostgresChunks(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	dir := t.TempDir()
	pq := filepath.Join(dir, "chunks.parquet")
	common := []string{"--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl", "--quiet", "--chunk-tokens", "5", "--chunk-overlap", "2"}
	if err := runEmbed(context.Background(), append(slices.Clone(common), "--output", pq)); err != nil {
		t.Fatal(err)
	}
	// Without --id-column each chunk's id is "<file>:<row>:<chunk>"; a rerun
	// changes nothing.
	sample, err := os.ReadFile("../../testdata/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	noID := filepath.Join(dir, "noid.jsonl") // sample.jsonl with "id" renamed
	if err := os.WriteFile(noID, bytes.ReplaceAll(sample, []byte(`"id":`), []byte(`"n":`)), 0o644); err != nil {
		t.Fatal(err)
	}
	defArgs := []string{"--model", "../../testdata/tiny-bert", "--input", noID, "--quiet", "--chunk-tokens", "5", "--chunk-overlap", "2",
		"--output", url, "--table", "chunks_default", "--work-dir", filepath.Join(dir, "work-default")}
	for run := 0; run < 2; run++ {
		if err := runEmbed(context.Background(), defArgs); err != nil {
			t.Fatalf("default ids, run %d: %v", run, err)
		}
	}
	pgArgs := append(slices.Clone(common), "--output", url, "--table", "chunks", "--work-dir", filepath.Join(dir, "work"), "--id-column", "id")
	for run := 0; run < 2; run++ {
		if err := runEmbed(context.Background(), pgArgs); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	// The Parquet run's chunks by (id, chunk_index).
	type key struct {
		id    int64
		chunk int32
	}
	want := map[key][]float32{}
	wantText := map[key]*string{}
	r, err := dataset.Open(pq, dataset.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := c.Record.Schema()
		ids := c.Record.Column(sc.FieldIndices("id")[0]).(*array.Int64)
		idx := c.Record.Column(sc.FieldIndices(pipeline.ChunkIndexColumn)[0]).(*array.Int32)
		texts := c.Record.Column(sc.FieldIndices(pipeline.ChunkTextColumn)[0]).(*array.String)
		emb := c.Record.Column(sc.FieldIndices("embedding")[0]).(*array.FixedSizeList)
		vals := emb.ListValues().(*array.Float32).Float32Values()
		for i := 0; i < int(c.Record.NumRows()); i++ {
			k := key{ids.Value(i), idx.Value(i)}
			wantText[k] = nil
			if texts.IsValid(i) {
				s := texts.Value(i)
				wantText[k] = &s
			}
			if emb.IsValid(i) {
				lo, hi := emb.ValueOffsets(i)
				want[k] = slices.Clone(vals[lo:hi])
			}
		}
		c.Record.Release()
	}
	r.Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, chunk_index, chunk_text, embedding FROM chunks")
	if err != nil {
		t.Fatal(err)
	}
	n, multi := 0, 0
	for rows.Next() {
		var k key
		var text *string
		var v *pgvector.Vector
		if err := rows.Scan(&k.id, &k.chunk, &text, &v); err != nil {
			t.Fatal(err)
		}
		n++
		if k.chunk > 0 {
			multi++
		}
		w, ok := wantText[k]
		if !ok || (text == nil) != (w == nil) || text != nil && *text != *w {
			t.Fatalf("chunk %v: text %v, Parquet %v (%v)", k, text, w, ok)
		}
		if (v == nil) != (want[k] == nil) || v != nil && cosine(v.Slice(), want[k]) < 0.9999999 {
			t.Fatalf("chunk %v: vector differs from the Parquet run's", k)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(wantText) || multi == 0 {
		t.Fatalf("%d table rows (%d beyond a first chunk), Parquet has %d chunks", n, multi, len(wantText))
	}
	// The default ids name each chunk of each input row once, with the same
	// vectors: input row r has the Parquet rows' id r+1.
	rows, err = conn.Query(ctx, "SELECT id, chunk_index, embedding FROM chunks_default")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var id string
		var chunk int32
		var v *pgvector.Vector
		if err := rows.Scan(&id, &chunk, &v); err != nil {
			t.Fatal(err)
		}
		var row int64
		var c int32
		if _, err := fmt.Sscanf(id, "noid.jsonl:%d:%d", &row, &c); err != nil || c != chunk || seen[id] {
			t.Fatalf("default id %q (chunk_index %d, seen %v): %v", id, chunk, seen[id], err)
		}
		seen[id] = true
		k := key{row + 1, chunk} // sample.jsonl's ids count from 1
		if _, ok := wantText[k]; !ok {
			t.Fatalf("default id %q names no chunk of the Parquet run", id)
		}
		if (v == nil) != (want[k] == nil) || v != nil && cosine(v.Slice(), want[k]) < 0.9999999 {
			t.Fatalf("default id %q: vector differs from the Parquet run's", id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(wantText) {
		t.Fatalf("%d rows under default ids, Parquet has %d chunks", len(seen), len(wantText))
	}
}
