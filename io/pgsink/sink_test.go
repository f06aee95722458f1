package pgsink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/pgvector/pgvector-go"
)

func open(t *testing.T, o Options, schema *arrow.Schema) *Sink {
	t.Helper()
	s, err := Open(context.Background(), o, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestLoadUpsertAndNeighbours(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	const dim, rows = 16, 300
	rec := makeRecord(0, rows, dim, "float32")
	defer rec.Release()
	s := open(t, Options{URL: url, Table: "docs", Index: IndexHNSW, Distance: Cosine}, rec.Schema())
	for seq, lo := 0, 0; lo < rows; seq, lo = seq+1, lo+100 {
		part := rec.NewSlice(int64(lo), int64(lo+100))
		res, err := s.Write(ctx, Batch{RunKey: "run1", Seq: seq, Record: part, Keys: keysOf(lo, lo+100), Where: fmt.Sprintf("chunk %d", seq)})
		part.Release()
		if err != nil {
			t.Fatal(err)
		}
		if res.Skipped || res.Inserted != 100 || res.Updated != 0 {
			t.Fatalf("chunk %d: %+v, want 100 inserted", seq, res)
		}
	}
	// A chunk already recorded changes nothing, even with other rows.
	other := rec.NewSlice(0, 10)
	defer other.Release()
	res, err := s.Write(ctx, Batch{RunKey: "run1", Seq: 1, Record: other, Keys: keysOf(1000, 1010)})
	if err != nil || !res.Skipped {
		t.Fatalf("rewrite of chunk 1: %+v, %v; want skipped", res, err)
	}
	// Another run over the same ids updates them in place.
	res, err = s.Write(ctx, Batch{RunKey: "run2", Seq: 0, Record: other, Keys: keysOf(0, 10)})
	if err != nil || res.Inserted != 0 || res.Updated != 10 {
		t.Fatalf("run2: %+v, %v; want 10 updated", res, err)
	}
	done, err := s.Done(ctx, "run1")
	if err != nil || len(done) != 3 || done[2] != 100 {
		t.Fatalf("Done = %v, %v", done, err)
	}
	rep, err := s.Finish(ctx)
	if err != nil || rep.Index != "docs_embedding_hnsw_idx" {
		t.Fatalf("Finish = %+v, %v", rep, err)
	}

	c := connect(t, url)
	var n, distinct int
	if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT id) FROM docs").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != rows || distinct != rows {
		t.Fatalf("table has %d rows, %d ids; want %d", n, distinct, rows)
	}
	// Every value comes back as written.
	r, err := c.Query(ctx, "SELECT id, text, n, score, ok, ts, tags::text, embedding FROM docs ORDER BY n")
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for r.Next() {
		var id, text, tags string
		var nn int64
		var score *float64
		var ok bool
		var ts time.Time
		var emb pgvector.Vector
		if err := r.Scan(&id, &text, &nn, &score, &ok, &ts, &tags, &emb); err != nil {
			t.Fatal(err)
		}
		if id != fmt.Sprintf("in.parquet:%d", i) || text != fmt.Sprintf("row %d: héllo", i) || nn != int64(i)*1000003 || ok != (i%2 == 0) {
			t.Fatalf("row %d: id %q text %q n %d ok %v", i, id, text, nn, ok)
		}
		if (i%5 == 0) != (score == nil) || (score != nil && *score != float64(i)/3) {
			t.Fatalf("row %d: score %v", i, score)
		}
		if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Second); !ts.Equal(want) {
			t.Fatalf("row %d: ts %v, want %v", i, ts, want)
		}
		if tags != fmt.Sprintf(`["t%d"]`, i%3) {
			t.Fatalf("row %d: tags %s", i, tags)
		}
		if !slices.Equal(emb.Slice(), vecOf(i, dim)) {
			t.Fatalf("row %d: embedding differs", i)
		}
		i++
	}
	if err := r.Err(); err != nil || i != rows {
		t.Fatalf("read %d rows: %v", i, err)
	}
	// Top-5 by pgvector's <=> (exact scan) equals the cosine ranking here.
	q := vecOf(42, dim)
	if _, err := c.Exec(ctx, "SET enable_indexscan = off"); err != nil {
		t.Fatal(err)
	}
	nr, err := c.Query(ctx, "SELECT n / 1000003 FROM docs ORDER BY embedding <=> $1 LIMIT 5", pgvector.NewVector(q))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for nr.Next() {
		var k int
		nr.Scan(&k)
		got = append(got, k)
	}
	if err := nr.Err(); err != nil {
		t.Fatal(err)
	}
	want := make([]int, rows)
	for k := range want {
		want[k] = k
	}
	sort.SliceStable(want, func(a, b int) bool { return cosDist(q, vecOf(want[a], dim)) < cosDist(q, vecOf(want[b], dim)) })
	if !slices.Equal(got, want[:5]) || got[0] != 42 {
		t.Fatalf("top-5 by <=> %v, by cosine %v", got, want[:5])
	}
}

