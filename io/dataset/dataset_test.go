package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/parquetio"
)

// richSchema covers the column kinds that must pass through the pipeline.
func richSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "price", Type: &arrow.Decimal128Type{Precision: 12, Scale: 3}, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "meta", Type: arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "b", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		), Nullable: true},
		{Name: "vec", Type: arrow.FixedSizeListOfNonNullable(3, arrow.PrimitiveTypes.Float32), Nullable: true},
	}, nil)
}

func richRecord(t testing.TB, first, n int) arrow.Record {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, richSchema())
	defer b.Release()
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for k := first; k < first+n; k++ {
		if k%7 == 3 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append("row " + strings.Repeat("x", k%5))
		}
		b.Field(1).(*array.Int64Builder).Append(int64(k))
		b.Field(2).(*array.Float64Builder).Append(float64(k) / 3)
		b.Field(3).(*array.BooleanBuilder).Append(k%2 == 0)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(base.Add(time.Duration(k) * time.Second).UnixMicro()))
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(base.AddDate(0, 0, k)))
		b.Field(6).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(k*1000 + 123)))
		lb := b.Field(7).(*array.ListBuilder)
		if k%5 == 0 {
			lb.AppendNull()
		} else {
			lb.Append(true)
			for j := 0; j < k%3; j++ {
				lb.ValueBuilder().(*array.StringBuilder).Append("t")
			}
		}
		sb := b.Field(8).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int32Builder).Append(int32(-k))
		sb.FieldBuilder(1).(*array.LargeStringBuilder).Append("m")
		// Nulls in the middle of a fixed-size list column: pqarrow v17
		// cannot handle them without parquetio's list detour.
		fb := b.Field(9).(*array.FixedSizeListBuilder)
		if k%4 == 1 {
			fb.AppendNull()
		} else {
			fb.Append(true)
			fb.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{float32(k), -1, 0.5}, nil)
		}
	}
	return b.NewRecord()
}

func readAll(t *testing.T, r fileio.Reader) []arrow.Record {
	t.Helper()
	var out []arrow.Record
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Record)
	}
}

func concat(t *testing.T, recs []arrow.Record) arrow.Table {
	t.Helper()
	return array.NewTableFromRecords(recs[0].Schema(), recs)
}

func TestRoundTripRichColumns(t *testing.T) {
	dir := t.TempDir()
	recs := []arrow.Record{richRecord(t, 0, 50), richRecord(t, 50, 70)}
	want := concat(t, recs)
	for _, name := range []string{"x.parquet", "x.arrow", "x.arrows"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			w, err := Create(path, richSchema())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if err := w.Write(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("final file visible before Commit: %v", err)
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path, ReadOptions{ChunkRows: 16})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !sameFields(r.Schema(), richSchema()) {
				t.Fatalf("schema changed:\n got %s\nwant %s", r.Schema(), richSchema())
			}
			got := readAll(t, r)
			for _, g := range got {
				if g.NumRows() > 16 {
					t.Fatalf("chunk of %d rows, want <= 16", g.NumRows())
				}
			}
			gt := concat(t, got)
			for c := 0; c < int(want.NumCols()); c++ {
				if !array.ChunkedEqual(gt.Column(c).Data(), want.Column(c).Data()) {
					t.Fatalf("column %s differs after the round trip", want.Schema().Field(c).Name)
				}
			}
		})
	}
}

func TestParquetRowGroupRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rg.parquet")
	w, err := parquetio.Create(path, richSchema(), parquetio.WriteOptions{RowGroupRows: 30})
	if err != nil {
		t.Fatal(err)
	}
	rec := richRecord(t, 0, 100)
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	rgs, err := parquetio.RowGroups(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rgs) != 4 || rgs[3].NumRows != 10 || rgs[2].FirstRow != 60 {
		t.Fatalf("row groups = %+v", rgs)
	}
	r, err := Open(path, ReadOptions{RowGroupLo: 1, RowGroupHi: 3, ChunkRows: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ids []int64
	wantFirst := int64(30)
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.FirstRow != wantFirst || c.RowGroup != int(c.FirstRow/30) {
			t.Fatalf("chunk %d: first row %d row group %d, want first %d", c.Seq, c.FirstRow, c.RowGroup, wantFirst)
		}
		wantFirst += c.Record.NumRows()
		ids = append(ids, c.Record.Column(1).(*array.Int64).Int64Values()...)
		c.Record.Release()
	}
	if len(ids) != 60 || ids[0] != 30 || ids[59] != 89 {
		t.Fatalf("ids = %v", ids)
	}
	if _, err := Open(path, ReadOptions{RowGroupLo: 2, RowGroupHi: 5}); !errors.Is(err, fileio.ErrRowGroupRange) {
		t.Fatalf("range past the end: err = %v", err)
	}
}

