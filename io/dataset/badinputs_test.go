package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/parquetio"
)

// badInput returns the path of a file of the shared directory of damaged
// inputs that once crashed embedpipe (fixtures/bad-inputs, see its README),
// skipping the test when the shared directory is absent.
func badInput(t testing.TB, name string) string {
	t.Helper()
	shared := refs.SharedDir()
	if shared == "" {
		t.Skipf("../shared is absent: skipping the bad-inputs fixture %s", name)
	}
	p := filepath.Join(shared, "fixtures", "bad-inputs", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared fixture %s absent (%v): skipping", p, err)
	}
	return p
}

// drainFile drains path and returns the rows read and the first error.
func drainFile(path string) (rows int64, err error) {
	r, err := Open(path, ReadOptions{ChunkRows: 64, TextColumn: "text"})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows += c.Record.NumRows()
		c.Record.Release()
	}
}

// TestBadInputsFailCleanly reads every damaged fixture: each must end in an
// error wrapping fileio.ErrCorrupt that names the file, never a panic or an
// allocation driven by a lying length.
func TestBadInputsFailCleanly(t *testing.T) {
	for _, name := range []string{"crc-panic.parquet", "m-case-arrow-344.arrow", "rcase-82.parquet"} {
		t.Run(name, func(t *testing.T) {
			p := badInput(t, name)
			_, err := drainFile(p)
			if err == nil {
				t.Fatalf("%s read without error", name)
			}
			if !errors.Is(err, fileio.ErrCorrupt) {
				t.Errorf("error %v does not wrap fileio.ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name the file", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestDamagedStructPageIsAnError damages the zstd page of a leaf under a
// struct column. pqarrow loads such leaves in goroutines of its own, where a
// decoder panic used to kill the process; it must come back as an error
// naming the file and row group.
func TestDamagedStructPageIsAnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ok.parquet")
	w, err := parquetio.Create(path, richSchema(), parquetio.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), richRecord(t, 0, 50)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	rg := pf.MetaData().RowGroup(0)
	var start, size int64 = -1, 0
	for c := 0; c < rg.NumColumns(); c++ {
		cc, err := rg.ColumnChunk(c)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(cc.PathInSchema(), ".") == "meta.b" {
			start, size = cc.DataPageOffset(), cc.TotalCompressedSize()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
				start = min(start, cc.DictionaryPageOffset())
			}
		}
	}
	pf.Close()
	if start < 0 {
		t.Fatal("no column meta.b in the file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The last byte of the chunk is the tail of a zstd frame's checksum.
	data[start+size-1] ^= 0xff
	bad := filepath.Join(dir, "bad.parquet")
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = drainFile(bad)
	if !errors.Is(err, fileio.ErrCorrupt) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "row group 0") {
		t.Fatalf("err = %v, want a corrupt-file error naming %s and row group 0", err, bad)
	}
	t.Log(err)
}

// writeJSONL writes rec to a new JSONL file and returns its text.
func writeJSONL(t *testing.T, rec arrow.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.jsonl")
	w, err := Create(path, rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func timestampRecord(zone string) arrow.Record {
	typ := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: zone}
	s := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: typ, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer b.Release()
	tb := b.Field(0).(*array.TimestampBuilder)
	tb.Append(arrow.Timestamp(time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC).UnixMicro()))
	tb.AppendNull()
	return b.NewRecord()
}

// TestJSONLUnknownZone writes timestamps in a zone the time zone database
// does not know: Arrow's JSON form panicked on them; they must be written as
// the same instant in UTC. A known zone keeps Arrow's own form.
func TestJSONLUnknownZone(t *testing.T) {
	got := writeJSONL(t, timestampRecord("Not/AZone"))
	want := `{"ts":"2024-01-02 03:04:05.6Z"}` + "\n" + `{"ts":null}` + "\n"
	if got != want {
		t.Errorf("unknown zone: got %q, want %q", got, want)
	}
	rec := timestampRecord("+02:00")
	arrowForm, _ := json.Marshal(rec.Column(0).GetOneForMarshal(0))
	if got, want := writeJSONL(t, rec), `{"ts":`+string(arrowForm)+"}\n"+`{"ts":null}`+"\n"; got != want {
		t.Errorf("known zone: got %q, want %q", got, want)
	}
}

// TestTZBadFixture converts the shared tz-bad.parquet (a timestamp column in
// the zone Not/AZone) to JSONL: every row is written.
func TestTZBadFixture(t *testing.T) {
	p := badInput(t, "tz-bad.parquet")
	r, err := Open(p, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := filepath.Join(t.TempDir(), "tz.jsonl")
	w, err := Create(out, r.Schema())
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(context.Background(), c.Record); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		rows += int(c.Record.NumRows())
		c.Record.Release()
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if n := strings.Count(string(b), "\n"); n != rows || rows == 0 {
		t.Fatalf("%d lines for %d rows:\n%s", n, rows, b)
	}
	t.Logf("%s", b)
}

// TestJSONLLoneSurrogate checks that a \u escape of a lone UTF-16
// surrogate, which the JSON decoder replaces with U+FFFD, marks its row as
// replaced like invalid UTF-8 bytes do; a valid pair and an escaped
// backslash do not.
func TestJSONLLoneSurrogate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.jsonl")
	os.WriteFile(p, []byte(`{"text":"a\udcff"}`+"\n"+`{"text":"\ud83d\ude00"}`+"\n"+`{"text":"\\udcff"}`+"\n"+`{"text":"\ud83d x"}`+"\n"), 0o644)
	r, err := Open(p, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Record.Release()
	if len(c.ReplacedUTF8) != 2 || c.ReplacedUTF8[0] != 0 || c.ReplacedUTF8[1] != 3 {
		t.Fatalf("replaced rows %v, want [0 3]", c.ReplacedUTF8)
	}
}

// TestJSONLTypeChangeMessage checks the wording of a column whose type
// changes between lines.
func TestJSONLTypeChangeMessage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.jsonl")
	os.WriteFile(p, []byte(`{"text":"a","n":"s"}`+"\n"+`{"text":"b","n":1}`+"\n"), 0o644)
	_, err := drainFile(p)
	if err == nil || !strings.Contains(err.Error(), "holds an INT64 after a STRING") {
		t.Fatalf("err = %v, want it to say the column holds an INT64 after a STRING", err)
	}
}