func cosDist(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return 1 - d/math.Sqrt(na*nb)
}

func TestHalfvecAndBit(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	c := connect(t, url)
	const dim = 20
	for _, prec := range []string{"float16", "binary", "ubinary"} {
		t.Run(prec, func(t *testing.T) {
			rec := makeRecord(0, 50, dim, prec)
			defer rec.Release()
			o := Options{URL: url, Table: "t_" + prec, Precision: prec, Index: IndexHNSW}
			if prec != "float16" {
				o.Dim = dim
			}
			s := open(t, o, rec.Schema())
			if _, err := s.Write(ctx, Batch{RunKey: "r", Seq: 0, Record: rec, Keys: keysOf(0, 50)}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			var typ string
			if err := c.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'embedding'", o.Table).Scan(&typ); err != nil {
				t.Fatal(err)
			}
			wantTyp := fmt.Sprintf("bit(%d)", dim)
			if prec == "float16" {
				wantTyp = fmt.Sprintf("halfvec(%d)", dim)
			}
			if typ != wantTyp {
				t.Fatalf("column type %s, want %s", typ, wantTyp)
			}
			for r := 0; r < 50; r++ {
				v := vecOf(r, dim)
				if prec == "float16" {
					var h pgvector.HalfVector
					if err := c.QueryRow(ctx, "SELECT embedding FROM "+o.Table+" WHERE id = $1", keysOf(r, r+1)[0]).Scan(&h); err != nil {
						t.Fatal(err)
					}
					for j, x := range h.Slice() {
						if math.Abs(float64(x-v[j])) > 1e-3 {
							t.Fatalf("row %d dim %d: %v, want %v", r, j, x, v[j])
						}
					}
					continue
				}
				var bits string
				if err := c.QueryRow(ctx, "SELECT embedding::text FROM "+o.Table+" WHERE id = $1", keysOf(r, r+1)[0]).Scan(&bits); err != nil {
					t.Fatal(err)
				}
				var want strings.Builder
				for _, x := range v {
					if x > 0 {
						want.WriteByte('1')
					} else {
						want.WriteByte('0')
					}
				}
				if bits != want.String() {
					t.Fatalf("row %d: bits %s, want %s", r, bits, want.String())
				}
			}
		})
	}
}

func TestIDColumnAndChunkKey(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	rec := makeRecord(0, 30, 8, "float32")
	defer rec.Release()
	s := open(t, Options{URL: url, Table: "public.by_n", IDColumn: "n"}, rec.Schema())
	if _, err := s.Write(ctx, Batch{Record: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, Batch{Record: rec}); err != nil { // streaming: idempotent by id
		t.Fatal(err)
	}
	c := connect(t, url)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM public.by_n").Scan(&n); err != nil || n != 30 {
		t.Fatalf("count = %d, %v; want 30", n, err)
	}
	var cols string
	if err := c.QueryRow(ctx, "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'by_n'::regclass AND attnum > 0").Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols != "text,n,score,ok,ts,tags,embedding" {
		t.Fatalf("columns %s", cols)
	}
}

