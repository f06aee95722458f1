package pipeline

import (
	"context"
	"github.com/embedpipe/embedpipe/io/sink"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
)

// TestBatchingDoesNotChangeResults runs the same input with very different
// chunk, batch, token-budget and worker settings: every float must agree.
func TestBatchingDoesNotChangeResults(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, 700, 150)
	var first string
	for i, c := range []Config{
		{BatchSize: 1, ChunkRows: 50, Workers: 1},
		{BatchSize: 256, MaxBatchTokens: 100000, ChunkRows: 700, Workers: 2},
		{BatchSize: 7, MaxBatchTokens: 300, ChunkRows: 33, Workers: 3},
	} {
		c.Inputs = []Input{{Path: in}}
		c.Output = filepath.Join(dir, "out"+string(rune('a'+i))+".parquet")
		if _, err := Run(context.Background(), m, c); err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = c.Output
			continue
		}
		a, _ := embeddings(t, readOutput(t, first), "embedding")
		b, _ := embeddings(t, readOutput(t, c.Output), "embedding")
		for r := range a {
			if (a[r] == nil) != (b[r] == nil) {
				t.Fatalf("row %d: null differs", r)
			}
			for d := range a[r] {
				if a[r][d] != b[r][d] {
					t.Fatalf("config %d row %d dim %d: %v != %v", i, r, d, b[r][d], a[r][d])
				}
			}
		}
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPrecisionAndTruncateOutputs(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, 300, 100)
	base := filepath.Join(dir, "f32.parquet")
	if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: base}); err != nil {
		t.Fatal(err)
	}
	full, dim := embeddings(t, readOutput(t, base), "embedding")

	// truncate-dim: first N dims, renormalized.
	tr := filepath.Join(dir, "trunc.parquet")
	if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: tr, TruncateDim: 8}); err != nil {
		t.Fatal(err)
	}
	got, gdim := embeddings(t, readOutput(t, tr), "embedding")
	if gdim != 8 {
		t.Fatalf("truncated dim %d", gdim)
	}
	for r := range got {
		if full[r] == nil {
			continue
		}
		want := append([]float32(nil), full[r][:8]...)
		encoder.Normalize(want)
		for d := range want {
			if math.Abs(float64(got[r][d]-want[d])) > 1e-6 {
				t.Fatalf("row %d dim %d: %v want %v", r, d, got[r][d], want[d])
			}
		}
	}

	// int8 with ranges over the whole run.
	lo, hi := make([]float32, dim), make([]float32, dim)
	for d := range lo {
		lo[d], hi[d] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for _, v := range full {
		for d, x := range v {
			lo[d], hi[d] = min(lo[d], x), max(hi[d], x)
		}
	}
	for _, p := range []string{"int8", "uint8", "binary", "ubinary", "float16"} {
		out := filepath.Join(dir, p+".parquet")
		if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, Precision: embed.Precision(p)}); err != nil {
			t.Fatal(err)
		}
		tbl := readOutput(t, out)
		col := tbl.Column(tbl.Schema().FieldIndices("embedding")[0]).Data().Chunks()
		pr, _ := embed.ParsePrecision(p)
		ft := tbl.Schema().Field(tbl.Schema().FieldIndices("embedding")[0]).Type.(*arrow.FixedSizeListType)
		if int(ft.Len()) != pr.Width(dim) || !arrow.TypeEqual(ft.Elem(), sink.ElemType(pr)) {
			t.Fatalf("%s: column type %s", p, ft)
		}
		// quantize_embeddings' starts and steps, in float32.
		steps := make([]float32, dim)
		for d := range steps {
			steps[d] = (hi[d] - lo[d]) / 255
		}
		row := 0
		for _, ch := range col {
			fl := ch.(*array.FixedSizeList)
			for i := 0; i < fl.Len(); i, row = i+1, row+1 {
				if full[row] == nil {
					if fl.IsValid(i) {
						t.Fatalf("%s row %d: null became a value", p, row)
					}
					continue
				}
				s, _ := fl.ValueOffsets(i)
				e := full[row]
				switch p {
				case "int8":
					v := fl.ListValues().(*array.Int8).Int8Values()[s:]
					for d := range e {
						want := int8(int32((e[d]-lo[d])/steps[d] - 128))
						if v[d] != want {
							t.Fatalf("int8 row %d dim %d: %d want %d", row, d, v[d], want)
						}
					}
				case "uint8":
					v := fl.ListValues().(*array.Uint8).Uint8Values()[s:]
					for d := range e {
						if want := uint8(int32((e[d] - lo[d]) / steps[d])); v[d] != want {
							t.Fatalf("uint8 row %d dim %d: %d want %d", row, d, v[d], want)
						}
					}
				case "ubinary", "binary":
					var v []byte
					if p == "binary" {
						for _, x := range fl.ListValues().(*array.Int8).Int8Values()[s : s+int64(pr.Width(dim))] {
							v = append(v, byte(int(x)+128))
						}
					} else {
						v = fl.ListValues().(*array.Uint8).Uint8Values()[s:]
					}
					for d := range e {
						bit := v[d/8]>>(7-d%8)&1 == 1
						if bit != (e[d] > 0) {
							t.Fatalf("%s row %d dim %d: bit %v for %v", p, row, d, bit, e[d])
						}
					}
				case "float16":
					v := fl.ListValues().(*array.Float16).Values()[s:]
					for d := range e {
						if math.Abs(float64(v[d].Float32()-e[d])) > 1e-3 {
							t.Fatalf("float16 row %d dim %d: %v want %v", row, d, v[d].Float32(), e[d])
						}
					}
				}
			}
		}
	}
}

