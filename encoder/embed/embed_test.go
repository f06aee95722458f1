package embed_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/internal/refs"
)

var texts = []string{
	"Hello, world!",
	"The quick brown fox jumps over the lazy dog.",
	"a",
	"Embeddings map texts to vectors; similar texts get similar vectors.",
	"",
	"Ünïcödé and emoji 🙂 survive tokenization.",
}

func loadModel(t testing.TB, dir string) *encoder.Model {
	t.Helper()
	m, err := encoder.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tinyBert(t testing.TB) *encoder.Model { return loadModel(t, "../../testdata/tiny-bert") }

func newEmbedder(t testing.TB, m embed.Model, o embed.Options) *embed.Embedder {
	t.Helper()
	e, err := embed.New(m, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func run(t testing.TB, e *embed.Embedder, texts []string) ([]float32, embed.Stats) {
	t.Helper()
	dst := make([]float32, len(texts)*e.Dim())
	st, err := e.Embed(context.Background(), dst, texts)
	if err != nil {
		t.Fatal(err)
	}
	return dst, st
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d floats, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: float %d is %v, want %v (bit-identical)", what, i, got[i], want[i])
		}
	}
}

// TestEmbedMatchesEncoder: with default options the seam gives the encoder's
// own vectors, bit for bit, whatever the batch budget.
func TestEmbedMatchesEncoder(t *testing.T) {
	m := tinyBert(t)
	want := make([]float32, len(texts)*m.Dim())
	if err := m.Embed(context.Background(), texts, "", want); err != nil {
		t.Fatal(err)
	}
	got, st := run(t, newEmbedder(t, m, embed.Options{}), texts)
	sameBits(t, "default options", got, want)
	if st.Batches != 1 || st.Tokens == 0 {
		t.Fatalf("stats %+v: want one batch", st)
	}
	small, st := run(t, newEmbedder(t, m, embed.Options{BatchSize: 2, MaxBatchTokens: 12}), texts)
	sameBits(t, "small batches", small, want)
	if st.Batches < 3 {
		t.Fatalf("stats %+v: want at least 3 batches of at most 2 texts", st)
	}
}

// TestTruncateNormalize: truncate-dim keeps the first N dimensions of the
// full vector and renormalizes them with encoder.Normalize, the one
// normalization; normalize=false leaves them as they are.
func TestTruncateNormalize(t *testing.T) {
	m := tinyBert(t)
	full, _ := run(t, newEmbedder(t, m, embed.Options{}), texts)
	e := newEmbedder(t, m, embed.Options{TruncateDim: 16})
	if c := e.Config(); c.Dim != 16 || c.ModelDim != m.Dim() || !c.Normalize {
		t.Fatalf("config %+v: want dim 16 of %d, normalized", c, m.Dim())
	}
	got, _ := run(t, e, texts)
	off := false
	raw, _ := run(t, newEmbedder(t, m, embed.Options{TruncateDim: 16, Normalize: &off}), texts)
	want := make([]float32, len(texts)*16)
	wantRaw := make([]float32, len(texts)*16)
	for i := range texts {
		copy(want[i*16:(i+1)*16], full[i*m.Dim():])
		copy(wantRaw[i*16:(i+1)*16], full[i*m.Dim():])
		encoder.Normalize(want[i*16 : (i+1)*16])
	}
	sameBits(t, "truncate 16 + normalize", got, want)
	sameBits(t, "truncate 16, normalize false", raw, wantRaw)
	var n2 float64
	for _, x := range got[:16] {
		n2 += float64(x) * float64(x)
	}
	if math.Abs(n2-1) > 1e-6 {
		t.Fatalf("truncated vector has norm² %g", n2)
	}
}

// TestUnnormalizedAndLeft: Unnormalized leaves out the model's Normalize
// module (the mean of the token embeddings, unit only once normalized),
// through EmbedIDs as through Embed; TruncateLeft keeps the last tokens
// inside [CLS] and [SEP].
func TestUnnormalizedAndLeft(t *testing.T) {
	m := tinyBert(t)
	e := newEmbedder(t, m, embed.Options{Unnormalized: true})
	if c := e.Config(); !c.Unnormalized || c.Normalize {
		t.Fatalf("config %+v: want unnormalized, not normalized", c)
	}
	in := texts[:4]
	got, _ := run(t, e, in)
	unit, _ := run(t, newEmbedder(t, m, embed.Options{}), in)
	h := m.Hidden()
	for i, text := range in {
		want := meanTokens(t, e, text, 0)
		sameBits(t, text+" unnormalized", got[i*h:(i+1)*h], want)
		encoder.Normalize(want)
		sameBits(t, text+" normalized afterwards", unit[i*h:(i+1)*h], want)
	}
	long := "one two three four five six seven eight nine ten"
	full, _ := m.TokenizeTo(nil, long, "", 0)
	left := newEmbedder(t, m, embed.Options{TruncateLeft: true, MaxLength: 5})
	ids, cut := left.TokenizeTo(nil, long)
	n := len(full)
	if want := append(append([]int32{full[0]}, full[n-4:n-1]...), full[n-1]); !cut || !slices.Equal(ids, want) {
		t.Fatalf("left truncation to 5: %v (cut %v), want %v from %v", ids, cut, want, full)
	}
}

// TestExcludedPrompt: on a model whose pooling excludes prompt tokens, the
// seam pools the same run's token embeddings without the prompt's tokens.
func TestExcludedPrompt(t *testing.T) {
	m := loadModel(t, refs.ExcludedPromptVariant(t, "../../testdata/tiny-bert"))
	e := newEmbedder(t, m, embed.Options{PromptName: "query"})
	c := e.Config()
	if c.Prompt != "query: " || c.PoolSkip != m.PromptPoolSkip("query: ") || c.PoolSkip < 2 {
		t.Fatalf("config %+v", c)
	}
	in := texts[:4]
	got, _ := run(t, e, in)
	h := m.Hidden()
	for i, text := range in {
		want := meanTokens(t, e, text, c.PoolSkip)
		encoder.Normalize(want)
		sameBits(t, text, got[i*h:(i+1)*h], want)
	}
	// A max length that leaves only prompt tokens is refused up front.
	if _, err := embed.New(m, embed.Options{PromptName: "query", MaxLength: c.PoolSkip}); !errors.Is(err, embed.ErrOptions) {
		t.Fatalf("max length %d with a %d-token excluded prompt: %v, want ErrOptions", c.PoolSkip, c.PoolSkip, err)
	}
}

// meanTokens is the mean of the token embeddings of text, tokenized by e,
// after its first skip tokens: mean pooling computed directly.
func meanTokens(t *testing.T, e *embed.Embedder, text string, skip int) []float32 {
	t.Helper()
	h := e.Model().Hidden()
	var b encoder.Batch
	b.Reset()
	b.Add(mustIDs(e, text))
	tok := make([]float32, b.Tokens()*h)
	if err := e.TokenEmbeddingsTo(context.Background(), tok, &b); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, h)
	for j := range want {
		var s float64
		for k := skip; k < b.Tokens(); k++ {
			s += float64(tok[k*h+j])
		}
		want[j] = float32(s / float64(b.Tokens()-skip))
	}
	return want
}

