package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// sparseVec is one sparse vector as the JSONL output writes it.
type sparseVec struct {
	Indices []int32   `json:"indices"`
	Values  []float32 `json:"values"`
}

// readSparseJSONL returns the embedding column of a JSONL output by row (nil
// for a null vector).
func readSparseJSONL(t *testing.T, path string) []*sparseVec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*sparseVec
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r struct {
			Embedding *sparseVec `json:"embedding"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Embedding)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tableSparse returns the sparse vectors of table by input row, the ids
// being "<name>:<row>", after checking that every row is there once and
// that each vector has dimension dim.
func tableSparse(t *testing.T, c *pgx.Conn, table string, rows, dim int) []*pgvector.SparseVector {
	t.Helper()
	ctx := context.Background()
	r, err := c.Query(ctx, "SELECT id, embedding FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := make([]*pgvector.SparseVector, rows)
	seen := make([]bool, rows)
	for r.Next() {
		var id string
		var v *pgvector.SparseVector
		if err := r.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		k, err := strconv.Atoi(id[strings.LastIndexByte(id, ':')+1:])
		if err != nil || k < 0 || k >= rows || seen[k] {
			t.Fatalf("table %s: id %q unexpected or repeated", table, id)
		}
		seen[k] = true
		if v != nil && v.Dimensions() != int32(dim) {
			t.Fatalf("table %s: row %d has %d dimensions, want %d", table, k, v.Dimensions(), dim)
		}
		out[k] = v
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for k, ok := range seen {
		if !ok {
			t.Fatalf("table %s: row %d missing", table, k)
		}
	}
	return out
}

// innerProduct is the dot product of two sparse vectors with ascending
// indices.
func innerProduct(a, b *sparseVec) float64 {
	var s float64
	for i, j := 0, 0; i < len(a.Indices) && j < len(b.Indices); {
		switch {
		case a.Indices[i] < b.Indices[j]:
			i++
		case a.Indices[i] > b.Indices[j]:
			j++
		default:
			s += float64(a.Values[i]) * float64(b.Values[j])
			i, j = i+1, j+1
		}
	}
	return s
}

// TestEmbedPostgresSparse embeds corpus texts with tiny-splade into JSONL and
// into PostgreSQL: every row of the sparsevec(30522) table has exactly the
// indices and values of the JSONL output, and the top-5 by <#> (negative
// inner product) for a query row, exact and through an HNSW index on
// sparsevec_ip_ops, is the top-5 by inner product of the JSONL vectors. A
// text whose vector has more entries than pgvector's HNSW index takes fails
// the run naming its row, or with --on-error null is loaded as a null vector
// and listed in --errors, and loads whole without an index. IVFFlat, a table
// of another shape and stream on a sparse model are refused.
func TestEmbedPostgresSparse(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	model := refs.ModelDir(t, "tiny-splade")
	dir := t.TempDir()
	ctx := context.Background()

	// Row 0 is 500 words of the vocabulary, whose vector has more than 1,000
	// entries; rows 1 to 400 are the corpus's first 400 texts without NUL.
	corpus, err := os.ReadFile(filepath.Join(refs.Shared(t), "refs", "corpus.public.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL text cannot hold NUL, so texts with one (the pass-through
	// column would be refused) are left out.
	var lines []string
	for _, l := range strings.Split(string(corpus), "\n") {
		if len(lines) < 400 && l != "" && !strings.Contains(l, `\u0000`) {
			lines = append(lines, l)
		}
	}
	vocabText, err := os.ReadFile(filepath.Join(model, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for _, w := range strings.Fields(string(vocabText)) {
		if len(w) > 3 && strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") == "" {
			words = append(words, w)
		}
	}
	rng := rand.New(rand.NewSource(1))
	rng.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	long := words[:500]
	js, _ := json.Marshal(map[string]string{"text": strings.Join(long, " ")})
	in := filepath.Join(dir, "texts.jsonl")
	if err := os.WriteFile(in, []byte(string(js)+"\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const rows, vocab = 401, 30522
	common := []string{"--model", model, "--input", in, "--quiet"}
	out := filepath.Join(dir, "texts.out.jsonl")
	if err := runEmbed(ctx, append(slices.Clone(common), "--output", out)); err != nil {
		t.Fatal(err)
	}
	want := readSparseJSONL(t, out)
	if len(want) != rows {
		t.Fatalf("%d JSONL rows, want %d", len(want), rows)
	}
	if n := len(want[0].Indices); n <= pgsink.MaxSparseIndexEntries {
		t.Fatalf("the long text has %d entries; the test needs more than %d", n, pgsink.MaxSparseIndexEntries)
	}
	pg := func(table string, extra ...string) error {
		args := append(slices.Clone(common), "--output", url, "--table", table, "--work-dir", filepath.Join(dir, "work-"+table))
		return runEmbed(ctx, append(args, extra...))
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := pg("sp", "--distance", "ip"); err != nil {
		t.Fatal(err)
	}
	check := func(table string, got []*pgvector.SparseVector, null int) {
		t.Helper()
		for i := range want {
			if i == null {
				if got[i] != nil {
					t.Fatalf("table %s: row %d is %v, want null", table, i, got[i])
				}
				continue
			}
			if got[i] == nil || !slices.Equal(got[i].Indices(), want[i].Indices) || !slices.Equal(got[i].Values(), want[i].Values) {
				t.Fatalf("table %s: row %d: %v, the JSONL output has %v %v", table, i, got[i], want[i].Indices, want[i].Values)
			}
		}
	}
	check("sp", tableSparse(t, c, "sp", rows, vocab), -1)

	// The query row: the first whose top-6 inner products are apart by
	// more than float32 rounding, so that the order is unambiguous.
	q := -1
	var order []int
	for cand := 1; cand < rows && q < 0; cand++ {
		order = make([]int, 0, rows)
		for i := 1; i < rows; i++ { // row 0 is null in the indexed table
			order = append(order, i)
		}
		ip := func(i int) float64 { return innerProduct(want[cand], want[i]) }
		sort.SliceStable(order, func(a, b int) bool { return ip(order[a]) > ip(order[b]) })
		q = cand
		for k := 0; k < 5; k++ {
			if ip(order[k])-ip(order[k+1]) < 1e-4*max(1, ip(order[k])) {
				q = -1
			}
		}
	}
	if q < 0 {
		t.Fatal("no query row with a clear top-5")
	}
	qm := map[int32]float32{}
	for k, x := range want[q].Indices {
		qm[x] = want[q].Values[k]
	}
	qv := pgvector.NewSparseVectorFromMap(qm, vocab)
	top := func(table string, setup ...string) []int {
		t.Helper()
		var ids []int
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			for _, s := range setup {
				if _, err := tx.Exec(ctx, s); err != nil {
					return err
				}
			}
			r, err := tx.Query(ctx, "SELECT id FROM "+table+" WHERE embedding IS NOT NULL AND id <> 'texts.jsonl:0' ORDER BY embedding <#> $1 LIMIT 5", qv)
			if err != nil {
				return err
			}
			defer r.Close()
			for r.Next() {
				var id string
				if err := r.Scan(&id); err != nil {
					return err
				}
				k, _ := strconv.Atoi(strings.TrimPrefix(id, "texts.jsonl:"))
				ids = append(ids, k)
			}
			return r.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if got := top("sp"); !slices.Equal(got, order[:5]) {
		t.Fatalf("top-5 by <#> for row %d: %v, by inner product of the JSONL vectors %v", q, got, order[:5])
	}

	// With an HNSW index the long text is over pgvector's 1,000 entries.
	err = pg("fail", "--create-index", "hnsw", "--distance", "ip", "--chunk-rows", "64")
	if err == nil || !strings.Contains(err.Error(), "row 0") || !strings.Contains(err.Error(), "more than the output holds (1000; --sparse-top-k 1000") {
		t.Fatalf("a vector over the HNSW limit with --on-error fail: %v", err)
	}
	errs := filepath.Join(dir, "errors.jsonl")
	if err := pg("sp_hnsw", "--create-index", "hnsw", "--distance", "ip", "--on-error", "null", "--errors", errs); err != nil {
		t.Fatal(err)
	}
	check("sp_hnsw", tableSparse(t, c, "sp_hnsw", rows, vocab), 0)
	listed, err := os.ReadFile(errs)
	if err != nil || strings.Count(string(listed), "\n") != 1 || !strings.Contains(string(listed), `"row":0`) || !strings.Contains(string(listed), "non-zero entries") {
		t.Fatalf("--errors lists %q (%v), want row 0 alone", listed, err)
	}
	var def, plan string
	if err := c.QueryRow(ctx, "SELECT indexdef FROM pg_indexes WHERE tablename = 'sp_hnsw' AND indexdef LIKE '%USING hnsw%'").Scan(&def); err != nil || !strings.Contains(def, "sparsevec_ip_ops") {
		t.Fatalf("index %q (%v), want hnsw on sparsevec_ip_ops", def, err)
	}
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return err
		}
		r, err := tx.Query(ctx, "EXPLAIN SELECT id FROM sp_hnsw ORDER BY embedding <#> $1 LIMIT 5", qv)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var line string
			if err := r.Scan(&line); err != nil {
				return err
			}
			plan += line + "\n"
		}
		return r.Err()
	})
	if err != nil || !strings.Contains(plan, "sp_hnsw_embedding_hnsw_idx") {
		t.Fatalf("plan %q (%v) does not use the index", plan, err)
	}
	if got := top("sp_hnsw", "SET LOCAL enable_seqscan = off", "SET LOCAL hnsw.ef_search = 1000"); !slices.Equal(got, order[:5]) {
		t.Fatalf("top-5 through the HNSW index for row %d: %v, by inner product of the JSONL vectors %v", q, got, order[:5])
	}

	// Refusals, before embedding where the options alone decide.
	err = pg("ivf", "--create-index", "ivfflat")
	if err == nil || !strings.Contains(err.Error(), "IVFFlat does not index sparsevec") {
		t.Fatalf("ivfflat: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work-ivf")); !os.IsNotExist(err) {
		t.Fatalf("ivfflat refused after embedding: work directory %v", err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE dense (id text PRIMARY KEY, text text, embedding vector(8))"); err != nil {
		t.Fatal(err)
	}
	err = pg("dense")
	if !errors.Is(err, pgsink.ErrTableShape) || !strings.Contains(err.Error(), `column "embedding" is vector(8), this run writes sparsevec(30522)`) {
		t.Fatalf("a table of another shape: %v", err)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM dense").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused table has %d rows (%v)", n, err)
	}
	err = runStream(ctx, []string{"--from", "texts", "--to", url, "--table", "st", "--model", model})
	if err == nil || !strings.Contains(err.Error(), "is a sparse model") {
		t.Fatalf("stream on a sparse model: %v", err)
	}
}