func TestCacheAndDedup(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	texts := []*string{sp("alpha"), sp("beta"), sp("alpha"), sp("gamma"), nil, sp("beta")}
	writeTexts(t, in, arrow.BinaryTypes.String, texts, 100)
	cache := filepath.Join(dir, "cache")
	out1 := filepath.Join(dir, "o1.parquet")
	s1, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out1, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Embedded != 3 || s1.Deduplicated != 2 || s1.CacheHits != 0 {
		t.Fatalf("first run %+v", s1)
	}
	out2 := filepath.Join(dir, "o2.parquet")
	s2, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out2, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Embedded != 0 || s2.CacheHits != 3 {
		t.Fatalf("second run %+v", s2)
	}
	sameOutput(t, out2, out1)

	// One changed and one new text: only those are embedded.
	texts[1] = sp("delta")
	texts = append(texts, sp("epsilon"))
	in2 := filepath.Join(dir, "in2.parquet")
	writeTexts(t, in2, arrow.BinaryTypes.String, texts, 100)
	out3 := filepath.Join(dir, "o3.parquet")
	s3, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in2}}, Output: out3, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if s3.Embedded != 2 || s3.CacheHits != 3 {
		t.Fatalf("third run %+v", s3)
	}
	got, _ := embeddings(t, readOutput(t, out3), "embedding")
	want := make([]float32, m.Dim())
	m.Embed(context.Background(), []string{"gamma"}, "", want)
	for d := range want {
		if got[3][d] != want[d] {
			t.Fatal("cached embedding differs from a fresh one")
		}
	}
}

func TestSeveralInputsAndTokenEmbeddings(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.jsonl")
	writeTexts(t, a, arrow.BinaryTypes.String, []*string{sp("Hello, world!"), nil}, 10)
	os.WriteFile(b, []byte(`{"text":"one","n":1}`+"\n"+`{"text":"two","n":2}`+"\n"), 0o644)
	outDir := filepath.Join(dir, "out")
	sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: a}, {Path: b}}, Output: outDir, OutputValue: TokenEmbeddings})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 2 || sum.RowsOut != 4 {
		t.Fatalf("summary %+v", sum)
	}
	tbl := readOutput(t, filepath.Join(outDir, "a.parquet"))
	col := tbl.Column(tbl.Schema().FieldIndices("embedding")[0]).Data().Chunk(0).(*array.List)
	toks := tbl.Column(tbl.Schema().FieldIndices("embedding_tokens")[0]).Data().Chunk(0).(*array.List)
	if col.IsValid(1) || toks.IsValid(1) {
		t.Fatal("null text must give null token embeddings")
	}
	lo, hi := toks.ValueOffsets(0)
	strs := toks.ListValues().(*array.String)
	var got []string
	for i := lo; i < hi; i++ {
		got = append(got, strs.Value(int(i)))
	}
	if want := []string{"[CLS]", "hello", ",", "world", "!", "[SEP]"}; !equal(got, want) {
		t.Fatalf("tokens %q, want %q", got, want)
	}
	elo, ehi := col.ValueOffsets(0)
	if ehi-elo != 6 {
		t.Fatalf("%d token vectors, want 6", ehi-elo)
	}
	if _, err := os.Stat(filepath.Join(outDir, "b.jsonl")); err != nil {
		t.Fatal(err)
	}
}

// TestDedupAcrossChunks checks that a text repeated in later chunks is
// embedded once per run.
func TestDedupAcrossChunks(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	var texts []*string
	for i := 0; i < 200; i++ {
		texts = append(texts, sp([]string{"red", "green", "blue", "red green"}[i%4]))
	}
	writeTexts(t, in, arrow.BinaryTypes.String, texts, 100)
	sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, "o.parquet"), ChunkRows: 5, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Chunks in flight together (4 here) can each miss the memo for the same
	// text; after them every repeat is served from it. Without the memo the
	// 40 chunks would embed 160 texts.
	if sum.Embedded > 16 || sum.Embedded+sum.Deduplicated != 200 {
		t.Fatalf("summary %+v: want at most 16 texts embedded and the rest deduplicated", sum)
	}
}