func mustIDs(e *embed.Embedder, text string) []int32 {
	ids, _ := e.TokenizeTo(nil, text)
	return ids
}

// TestResolveRefuses: options the model cannot honour are refused with the
// reason.
func TestResolveRefuses(t *testing.T) {
	m := tinyBert(t)
	cases := []struct {
		name string
		o    embed.Options
		want error
	}{
		{"prompt and name", embed.Options{Prompt: "a", PromptName: "query"}, embed.ErrOptions},
		{"unknown prompt", embed.Options{PromptName: "nope"}, encoder.ErrPrompt},
		{"truncate too wide", embed.Options{TruncateDim: m.Dim() + 1}, embed.ErrOptions},
		{"negative max length", embed.Options{MaxLength: -1}, embed.ErrOptions},
		{"token output with precision", embed.Options{Output: embed.TokenEmbeddings, Precision: embed.Int8}, embed.ErrOptions},
		{"ranges for float32", embed.Options{Ranges: [2][]float32{make([]float32, m.Dim()), make([]float32, m.Dim())}}, embed.ErrRanges},
		{"ranges of another width", embed.Options{Precision: embed.Int8, Ranges: [2][]float32{{0}, {1}}}, embed.ErrRanges},
		{"unnormalized and normalized", embed.Options{Unnormalized: true, Normalize: func() *bool { b := true; return &b }()}, embed.ErrOptions},
		{"token output unnormalized", embed.Options{Output: embed.TokenEmbeddings, Unnormalized: true}, embed.ErrOptions},
	}
	for _, c := range cases {
		if _, err := embed.New(m, c.o); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	c, err := embed.Resolve(m, embed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxLength != m.MaxSeqLen() || c.BatchSize != embed.DefaultBatchSize || c.MaxBatchTokens != embed.DefaultMaxBatchTokens || c.Dim != m.Dim() || c.Normalize {
		t.Fatalf("defaults not resolved: %+v", c)
	}
}

// TestQuantize checks each precision on hand-worked values, as
// sentence-transformers' quantize_embeddings computes them.
func TestQuantize(t *testing.T) {
	for _, name := range []string{"float32", "float16", "int8", "uint8", "binary", "ubinary"} {
		p, err := embed.ParsePrecision(name)
		if err != nil || string(p) != name {
			t.Fatalf("ParsePrecision(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := embed.ParsePrecision("int4"); !errors.Is(err, embed.ErrOptions) {
		t.Fatalf("int4: %v", err)
	}
	v := []float32{-1, -0.5, 0, 0.25, 0.5, 1, 0.75, -0.25, 0.1}
	r, err := embed.NewRanges([]float32{-1, -1, -1, -1, -1, -1, -1, -1, -1}, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	int8s := make([]byte, len(v))
	if err := embed.Int8.QuantizeTo(int8s, v, 1, len(v), &r); err != nil {
		t.Fatal(err)
	}
	// (v+1)/(2/255) - 128, truncated toward zero in float32.
	for i, x := range v {
		step := float32(2) / 255
		want := int8(int32(float32((x+1)/step) - 128))
		if int8(int8s[i]) != want {
			t.Fatalf("int8 dim %d: %d, want %d", i, int8(int8s[i]), want)
		}
	}
	// The minimum maps to -128; the maximum to 126, not 127, because
	// 2/(2/255) is 254.99998 in float32 and the cast truncates.
	if int8(int8s[0]) != -128 || int8(int8s[5]) != 126 {
		t.Fatalf("int8 ends: %d %d", int8(int8s[0]), int8(int8s[5]))
	}
	bits := make([]byte, embed.Ubinary.RowBytes(len(v)))
	if err := embed.Ubinary.QuantizeTo(bits, v, 1, len(v), nil); err != nil {
		t.Fatal(err)
	}
	// Positive: dims 3, 4, 5, 6, 8 → 0b00011110, 0b10000000.
	if len(bits) != 2 || bits[0] != 0x1e || bits[1] != 0x80 {
		t.Fatalf("ubinary %08b", bits)
	}
	if err := embed.Int8.QuantizeTo(int8s, v, 1, len(v), nil); !errors.Is(err, embed.ErrRanges) {
		t.Fatalf("int8 without ranges: %v", err)
	}
	b := embed.NewBounds(2)
	b.Add([]float32{1, -2})
	b.Add([]float32{3, 4})
	rr := b.Ranges()
	got := make([]byte, 2)
	if err := embed.Uint8.QuantizeTo(got, []float32{3, -2}, 1, 2, &rr); err != nil || got[0] != 254 || got[1] != 0 {
		t.Fatalf("uint8 over bounds: %v %v", got, err)
	}
}

// TestQuantizeMatchesSentenceTransformers: ranges [-1, 1] give the float32
// step 0.007843138; numpy's float32 arithmetic then gives 1/step =
// 127.49999 and 2/step = 254.99998, which the casts truncate (worked out
// with float32 rounding at every step).
func TestQuantizeMatchesSentenceTransformers(t *testing.T) {
	r, err := embed.NewRanges([]float32{-1, -1, -1, -1}, []float32{1, 1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	e := []float32{-1, 0, 1, 0.5}
	i8 := make([]byte, 4)
	if err := embed.Int8.QuantizeTo(i8, e, 1, 4, &r); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int8{-128, 0, 126, 63} {
		if int8(i8[i]) != want {
			t.Fatalf("int8 %v, want -128 0 126 63", i8)
		}
	}
	u8 := make([]byte, 4)
	if err := embed.Uint8.QuantizeTo(u8, e, 1, 4, &r); err != nil {
		t.Fatal(err)
	}
	for i, want := range []uint8{0, 127, 254, 191} {
		if u8[i] != want {
			t.Fatalf("uint8 %v, want 0 127 254 191", u8)
		}
	}
	bits := []float32{1, -1, 0, 2, -3, 0, 0, 5, 0.1, 0, 0, 0, 0, 0, 0, 0}
	ub := make([]byte, 2)
	if err := embed.Ubinary.QuantizeTo(ub, bits, 1, 16, nil); err != nil {
		t.Fatal(err)
	}
	if ub[0] != 0b10010001 || ub[1] != 0b10000000 {
		t.Fatalf("ubinary %08b", ub)
	}
	if err := embed.Binary.QuantizeTo(ub, bits, 1, 16, nil); err != nil {
		t.Fatal(err)
	}
	if int8(ub[0]) != int8(0b10010001-128) || int8(ub[1]) != 0 {
		t.Fatalf("binary %v", ub)
	}
}
