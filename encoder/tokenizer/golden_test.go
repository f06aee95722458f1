package tokenizer

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ from the shared reference outputs")

// goldenFile holds ids that Hugging Face produced (taken from the shared
// refs, never from this package) for a subset of the reference corpus, so
// that the fidelity checks also run where the shared material is absent.
type goldenFile struct {
	Source    string       `json:"source"`
	Tokenizer string       `json:"tokenizer"`
	MaxLen    int          `json:"max_len"`
	Rows      []goldenCase `json:"rows"`
}

type goldenCase struct {
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

// goldenSets names, for each golden file, the refs file it is cut from, the
// tokenizer directory or file it checks (relative to this package) and the
// truncation length of the refs.
var goldenSets = []struct {
	golden, refs, tokenizer string
	maxLen                  int
}{
	{"tiny-bert.golden.json", "tiny-bert.parquet", "../../testdata/tiny-bert", 128},
	{"tiny-qwen3.golden.json", "tiny-qwen3.parquet", "testdata/tiny-qwen3.tokenizer.json", 256},
}

// goldenRow picks the rows kept in a golden file: short texts, where the
// corpus's many scripts, emoji and control characters are, to keep the
// files small.
func goldenRow(text string) bool { return len(text) <= 160 }

func TestGolden(t *testing.T) {
	for _, g := range goldenSets {
		t.Run(g.golden, func(t *testing.T) {
			path := filepath.Join("testdata", g.golden)
			if *update {
				rows := refs.Read[refs.Row](t, g.refs)
				out := goldenFile{Source: "shared/refs/" + g.refs, Tokenizer: g.tokenizer, MaxLen: g.maxLen}
				for _, r := range rows {
					if r.Text != nil && goldenRow(*r.Text) {
						out.Rows = append(out.Rows, goldenCase{*r.Text, r.InputIDs})
					}
				}
				data, err := marshalGolden(out)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var gf goldenFile
			if err := json.Unmarshal(data, &gf); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			var tk *Tokenizer
			if filepath.Ext(gf.Tokenizer) == ".json" {
				tk, err = FromFile(gf.Tokenizer)
			} else {
				tk, err = Load(gf.Tokenizer)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(gf.Rows) < 100 {
				t.Fatalf("%s: only %d rows", path, len(gf.Rows))
			}
			bad := 0
			var ids []int32
			for _, r := range gf.Rows {
				ids, _ = tk.EncodeTo(ids[:0], r.Text, gf.MaxLen)
				if !slices.Equal(ids, r.IDs) {
					if bad++; bad <= 5 {
						t.Errorf("%q: got %v, want %v", r.Text, ids, r.IDs)
					}
				}
			}
			t.Logf("%s: %d/%d rows match", path, len(gf.Rows)-bad, len(gf.Rows))
		})
	}
}

// marshalGolden writes one row a line, so that diffs of the golden files
// stay readable.
func marshalGolden(g goldenFile) ([]byte, error) {
	rows := g.Rows
	g.Rows = nil
	head, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	// Reopen the object to append the rows field by hand.
	out := append(head[:len(head)-len(`,"rows":null}`)], `,"rows":[`...)
	for i, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		out = append(out, '\n')
		out = append(out, line...)
		if i < len(rows)-1 {
			out = append(out, ',')
		}
	}
	return append(out, "\n]}\n"...), nil
}

// TestConcurrentEncode encodes the golden texts from several goroutines at
// once with a fresh tokenizer (cold BPE cache, shared scratch pool) and
// checks every result against Hugging Face's ids.
func TestConcurrentEncode(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tiny-qwen3.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gf goldenFile
	if err := json.Unmarshal(data, &gf); err != nil {
		t.Fatal(err)
	}
	tk, err := FromFile(gf.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			var ids []int32
			for i := range gf.Rows {
				r := gf.Rows[(i+w*len(gf.Rows)/workers)%len(gf.Rows)]
				ids, _ = tk.EncodeTo(ids[:0], r.Text, gf.MaxLen)
				if !slices.Equal(ids, r.IDs) {
					errs <- r.Text
					return
				}
			}
			errs <- ""
		}()
	}
	for range workers {
		if s := <-errs; s != "" {
			t.Errorf("concurrent encoding of %q differs", s)
		}
	}
}
