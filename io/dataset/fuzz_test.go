package dataset

import (
	"bytes"
	"context"
	"github.com/embedpipe/embedpipe/internal/refs"
	"os"
	"path/filepath"
	"testing"
)

// drain opens data as a file with extension ext and reads every chunk, both
// with bad rows kept (JSONL, CSV) and without. Bad input must come back as
// an error or as bad rows within their chunk, never a panic or a hang.
func drain(t *testing.T, ext string, data []byte) {
	path := filepath.Join(t.TempDir(), "in"+ext)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		drainOnce(t, path, keep)
	}
}

func drainOnce(t *testing.T, path string, keep bool) {
	r, err := Open(path, ReadOptions{ChunkRows: 3, TextColumn: "text", KeepBadRows: keep})
	if err != nil {
		return
	}
	defer r.Close()
	for i := 0; i < 1<<16; i++ {
		c, err := r.Next(context.Background())
		if err != nil {
			return
		}
		n := c.Record.NumRows()
		if n == 0 || n > 3 {
			t.Fatalf("chunk of %d rows", n)
		}
		for _, b := range c.BadRows {
			if !keep || b.Row < 0 || int64(b.Row) >= n || b.Err == nil {
				t.Fatalf("bad row %d (%v) in a chunk of %d rows, keep %v", b.Row, b.Err, n, keep)
			}
		}
		c.Record.Release()
	}
	t.Fatal("reader never ended")
}

func FuzzJSONL(f *testing.F) {
	f.Add([]byte(`{"text":"a","n":1}` + "\n" + `{"text":null,"n":2.5,"l":[1,2],"s":{"x":true}}` + "\n"))
	f.Add([]byte("{\"text\":\"\xff\xfe\"}\n\n{}\n"))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, ".jsonl", data) })
}

func FuzzCSV(f *testing.F) {
	f.Add([]byte("id,text\n1,hello\n2,\"a,b\"\n"))
	f.Add([]byte("text\n\"unterminated\n"))
	f.Add([]byte("a,b\n1\n"))
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, ".csv", data) })
}

func seedFile(f testing.TB, ext string) []byte {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed"+ext)
	w, err := Create(path, richSchema())
	if err != nil {
		f.Fatal(err)
	}
	rec := richRecord(f, 0, 20)
	if err := w.Write(context.Background(), rec); err != nil {
		f.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		f.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

func FuzzParquet(f *testing.F) {
	seed := seedFile(f, ".parquet")
	f.Add(seed)
	f.Add(seed[:len(seed)-9])
	mid := bytes.Clone(seed)
	mid[len(mid)/2] ^= 0xff
	f.Add(mid)
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, ".parquet", data) })
}

func FuzzArrowIPC(f *testing.F) {
	seed := seedFile(f, ".arrow")
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, ".arrow", data) })
}

func FuzzArrowStream(f *testing.F) {
	seed := seedFile(f, ".arrows")
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	// The file format's footer-less head is a stream: the lying lengths of
	// the shared fixture reach the stream reader this way.
	if shared := refs.SharedDir(); shared != "" {
		if b, err := os.ReadFile(filepath.Join(shared, "fixtures", "bad-inputs", "m-case-arrow-344.arrow")); err == nil && len(b) > 8 {
			f.Add(b[8:])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { drain(t, ".arrows", data) })
}