func TestCorruptParquetNamesFileAndRowGroup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ok.parquet")
	w, err := parquetio.Create(path, richSchema(), parquetio.WriteOptions{RowGroupRows: 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), richRecord(t, 0, 100)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	// Truncated: the footer is gone.
	trunc := filepath.Join(dir, "trunc.parquet")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	if _, err := Open(trunc, ReadOptions{}); !errors.Is(err, fileio.ErrCorrupt) || !strings.Contains(err.Error(), trunc) {
		t.Fatalf("truncated file: err = %v", err)
	}
	// Garbage in the data pages of row group 2, footer intact.
	rgs, _ := parquetio.RowGroups(path)
	bad := append([]byte(nil), data...)
	off := 4
	for _, g := range rgs[:2] {
		off += int(g.CompressedBytes)
	}
	for i := off; i < off+int(rgs[2].CompressedBytes); i++ {
		bad[i] ^= 0x5a
	}
	badPath := filepath.Join(dir, "bad.parquet")
	os.WriteFile(badPath, bad, 0o644)
	r, err := Open(badPath, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rerr error
	for {
		c, err := r.Next(context.Background())
		if err != nil {
			rerr = err
			break
		}
		c.Record.Release()
	}
	if !errors.Is(rerr, fileio.ErrCorrupt) || !strings.Contains(rerr.Error(), "row group 2") || !strings.Contains(rerr.Error(), badPath) {
		t.Fatalf("corrupt row group: err = %v", rerr)
	}
}

func TestJSONLWriteRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.jsonl")
	s := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "emb", Type: arrow.FixedSizeListOf(3, arrow.PrimitiveTypes.Float32), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, s)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"a \"q\"", "", "é"}, []bool{true, false, true})
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
	fb := b.Field(2).(*array.FixedSizeListBuilder)
	vb := fb.ValueBuilder().(*array.Float32Builder)
	fb.Append(true)
	vb.AppendValues([]float32{0.1, -2, 3.25}, nil)
	fb.AppendNull()
	fb.Append(true)
	vb.AppendValues([]float32{1e-7, 0, 1}, nil)
	rec := b.NewRecord()
	w, err := Create(path, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := `{"text":"a \"q\"","n":1,"emb":[0.1,-2,3.25]}
{"text":null,"n":2,"emb":null}
{"text":"é","n":3,"emb":[1e-07,0,1]}
`
	if string(data) != want {
		t.Fatalf("jsonl =\n%s\nwant\n%s", data, want)
	}
	r, err := Open(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := readAll(t, r)
	if len(got) != 1 || got[0].NumRows() != 3 || got[0].Schema().Field(2).Type.ID() != arrow.LIST {
		t.Fatalf("read back %v", got)
	}
	if v := got[0].Column(2).(*array.List).ListValues().(*array.Float64).Value(0); float32(v) != 0.1 {
		t.Fatalf("emb[0][0] = %v", v)
	}
}

func TestCSVAndExpand(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("id,text\n1,hello\n2,\n3,\"a, b\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.jsonl"), []byte(`{"text":"x"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("skip"), 0o644)
	files, err := Expand(dir)
	if err != nil || len(files) != 2 {
		t.Fatalf("Expand(dir) = %v, %v", files, err)
	}
	if g, err := Expand(filepath.Join(dir, "*.csv")); err != nil || len(g) != 1 {
		t.Fatalf("Expand(glob) = %v, %v", g, err)
	}
	r, err := Open(files[0], ReadOptions{TextColumn: "text"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs := readAll(t, r)
	tc, err := fileio.NewTextColumn(recs[0].Column(1))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := tc.Value(2); !ok || v != "a, b" {
		t.Fatalf("row 2 = %q %v", v, ok)
	}
	if _, ok := tc.Value(1); ok {
		t.Fatal("empty CSV field should read as null")
	}
	if _, err := fileio.ColumnIndex(r.Schema(), "body", files[0]); !errors.Is(err, fileio.ErrMissingColumn) || !strings.Contains(err.Error(), `"id" "text"`) {
		t.Fatalf("missing column error = %v", err)
	}
}

// sameFields compares names, types and nullability, ignoring metadata (the
// Parquet reader adds field ids).
func sameFields(a, b *arrow.Schema) bool {
	if a.NumFields() != b.NumFields() {
		return false
	}
	for i := range a.Fields() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || fa.Nullable != fb.Nullable || !arrow.TypeEqual(fa.Type, fb.Type) {
			return false
		}
	}
	return true
}

// TestParquetChunkBytes checks that a byte cap makes chunks of wide rows
// hold fewer rows, that the chunks of narrow rows keep ChunkRows, that every
// row is read once in order, and that the cut is the same on every read (it
// keys checkpoints), and that the writer keeps pages of wide rows near
// DefaultPageBytes.
func TestParquetChunkBytes(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "payload", Type: arrow.BinaryTypes.Binary},
	}, nil)
	path := filepath.Join(t.TempDir(), "wide.parquet")
	const rows, wide, narrow = 3000, 8 << 10, 16
	// One row group of wide rows, one of narrow rows.
	w, err := parquetio.Create(path, schema, parquetio.WriteOptions{RowGroupRows: rows / 2, NoDictionary: []string{"payload"}})
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := 0; i < rows; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		n := narrow
		if i < rows/2 {
			n = wide
		}
		b.Field(1).(*array.BinaryBuilder).Append([]byte(fmt.Sprintf("%08d", i) + strings.Repeat(string(rune('a'+i%26)), n-8)))
	}
	rec := b.NewRecord()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	read := func() []int64 {
		r, err := Open(path, ReadOptions{ChunkRows: 512, ChunkBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var sizes []int64
		next := int64(0)
		for _, rec := range readAll(t, r) {
			ids := rec.Column(0).(*array.Int64).Int64Values()
			for _, id := range ids {
				if id != next {
					t.Fatalf("row %d read where %d was due", id, next)
				}
				next++
			}
			sizes = append(sizes, rec.NumRows())
			rec.Release()
		}
		if next != rows {
			t.Fatalf("read %d rows, want %d", next, rows)
		}
		return sizes
	}
	sizes := read()
	wantWide := int64((1 << 20) / (wide + 8))
	var wideRows int64
	for i, n := range sizes[:len(sizes)-3] {
		if n > wantWide+1 || (i < len(sizes)-4 && n < wantWide-16) {
			t.Errorf("chunk %d of wide rows holds %d rows, want about %d", i, n, wantWide)
		}
		wideRows += n
	}
	if wideRows != rows/2 {
		t.Errorf("chunks of wide rows hold %d rows, want %d", wideRows, rows/2)
	}
	if got := sizes[len(sizes)-3:]; got[0] != 512 || got[1] != 512 || got[2] != 476 {
		t.Errorf("chunks of narrow rows hold %v rows, want [512 512 476]", got)
	}
	if again := read(); !slices.Equal(sizes, again) {
		t.Errorf("second read cut %v, first %v", again, sizes)
	}
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	pr, err := pf.RowGroup(0).GetColumnPageReader(1)
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for pr.Next() {
		// A page closes once past DefaultPageBytes, at the end of a write
		// batch of 64 rows.
		if p := pr.Page(); isV1(p) && p.(*file.DataPageV1).UncompressedSize() > parquetio.DefaultPageBytes+64*wide {
			t.Errorf("data page of %d bytes", p.(*file.DataPageV1).UncompressedSize())
		}
		pages++
	}
	if pages < rows/2*wide/(parquetio.DefaultPageBytes+64*wide) {
		t.Errorf("%d pages for %d bytes", pages, rows/2*wide)
	}
}

func isV1(p file.Page) bool { _, ok := p.(*file.DataPageV1); return ok }
