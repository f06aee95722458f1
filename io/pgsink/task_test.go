package pgsink

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
)

// sliceBatches yields rec in batches of n rows with the default keys.
func sliceBatches(rec arrow.Record, n int) Batches {
	return func(yield func(Batch) error) error {
		for lo := 0; lo < int(rec.NumRows()); lo += n {
			hi := min(lo+n, int(rec.NumRows()))
			part := rec.NewSlice(int64(lo), int64(hi))
			err := yield(Batch{Record: part, Keys: keysOf(lo, hi)})
			part.Release()
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// TestWriteTxTask loads a task's rows in one transaction with its progress
// row: a second load of the same task is skipped and changes nothing, a
// load that fails part way leaves neither rows nor its record, and another
// task over the same ids upserts them. Recorded and TaskDone see the
// records; FinishTable builds the index once.
func TestWriteTxTask(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	const dim, rows = 8, 250
	rec := makeRecord(0, rows, dim, "float32")
	defer rec.Release()
	o := Options{URL: url, Table: "tasks", Index: IndexHNSW}
	s := open(t, o, rec.Schema())
	if _, done, err := TaskDone(ctx, o, "job:j:1", 0); err != nil || done {
		t.Fatalf("TaskDone before any load: %v, %v", done, err)
	}
	res, err := s.WriteTx(ctx, "job:j:1", 0, sliceBatches(rec, 100))
	if err != nil || res.Skipped || res.Inserted != rows {
		t.Fatalf("first load: %+v, %v", res, err)
	}
	if n, done, err := TaskDone(ctx, o, "job:j:1", 0); err != nil || !done || n != rows {
		t.Fatalf("TaskDone: %d, %v, %v; want %d rows", n, done, err, rows)
	}
	c := connect(t, url)
	var before string
	if err := c.QueryRow(ctx, "SELECT md5(string_agg(id || embedding::text, ',' ORDER BY id)) FROM tasks").Scan(&before); err != nil {
		t.Fatal(err)
	}
	// The same task again, even with other rows, changes nothing.
	other := makeRecord(0, rows, dim, "float32")
	defer other.Release()
	called := false
	res, err = s.WriteTx(ctx, "job:j:1", 0, func(yield func(Batch) error) error {
		called = true
		return sliceBatches(other.NewSlice(0, 10), 10)(yield)
	})
	if err != nil || !res.Skipped || called {
		t.Fatalf("second load: %+v, %v (batches read: %v); want skipped without reading", res, err, called)
	}
	var after string
	if err := c.QueryRow(ctx, "SELECT md5(string_agg(id || embedding::text, ',' ORDER BY id)) FROM tasks").Scan(&after); err != nil || after != before {
		t.Fatalf("the skipped load changed the table (%v)", err)
	}
	// A task that fails after its first batch leaves nothing behind.
	boom := errors.New("input read failed")
	_, err = s.WriteTx(ctx, "job:j:1", 1, func(yield func(Batch) error) error {
		part := rec.NewSlice(0, 10)
		defer part.Release()
		if err := yield(Batch{Record: part, Keys: keysOf(1000, 1010)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed load: %v, want the batches' error", err)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM tasks WHERE id = ANY($1)", keysOf(1000, 1010)).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows of the failed task committed (%v)", n, err)
	}
	if _, done, _ := TaskDone(ctx, o, "job:j:1", 1); done {
		t.Fatal("the failed task is recorded")
	}
	// A bad row (a repeated id) fails the task as a whole too.
	_, err = s.WriteTx(ctx, "job:j:1", 2, func(yield func(Batch) error) error {
		part := rec.NewSlice(0, 2)
		defer part.Release()
		return yield(Batch{Record: part, Keys: []string{"x", "x"}})
	})
	if !errors.Is(err, ErrRow) {
		t.Fatalf("repeated id: %v, want ErrRow", err)
	}
	// Another task over the same ids updates them (last write wins).
	res, err = s.WriteTx(ctx, "job:j:1", 3, sliceBatches(rec.NewSlice(0, 50), 20))
	if err != nil || res.Inserted != 0 || res.Updated != 50 {
		t.Fatalf("overlapping task: %+v, %v; want 50 updated", res, err)
	}
	if tasks, total, err := Recorded(ctx, o, "job:j:"); err != nil || tasks != 2 || total != rows+50 {
		t.Fatalf("Recorded: %d tasks, %d rows, %v; want 2, %d", tasks, total, err, rows+50)
	}
	if tasks, _, err := Recorded(ctx, o, "job:other:"); err != nil || tasks != 0 {
		t.Fatalf("Recorded of another job: %d, %v", tasks, err)
	}
	bad := o
	bad.IndexMemory = "lots"
	if _, err := FinishTable(ctx, bad); !errors.Is(err, ErrOptions) {
		t.Fatalf("index memory %q: %v, want ErrOptions", bad.IndexMemory, err)
	}
	o.IndexMemory = "128MB"
	rep, err := FinishTable(ctx, o)
	if err != nil || rep.Index == "" || rep.Existed {
		t.Fatalf("FinishTable: %+v, %v", rep, err)
	}
	var def string
	if err := c.QueryRow(ctx, "SELECT indexdef FROM pg_indexes WHERE indexname = $1", rep.Index).Scan(&def); err != nil || !strings.Contains(def, "hnsw") || !strings.Contains(def, "vector_cosine_ops") {
		t.Fatalf("index %s: %q, %v", rep.Index, def, err)
	}
	if rep, err = FinishTable(ctx, o); err != nil || !rep.Existed {
		t.Fatalf("second FinishTable: %+v, %v; want the index found there", rep, err)
	}
}

// TestCheckTable validates a table before any embedding: a missing table
// or one of the same shape passes; another shape, a missing id column, an
// id column of another type and a missing extension are refused with the
// reason; nothing is created.
func TestCheckTable(t *testing.T) {
	url := newDB(t)
	ctx := context.Background()
	rec := makeRecord(0, 5, 8, "float32")
	defer rec.Release()
	fields := rec.Schema().Fields()
	pass := arrow.NewSchema(fields[:len(fields)-1], nil) // the input: no embedding
	o := Options{URL: url, Table: "shape"}
	if err := CheckTable(ctx, o, pass); err != nil {
		t.Fatalf("missing table: %v", err)
	}
	c := connect(t, url)
	var exists bool
	if err := c.QueryRow(ctx, "SELECT to_regclass('shape') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("CheckTable created the table (%v)", err)
	}
	s := open(t, o, rec.Schema())
	if _, err := s.WriteTx(ctx, "r", 0, sliceBatches(rec, 5)); err != nil {
		t.Fatal(err)
	}
	if err := CheckTable(ctx, o, pass); err != nil {
		t.Fatalf("table of the same shape: %v", err)
	}
	if err := CheckTable(ctx, Options{URL: url, Table: "shape", Precision: "float16"}, pass); !errors.Is(err, ErrTableShape) || !strings.Contains(err.Error(), "halfvec(8)") {
		t.Fatalf("halfvec run into a vector table: %v", err)
	}
	fewer := arrow.NewSchema(fields[:2], nil)
	if err := CheckTable(ctx, o, fewer); !errors.Is(err, ErrTableShape) || !strings.Contains(err.Error(), `"score"`) {
		t.Fatalf("input with fewer columns: %v", err)
	}
	if err := CheckTable(ctx, Options{URL: url, Table: "new", IDColumn: "nope"}, pass); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing id column: %v", err)
	}
	if err := CheckTable(ctx, Options{URL: url, Table: "new", IDColumn: "ok"}, pass); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "boolean") {
		t.Fatalf("boolean id column: %v", err)
	}
	if err := CheckTable(ctx, Options{URL: url, Table: "new", Precision: "int8"}, pass); !errors.Is(err, ErrPrecision) {
		t.Fatalf("int8: %v", err)
	}
	plain, err := server.CreateDatabase(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Exec(ctx, "postgres", "CREATE ROLE checkplain LOGIN"); err != nil {
		t.Fatal(err)
	}
	err = CheckTable(ctx, Options{URL: strings.Replace(plain, "postgres@", "checkplain@", 1), Table: "t"}, pass)
	if !errors.Is(err, ErrExtension) {
		t.Fatalf("database without pgvector: %v", err)
	}
	if err := CheckTable(ctx, Options{URL: "postgres://u:sekrit@127.0.0.1:1/x?sslmode=disable&connect_timeout=5", Table: "t"}, pass); !errors.Is(err, ErrConnect) || strings.Contains(err.Error(), "sekrit") {
		t.Fatalf("unreachable server: %v", err)
	}
}

func TestCheckIndexMemory(t *testing.T) {
	for _, ok := range []string{"", "64kB", "512MB", "2GB", "1TB"} {
		if err := CheckIndexMemory(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"512", "512mb", "0MB", "1 GB", "1GB'; DROP TABLE x; --", "99999999999MB"} {
		if err := CheckIndexMemory(bad); !errors.Is(err, ErrOptions) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestWithoutPassword(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"postgres://u:secret@h:5432/db?sslmode=require", "postgres://u@h:5432/db?sslmode=require"},
		{"postgresql://h/db?password=secret&sslmode=disable", "postgresql://h/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
	} {
		got, had, err := WithoutPassword(c.in)
		if err != nil || got != c.out || had != (c.in != c.out) || strings.Contains(got, "secret") {
			t.Errorf("WithoutPassword(%q) = %q, %v, %v; want %q", c.in, got, had, err, c.out)
		}
	}
	if _, _, err := WithoutPassword("host=h password=x"); !errors.Is(err, ErrOptions) {
		t.Errorf("key=value form: %v", err)
	}
}
