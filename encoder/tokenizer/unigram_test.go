package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// xlmrPipeline is the XLM-R tokenizer composed by hand from the components of
// this file set, so that they are tested without the loader: the normalizer
// sequence, Metaspace, Unigram and the "<s> A </s>" template.
type xlmrPipeline struct {
	norms    []Normalizer
	pre      *metaspace
	model    *unigram
	bos, eos int32
}

// xlmrMaxLen is tiny-xlmr's max_seq_length: sentence_bert_config.json has
// none, so sentence-transformers uses tokenizer_config.json's
// model_max_length.
func xlmrMaxLen(t *testing.T, dir string) int {
	t.Helper()
	var cfg struct {
		ModelMaxLength int `json:"model_max_length"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.ModelMaxLength <= 0 {
		t.Fatalf("tokenizer_config.json has no model_max_length")
	}
	return cfg.ModelMaxLength
}

func loadXLMRPipeline(t testing.TB, dir string) *xlmrPipeline {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Normalizer struct {
			Type        string            `json:"type"`
			Normalizers []json.RawMessage `json:"normalizers"`
		} `json:"normalizer"`
		PreTokenizer json.RawMessage `json:"pre_tokenizer"`
		Model        json.RawMessage `json:"model"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if file.Normalizer.Type != "Sequence" {
		t.Fatalf("normalizer type %q, want Sequence", file.Normalizer.Type)
	}
	p := &xlmrPipeline{}
	for _, raw := range file.Normalizer.Normalizers {
		typ, err := componentType(raw)
		if err != nil {
			t.Fatal(err)
		}
		ctor, ok := normalizerCtors[typ]
		if !ok {
			t.Fatalf("normalizer %q is not registered", typ)
		}
		n, err := ctor(raw)
		if err != nil {
			t.Fatalf("normalizer %s: %v", typ, err)
		}
		p.norms = append(p.norms, n)
	}
	pre, err := preTokenizerCtors["Metaspace"](file.PreTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	p.pre = pre.(*metaspace)
	m, err := modelCtors["Unigram"](file.Model)
	if err != nil {
		t.Fatal(err)
	}
	p.model = m.(*unigram)
	var ok1, ok2 bool
	p.bos, ok1 = p.model.TokenToID("<s>")
	p.eos, ok2 = p.model.TokenToID("</s>")
	if !ok1 || !ok2 {
		t.Fatal("vocab lacks <s> or </s>")
	}
	return p
}

func (p *xlmrPipeline) encode(text string, maxLen int) []int32 {
	for _, n := range p.norms {
		text = n.Normalize(text)
	}
	var seq []int32
	for _, w := range p.pre.PreTokenize(nil, text) {
		seq = p.model.Tokenize(seq, w)
	}
	if len(seq) > maxLen-2 {
		seq = seq[:maxLen-2]
	}
	return append(append([]int32{p.bos}, seq...), p.eos)
}

// TestUnigramXLMRReference checks the hand-composed XLM-R pipeline against
// the input ids Hugging Face fed tiny-xlmr for every reference row.
func TestUnigramXLMRReference(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-xlmr")
	p := loadXLMRPipeline(t, dir)
	maxLen := xlmrMaxLen(t, dir)
	rows := refs.Read[refs.Row](t, "tiny-xlmr.parquet")
	if len(rows) == 0 {
		t.Fatal("no reference rows")
	}
	bad := 0
	for i, r := range rows {
		if r.Text == nil {
			continue
		}
		got := p.encode(*r.Text, maxLen)
		if !slices.Equal(got, r.InputIDs) {
			bad++
			if bad <= 10 {
				t.Errorf("row %d %q:\n got %v\nwant %v", i, trimForLog(*r.Text), got, r.InputIDs)
			}
		}
	}
	t.Logf("%d/%d rows match", len(rows)-bad, len(rows))
	if bad > 0 {
		t.Errorf("%d of %d rows differ", bad, len(rows))
	}
}

func trimForLog(s string) string {
	if len(s) > 120 {
		s = s[:120]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	return s
}

// TestUnigramXLMRLoad runs the same rows through the package's public API.
func TestUnigramXLMRLoad(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-xlmr")
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	maxLen := xlmrMaxLen(t, dir)
	rows := refs.Read[refs.Row](t, "tiny-xlmr.parquet")
	bad, cut := 0, 0
	var ids []int32
	for i, r := range rows {
		if r.Text == nil {
			continue
		}
		var truncated bool
		ids, truncated = tk.EncodeTo(ids[:0], *r.Text, maxLen)
		if truncated {
			cut++
		}
		if !slices.Equal(ids, r.InputIDs) {
			bad++
			if bad <= 10 {
				t.Errorf("row %d %q:\n got %v\nwant %v", i, trimForLog(*r.Text), ids, r.InputIDs)
			}
		}
	}
	t.Logf("%d/%d rows match, %d truncated", len(rows)-bad, len(rows), cut)
	if cut == 0 {
		t.Error("no row reached max_seq_length, so truncation went untested")
	}
}

func newTestUnigram(t testing.TB, unk int64, byteFallback bool, pieces ...any) *unigram {
	t.Helper()
	var ps []unigramPiece
	for i := 0; i < len(pieces); i += 2 {
		ps = append(ps, unigramPiece{pieces[i].(string), pieces[i+1].(float64)})
	}
	u, err := newUnigram(ps, unk, byteFallback)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *unigram) tokens(word string) []string {
	var out []string
	for _, id := range u.Tokenize(nil, word) {
		out = append(out, u.IDToToken(id))
	}
	return out
}

func TestUnigramSegmentation(t *testing.T) {
	// The example of Hugging Face's documentation: unknown x's are fused.
	u := newTestUnigram(t, 0, false,
		"<unk>", 0.0, "a", 0.0, "b", 0.0, "c", 0.0, "d", 0.0,
		"cd", 1.0, "ab", 2.0, "abc", 5.0, "abcd", 10.0)
	if got, want := u.Tokenize(nil, "abcdacdxx"), []int32{8, 1, 5, 0}; !slices.Equal(got, want) {
		t.Errorf("abcdacdxx: %v (%q), want %v", got, u.tokens("abcdacdxx"), want)
	}
	if got := u.Tokenize([]int32{42}, ""); !slices.Equal(got, []int32{42}) {
		t.Errorf("empty word appended %v", got[1:])
	}
	// Unknown runs separated by a known piece stay apart.
	if got, want := u.Tokenize(nil, "xxaé"), []int32{0, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("xxaé: %v, want %v", got, want)
	}

	// Scores decide; equal totals keep the path found first (the one whose
	// last piece starts earliest).
	u = newTestUnigram(t, 0, false, "<unk>", 0.0, "a", -1.0, "b", -1.0, "ab", -2.0, "▁", -0.5, "▁ab", -3.0)
	if got := u.tokens("ab"); !slices.Equal(got, []string{"ab"}) {
		t.Errorf("tie a+b vs ab: %q, want [ab]", got)
	}
	if got := u.tokens("▁ab"); !slices.Equal(got, []string{"▁", "ab"}) {
		t.Errorf("▁ab: %q, want [▁ ab]", got)
	}

	// An unknown character scores 10 below the lowest piece, so a known
	// piece, however poor, beats a path through an unknown one.
	u = newTestUnigram(t, 0, false, "<unk>", 0.0, "a", -1.0, "ab", -30.0)
	if got := u.tokens("ab"); !slices.Equal(got, []string{"ab"}) {
		t.Errorf("ab with poor piece: %q, want [ab]", got)
	}
	if got := u.tokens("axba"); !slices.Equal(got, []string{"a", "<unk>", "a"}) {
		t.Errorf("axba: %q, want [a <unk> a]", got)
	}

	// A fused unknown run that is itself a piece takes its id, as Hugging
	// Face looks runs up by string.
	u = newTestUnigram(t, 0, false, "<unk>", 0.0, "xy", -100.0, "q", -1.0)
	if got := u.tokens("xy"); !slices.Equal(got, []string{"xy"}) {
		t.Errorf("xy: %q", got)
	}
}

func TestUnigramByteFallback(t *testing.T) {
	pieces := []any{"<unk>", 0.0, "a", -1.0}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b), -5.0)
	}
	u := newTestUnigram(t, 0, true, pieces...)
	if got, want := u.tokens("aé"), []string{"a", "<0xC3>", "<0xA9>"}; !slices.Equal(got, want) {
		t.Errorf("aé: %q, want %q", got, want)
	}
	// Without every byte piece, the run falls back to <unk>.
	u = newTestUnigram(t, 0, true, "<unk>", 0.0, "a", -1.0, "<0xC3>", -5.0)
	if got, want := u.tokens("éa"), []string{"<unk>", "a"}; !slices.Equal(got, want) {
		t.Errorf("éa with partial byte pieces: %q, want %q", got, want)
	}
	// byte_fallback off: <unk>.
	u = newTestUnigram(t, 0, false, pieces...)
	if got, want := u.tokens("éé"), []string{"<unk>"}; !slices.Equal(got, want) {
		t.Errorf("éé without byte_fallback: %q, want %q", got, want)
	}
}

