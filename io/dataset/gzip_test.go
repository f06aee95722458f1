package dataset

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/io/fileio"
)

func writeGzip(t *testing.T, path, text string) {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write([]byte(text))
	z.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// texts reads the string column "text" of every row of path.
func texts(t *testing.T, path string) ([]string, error) {
	t.Helper()
	r, err := Open(path, ReadOptions{TextColumn: "text"})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	col, err := fileio.ColumnIndex(r.Schema(), "text", path)
	if err != nil {
		return nil, err
	}
	var out []string
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		a := c.Record.Column(col).(*array.String)
		for i := range a.Len() {
			out = append(out, a.Value(i))
		}
		c.Record.Release()
	}
}

// TestGzipInputs checks that .jsonl.gz and .csv.gz inputs read as their
// uncompressed forms, that a damaged one is a corrupt-input error naming
// the file, and that gzip is refused where it cannot apply.
func TestGzipInputs(t *testing.T) {
	dir := t.TempDir()
	jl := filepath.Join(dir, "a.jsonl.gz")
	writeGzip(t, jl, `{"id": 1, "text": "first"}`+"\n"+`{"id": 2, "text": "second"}`+"\n")
	cs := filepath.Join(dir, "b.CSV.GZ")
	writeGzip(t, cs, "id,text\n1,first\n2,second\n")
	for _, p := range []string{jl, cs} {
		got, err := texts(t, p)
		if err != nil || len(got) != 2 || got[0] != "first" || got[1] != "second" {
			t.Errorf("%s: %q, %v", p, got, err)
		}
	}
	notGz := filepath.Join(dir, "c.jsonl.gz")
	os.WriteFile(notGz, []byte(`{"text": "plain"}`+"\n"), 0o644)
	if _, err := texts(t, notGz); !errors.Is(err, fileio.ErrCorrupt) {
		t.Errorf("plain file named .gz: %v", err)
	}
	// A truncated stream fails with the file named, not a silent short read.
	full, _ := os.ReadFile(jl)
	cut := filepath.Join(dir, "d.jsonl.gz")
	os.WriteFile(cut, full[:len(full)-6], 0o644)
	if _, err := texts(t, cut); err == nil {
		t.Errorf("truncated gzip: no error")
	}
	if _, err := FormatOf("x.parquet.gz"); !errors.Is(err, fileio.ErrUnsupportedFormat) {
		t.Errorf("x.parquet.gz: %v", err)
	}
	if err := Writable("out.jsonl.gz"); !errors.Is(err, fileio.ErrUnsupportedFormat) {
		t.Errorf("writing out.jsonl.gz: %v", err)
	}
}
