package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/io/csvio"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// readKeepingBad reads path with bad rows kept and returns the text column
// (nil for null), the bad rows by file row, and the read's error.
func readKeepingBad(t *testing.T, path string, chunkRows int) ([]*string, map[int64]string, error) {
	t.Helper()
	r, err := Open(path, ReadOptions{ChunkRows: chunkRows, TextColumn: "text", KeepBadRows: true})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	col, err := fileio.ColumnIndex(r.Schema(), "text", path)
	if err != nil {
		t.Fatal(err)
	}
	var texts []*string
	bad := map[int64]string{}
	for {
		c, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return texts, bad, nil
		}
		if err != nil {
			return texts, bad, err
		}
		a := c.Record.Column(col).(*array.String)
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				texts = append(texts, nil)
			} else {
				s := a.Value(i)
				texts = append(texts, &s)
			}
		}
		for _, b := range c.BadRows {
			for i := range c.Record.NumCols() {
				if !c.Record.Column(int(i)).IsNull(b.Row) {
					t.Errorf("bad row %d: column %d is not null", c.FirstRow+int64(b.Row), i)
				}
			}
			if !errors.Is(b.Err, fileio.ErrCorrupt) {
				t.Errorf("bad row error %v is not ErrCorrupt", b.Err)
			}
			bad[c.FirstRow+int64(b.Row)] = b.Err.Error()
		}
		c.Record.Release()
	}
}

// TestJSONLKeepBadRows reads a JSONL file whose lines clash with the schema
// during and after inference, are not JSON, or name unknown keys: kept, each
// becomes a row of nulls listed with its line; not kept, the read fails as
// before. Every line is a row either way.
func TestJSONLKeepBadRows(t *testing.T) {
	var b strings.Builder
	want := map[int64]string{}
	var lines []string
	add := func(line, bad string) {
		if bad != "" {
			want[int64(len(lines))] = fmt.Sprintf("line %d: %s", len(lines)+1, bad)
		}
		lines = append(lines, line)
	}
	add(`{"text":"a","n":1,"tags":["x"]}`, "")
	add(`{"text":5,"n":2}`, `column "text" holds an INT64 after a STRING`)
	add(`not json`, "not a JSON object")
	add(`{"text":"b","n":2.5,"tags":["y",3]}`, `column "tags[]" holds an INT64 after a STRING`)
	for len(lines) < 1100 {
		add(fmt.Sprintf(`{"text":"t%d","n":%d}`, len(lines), len(lines)), "")
	}
	// After inference: the schema is fixed.
	add(`{"text":["list"],"n":1}`, `column "text" holds a LIST where the schema`)
	add(`{"text":"c","other":1}`, `key "other" is not in the schema`)
	add(`{"text":"d","n":"seven"}`, `column "n" holds a STRING where the schema`)
	add(`[1,2]`, "not a JSON object")
	add(`{"text":"e","n":7}`, "")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	texts, bad, err := readKeepingBad(t, path, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != len(lines) {
		t.Fatalf("%d rows for %d lines", len(texts), len(lines))
	}
	if len(bad) != len(want) {
		t.Errorf("bad rows %v, want %d of them", bad, len(want))
	}
	for row, w := range want {
		prefix, rest, _ := strings.Cut(w, ": ")
		if got := bad[row]; !strings.Contains(got, prefix) || !strings.Contains(got, rest) {
			t.Errorf("row %d: error %q, want %q", row, got, w)
		}
		if texts[row] != nil {
			t.Errorf("row %d: text %q, want null", row, *texts[row])
		}
	}
	if texts[0] == nil || *texts[0] != "a" || texts[len(texts)-1] == nil || *texts[len(texts)-1] != "e" {
		t.Errorf("good rows misread: first %v last %v", texts[0], texts[len(texts)-1])
	}
	// The default reader still fails at the first bad line.
	_, err = Open(path, ReadOptions{TextColumn: "text"})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("default reader: %v, want a line 2 error", err)
	}
}

// TestCSVKeepBadRows reads a CSV file with records of the wrong field count
// and a stray quote: kept, each is a row of nulls listed with its line and
// the rows after it are read as written.
func TestCSVKeepBadRows(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		bad        map[int64]string
		texts      []string // "" for null
	}{
		{"fields", "text,n\nhello,1\nshort\nworld,2\ntoo,many,3\nend,4\n",
			map[int64]string{1: "line 3: 1 fields where the header has 2", 3: "line 5: 3 fields where the header has 2"},
			[]string{"hello", "", "world", "", "end"}},
		{"quote", "text,n\nhello,1\nba\"d,2\nend,4\n",
			map[int64]string{1: "line 3"}, []string{"hello", "", "end"}},
		{"one column", "text\nhello\n\"x\"y\nend\n",
			map[int64]string{1: "line 3"}, []string{"hello", "", "end"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.csv")
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{1, 2, 100} {
				texts, bad, err := readKeepingBad(t, path, chunk)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if len(texts) != len(tc.texts) {
					t.Fatalf("chunk %d: %d rows, want %d", chunk, len(texts), len(tc.texts))
				}
				for i, w := range tc.texts {
					if (w == "") != (texts[i] == nil) || w != "" && *texts[i] != w {
						t.Errorf("chunk %d row %d: %v, want %q", chunk, i, texts[i], w)
					}
				}
				if len(bad) != len(tc.bad) {
					t.Errorf("chunk %d: bad rows %v, want %v", chunk, bad, tc.bad)
				}
				for row, w := range tc.bad {
					if !strings.Contains(bad[row], w) {
						t.Errorf("chunk %d row %d: %q, want %q", chunk, row, bad[row], w)
					}
				}
			}
			if _, _, err := func() ([]*string, map[int64]string, error) {
				r, err := Open(path, ReadOptions{TextColumn: "text", ChunkRows: 100})
				if err != nil {
					return nil, nil, err
				}
				defer r.Close()
				for {
					if _, err := r.Next(context.Background()); err != nil {
						if errors.Is(err, io.EOF) {
							return nil, nil, nil
						}
						return nil, nil, err
					}
				}
			}(); err == nil {
				t.Error("the default reader read the bad records without an error")
			}
		})
	}
}

// TestCSVCountRows counts the data records of CSV files as a reader keeping
// bad rows hands them out: quoted newlines inside one record, blank lines
// skipped, bad records counted, gzip read through.
func TestCSVCountRows(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		data string
		want int64
	}{
		{"text,n\nhello,1\n\"two\nlines\",2\n\nend,3\n", 3},
		{"text,n\nhello,1\nshort\nba\"d,2\nend,4", 4},
		{"text\n", 0},
		{"", 0},
	} {
		path := filepath.Join(dir, "c.csv")
		os.WriteFile(path, []byte(tc.data), 0o644)
		n, err := csvio.CountRows(path, 0)
		if err != nil || n != tc.want {
			t.Errorf("%q: %d rows, %v; want %d", tc.data, n, err, tc.want)
		}
		if tc.data == "" {
			continue
		}
		texts, _, err := readKeepingBad(t, path, 2)
		if err != nil || int64(len(texts)) != n {
			t.Errorf("%q: the reader hands out %d rows (%v), CountRows says %d", tc.data, len(texts), err, n)
		}
	}
	gz := filepath.Join(dir, "c.csv.gz")
	writeGzip(t, gz, "text\na\nb\n")
	if n, err := csvio.CountRows(gz, 0); err != nil || n != 2 {
		t.Errorf("gzip: %d rows, %v; want 2", n, err)
	}
}