func TestUnigramJSON(t *testing.T) {
	m, err := newUnigramFromJSON([]byte(`{"type":"Unigram","unk_id":1,"vocab":[["a",-1],["<unk>",0],["a",-2]],"byte_fallback":false}`))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := m.TokenToID("a"); id != 2 {
		t.Errorf("duplicate piece a has id %d, want the last one (2) as Hugging Face", id)
	}
	if m.VocabSize() != 3 || m.IDToToken(1) != "<unk>" || m.IDToToken(3) != "" || m.IDToToken(-1) != "" {
		t.Errorf("vocab accessors are wrong")
	}
	for _, raw := range []string{
		`{"type":"Unigram","unk_id":0}`,
		`{"type":"Unigram","unk_id":0,"vocab":[]}`,
		`{"type":"Unigram","unk_id":5,"vocab":[["a",0]]}`,
		`{"type":"Unigram","unk_id":-1,"vocab":[["a",0]]}`,
		`{"type":"Unigram","vocab":[["a",0]]}`,
		`{"type":"Unigram","unk_id":0,"vocab":[["a","x"]]}`,
		`{"type":"Unigram","unk_id":0,"vocab":[[1,0]]}`,
		`{"type":"Unigram","unk_id":0,"vocab":[["a"]]}`,
		`{`,
	} {
		if _, err := newUnigramFromJSON([]byte(raw)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got error %v, want ErrFormat", raw, err)
		}
	}
}