func TestBadInput(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	rec := makeRecord(0, 10, 8, "float32")
	defer rec.Release()
	c := connect(t, url)

	t.Run("unreachable", func(t *testing.T) {
		_, err := Open(ctx, Options{URL: "postgres://u:sekrit@127.0.0.1:1/x?sslmode=disable&connect_timeout=5", Table: "t"}, rec.Schema())
		if !errors.Is(err, ErrConnect) || strings.Contains(err.Error(), "sekrit") || !strings.Contains(err.Error(), "127.0.0.1") {
			t.Fatalf("err = %v; want ErrConnect naming the host without the password", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		if _, err := c.Exec(ctx, "CREATE ROLE pwuser LOGIN PASSWORD 'right-one'"); err != nil {
			t.Fatal(err)
		}
		hba := filepath.Join(server.Dir, "data", "pg_hba.conf")
		old, err := os.ReadFile(hba)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hba, append([]byte("host all pwuser 127.0.0.1/32 scram-sha-256\n"), old...), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the postmaster rereads pg_hba.conf on SIGHUP
		bad := strings.Replace(url, "postgres@", "pwuser:wrong-one@", 1)
		_, err = Open(ctx, Options{URL: bad, Table: "t"}, rec.Schema())
		if !errors.Is(err, ErrConnect) || strings.Contains(err.Error(), "wrong-one") || !strings.Contains(err.Error(), "password authentication failed") {
			t.Fatalf("err = %v; want ErrConnect saying the password failed, without it", err)
		}
		// PGPASSWORD is honoured: the right password there connects (and
		// then fails on the missing privilege to create tables, not on auth).
		t.Setenv("PGPASSWORD", "right-one")
		_, err = Open(ctx, Options{URL: strings.Replace(url, "postgres@", "pwuser@", 1), Table: "t"}, rec.Schema())
		if errors.Is(err, ErrConnect) {
			t.Fatalf("with PGPASSWORD: %v", err)
		}
	})
	t.Run("missing extension", func(t *testing.T) {
		u, err := server.CreateDatabase(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := server.Exec(ctx, "postgres", "CREATE ROLE plain LOGIN"); err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, Options{URL: strings.Replace(u, "postgres@", "plain@", 1), Table: "t"}, rec.Schema())
		if !errors.Is(err, ErrExtension) || !strings.Contains(err.Error(), "CREATE EXTENSION vector") {
			t.Fatalf("err = %v; want ErrExtension", err)
		}
	})
	t.Run("other shape", func(t *testing.T) {
		if _, err := c.Exec(ctx, "CREATE TABLE shaped (id text PRIMARY KEY, text text, embedding vector(4))"); err != nil {
			t.Fatal(err)
		}
		_, err := Open(ctx, Options{URL: url, Table: "shaped"}, rec.Schema())
		if !errors.Is(err, ErrTableShape) || !strings.Contains(err.Error(), `column "embedding" is vector(4), this run writes vector(8)`) || !strings.Contains(err.Error(), `has no column "n"`) {
			t.Fatalf("err = %v; want ErrTableShape naming the differences", err)
		}
		var cols int
		c.QueryRow(ctx, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'shaped'::regclass AND attnum > 0").Scan(&cols)
		if cols != 3 {
			t.Fatalf("table altered: %d columns", cols)
		}
	})
	t.Run("precision", func(t *testing.T) {
		for _, p := range []string{"int8", "uint8"} {
			_, err := Open(ctx, Options{URL: url, Table: "t", Precision: p}, rec.Schema())
			if !errors.Is(err, ErrPrecision) || !strings.Contains(err.Error(), "no 8-bit integer vector type") {
				t.Fatalf("%s: err = %v; want ErrPrecision with the reason", p, err)
			}
		}
	})
	t.Run("dimension", func(t *testing.T) {
		big := arrow.NewSchema([]arrow.Field{{Name: "embedding", Type: arrow.FixedSizeListOf(16001, arrow.PrimitiveTypes.Float32)}}, nil)
		if _, err := Open(ctx, Options{URL: url, Table: "t"}, big); !errors.Is(err, ErrDimension) {
			t.Fatalf("16001 dims: %v; want ErrDimension", err)
		}
		mid := arrow.NewSchema([]arrow.Field{{Name: "embedding", Type: arrow.FixedSizeListOf(3000, arrow.PrimitiveTypes.Float32)}}, nil)
		if _, err := Open(ctx, Options{URL: url, Table: "t", Index: IndexHNSW}, mid); !errors.Is(err, ErrDimension) || !strings.Contains(err.Error(), "at most 2000") {
			t.Fatalf("3000 dims with hnsw: %v; want ErrDimension", err)
		}
		if _, err := Open(ctx, Options{URL: url, Table: "t_half", Index: IndexHNSW, Precision: "float32"}, mid); !errors.Is(err, ErrDimension) {
			t.Fatalf("3000 dims: %v", err)
		}
	})
	t.Run("bad rows write nothing", func(t *testing.T) {
		s := open(t, Options{URL: url, Table: "rows_t"}, rec.Schema())
		keys := keysOf(0, 10)
		keys[7] = keys[3]
		_, err := s.Write(ctx, Batch{RunKey: "r", Seq: 0, Record: rec, Keys: keys, Where: "in.parquet, chunk 0"})
		if !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "row 7") || !strings.Contains(err.Error(), "repeats row 3") || !strings.Contains(err.Error(), "in.parquet, chunk 0") {
			t.Fatalf("duplicate id: %v", err)
		}
		nul := nulRecord(t)
		defer nul.Release()
		s2 := open(t, Options{URL: url, Table: "rows_nul"}, nul.Schema())
		_, err = s2.Write(ctx, Batch{RunKey: "r", Seq: 0, Record: nul, Keys: keysOf(0, 2)})
		if !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), "NUL byte") || !strings.Contains(err.Error(), "row 1") {
			t.Fatalf("NUL byte: %v", err)
		}
		var n int
		c.QueryRow(ctx, "SELECT (SELECT count(*) FROM rows_t) + (SELECT count(*) FROM rows_nul) + (SELECT count(*) FROM embedpipe_progress WHERE target LIKE 'rows_%')").Scan(&n)
		if n != 0 {
			t.Fatalf("%d rows written by failed batches", n)
		}
	})
}

func nulRecord(t *testing.T) arrow.Record {
	b := array.NewRecordBuilder(memory.NewGoAllocator(), arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String},
		{Name: "embedding", Type: arrow.FixedSizeListOfNonNullable(2, arrow.PrimitiveTypes.Float32)},
	}, nil))
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"fine", "bad\x00text"}, nil)
	eb := b.Field(1).(*array.FixedSizeListBuilder)
	for i := 0; i < 2; i++ {
		eb.Append(true)
		eb.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{1, 2}, nil)
	}
	return b.NewRecord()
}
