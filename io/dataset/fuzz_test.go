package dataset

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// drain opens data as a file with extension ext and reads every chunk. Bad
// input must come back as an error, never a panic or a hang.
func drain(t *testing.T, ext string, data []byte) {
	path := filepath.Join(t.TempDir(), "in"+ext)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReadOptions{ChunkRows: 3, TextColumn: "text"})
	if err != nil {
		return
	}
	defer r.Close()
	for i := 0; i < 1<<16; i++ {
		c, err := r.Next(context.Background())
		if err != nil {
			return
		}
		if c.Record.NumRows() == 0 || c.Record.NumRows() > 3 {
			t.Fatalf("chunk of %d rows", c.Record.NumRows())
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

func seedFile(f *testing.F, ext string) []byte {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed"+ext)
	w, err := Create(path, richSchema())
	if err != nil {
		f.Fatal(err)
	}
	t := &testing.T{}
	rec := richRecord(t, 0, 20)
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