// FuzzUnigramJSON parses arbitrary model JSON without panicking.
func FuzzUnigramJSON(f *testing.F) {
	f.Add([]byte(`{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["a",-1]],"byte_fallback":true}`), "aab")
	f.Add([]byte(`{"type":"Unigram","unk_id":0,"vocab":[["",0]]}`), "x")
	f.Fuzz(func(t *testing.T, raw []byte, word string) {
		m, err := newUnigramFromJSON(raw)
		if err != nil {
			return
		}
		for _, id := range m.Tokenize(nil, word) {
			if id < 0 || int(id) >= m.VocabSize() {
				t.Fatalf("id %d outside the %d-piece vocab", id, m.VocabSize())
			}
		}
	})
}

// FuzzUnigramXLMR segments arbitrary words with the tiny-xlmr vocabulary:
// the pieces cover the word exactly, known pieces spell their bytes, and
// every id is in the vocabulary.
func FuzzUnigramXLMR(f *testing.F) {
	u := loadXLMRPipeline(f, refs.ModelDir(f, "tiny-xlmr")).model
	for _, s := range []string{"▁Hello", "▁中文分词测试", "▁\xff\xfe", "▁a▁b", "ｈ", "🇫🇷👩‍🔬", "▁" + strings.Repeat("ab", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, word string) {
		ids := u.Tokenize(nil, word)
		for _, id := range ids {
			if id < 0 || int(id) >= u.VocabSize() {
				t.Fatalf("id %d outside the vocab", id)
			}
		}
		if word == "" {
			if len(ids) != 0 {
				t.Fatalf("empty word gave %v", ids)
			}
			return
		}
		spans := u.segment(new(unigramLattice), word)
		end := len(word)
		for i := 0; i < len(spans); i += 3 {
			s, e, id := spans[i], spans[i+1], int32(spans[i+2])
			if e != end || s >= e {
				t.Fatalf("span [%d,%d) does not end where the next begins (%d)", s, e, end)
			}
			if id != u.unkID && u.IDToToken(id) != word[s:e] {
				t.Fatalf("piece %d %q spells %q", id, u.IDToToken(id), word[s:e])
			}
			end = s
		}
		if end != 0 {
			t.Fatalf("spans start at %d, not 0", end)
		}
		if utf8.ValidString(word) && !slices.Contains(ids, u.unkID) {
			var b strings.Builder
			for _, id := range ids {
				b.WriteString(u.IDToToken(id))
			}
			if b.String() != word {
				t.Fatalf("pieces spell %q, want %q", b.String(), word)
			}
		}
	})
}

// TestUnigramConcurrent tokenizes the same words from several goroutines, so
// that the race detector sees the shared cache and scratch pool, and checks
// that cached and fresh results agree.
func TestUnigramConcurrent(t *testing.T) {
	p := loadXLMRPipeline(t, refs.ModelDir(t, "tiny-xlmr"))
	rows := refs.Read[refs.Row](t, "tiny-xlmr.parquet")
	var words []string
	for _, r := range rows[:min(len(rows), 300)] {
		if r.Text != nil {
			words = p.pre.PreTokenize(words, p.norms[0].Normalize(*r.Text))
		}
	}
	fresh, err := newUnigram(p.model.pieces, int64(p.model.unkID), p.model.byteFallback)
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]int32, len(words))
	for i, w := range words {
		want[i] = fresh.Tokenize(nil, w)
	}
	const workers = 4
	errs := make(chan error, workers)
	for g := 0; g < workers; g++ {
		go func() {
			var ids []int32
			for round := 0; round < 2; round++ {
				for i, w := range words {
					ids = p.model.Tokenize(ids[:0], w)
					if !slices.Equal(ids, want[i]) {
						errs <- fmt.Errorf("word %q: got %v, want %v", w, ids, want[i])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < workers; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
