package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testWordPieceJSON is a small BERT-like tokenizer.json. "<mask>" strips
// the spaces on its left, "FOO" is a normalised single-word token (matched
// as "foo" after lower-casing).
const testWordPieceJSON = `{
  "added_tokens": [
    {"id": 0, "content": "[UNK]", "special": true},
    {"id": 1, "content": "[CLS]", "special": true},
    {"id": 2, "content": "[SEP]", "special": true},
    {"id": 3, "content": "[PAD]", "special": true},
    {"id": 4, "content": "<mask>", "lstrip": true, "special": true},
    {"id": 12, "content": "FOO", "normalized": true, "single_word": true}
  ],
  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 8,
    "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "<mask>": 4, "hello": 5, "world": 6, "a": 7, "##b": 8, "b": 9, "foo": 10, ",": 11, "e": 13, "中": 14}},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
    "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}}}
}`

// testBPEJSON is a small byte-level BPE tokenizer.json with the newer pair
// form of merges and a template that appends an end-of-text token.
const testBPEJSON = `{
  "added_tokens": [{"id": 0, "content": "<|endoftext|>", "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "ignore_merges": false,
    "vocab": {"<|endoftext|>": 0, "h": 1, "e": 2, "l": 3, "o": 4, "Ġ": 5, "he": 6, "ll": 7, "hell": 8, "hello": 9, "Ġh": 10, "w": 11},
    "merges": [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "h"]]},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
    "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}}
}`

func mustParse(t testing.TB, js string) *Tokenizer {
	t.Helper()
	tk, err := parseTokenizerJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestEncodeWordPiece(t *testing.T) {
	tk := mustParse(t, testWordPieceJSON)
	for _, c := range []struct {
		text   string
		maxLen int
		want   []int32
		trunc  bool
	}{
		{"Hello, WORLD", 0, []int32{1, 5, 11, 6, 2}, false},
		{"ab", 0, []int32{1, 7, 8, 2}, false},
		{"abx", 0, []int32{1, 0, 2}, false},                   // one missing piece makes the word unknown
		{"abbbbbbbb", 0, []int32{1, 0, 2}, false},             // 9 characters > max_input_chars_per_word
		{"hello[SEP]world", 0, []int32{1, 5, 2, 6, 2}, false}, // special tokens match in the raw text
		{"hello[sep]", 0, []int32{1, 5, 0, 0, 0, 2}, false},   // but only as written
		{"hello <mask>", 0, []int32{1, 5, 4, 2}, false},
		{"Foo a", 0, []int32{1, 12, 7, 2}, false},       // normalised added token
		{"xFoo", 0, []int32{1, 0, 2}, false},            // single_word: not inside a word
		{"é中e", 0, []int32{1, 13, 14, 13, 2}, false},    // accents stripped, CJK isolated
		{"a\x00\u200bb", 0, []int32{1, 7, 8, 2}, false}, // controls and format characters removed
		{"a\u0378", 0, []int32{1, 0, 2}, false},         // but unassigned code points kept
		{"hello world hello", 4, []int32{1, 5, 6, 2}, true},
		{"hello world", 4, []int32{1, 5, 6, 2}, false},
		{"hello world", 2, []int32{1, 2}, true},
		{"hello world", 1, []int32{1, 2}, true}, // special tokens are kept
		{"", 0, []int32{1, 2}, false},
	} {
		got, trunc := tk.EncodeTo([]int32{99}, c.text, c.maxLen)
		if got[0] != 99 || !slices.Equal(got[1:], c.want) || trunc != c.trunc {
			t.Errorf("EncodeTo(%q, %d) = %v, %v; want [99] + %v, %v", c.text, c.maxLen, got, trunc, c.want, c.trunc)
		}
	}
	if tk.Kind() != "WordPiece" || tk.PadID() != 3 || tk.VocabSize() != 15 || tk.IDToToken(12) != "FOO" || tk.IDToToken(8) != "##b" || tk.IDToToken(99) != "" {
		t.Errorf("kind %s pad %d size %d tokens %q %q %q", tk.Kind(), tk.PadID(), tk.VocabSize(), tk.IDToToken(12), tk.IDToToken(8), tk.IDToToken(99))
	}
}

// TestEncodeLeft checks truncation on the left: the text's last ids are
// kept, inside the template's special tokens, whether the template frames
// the text (WordPiece: [CLS] … [SEP]) or only ends it (BPE: … <|endoftext|>).
func TestEncodeLeft(t *testing.T) {
	wp, bpe := mustParse(t, testWordPieceJSON), mustParse(t, testBPEJSON)
	for _, c := range []struct {
		tk     *Tokenizer
		text   string
		maxLen int
		want   []int32
		trunc  bool
	}{
		{wp, "hello world hello", 4, []int32{1, 6, 5, 2}, true},
		{wp, "hello, world ab", 5, []int32{1, 6, 7, 8, 2}, true}, // a word's pieces may be split, as on the right
		{wp, "hello world", 4, []int32{1, 5, 6, 2}, false},
		{wp, "hello world", 0, []int32{1, 5, 6, 2}, false},
		{wp, "hello world", 2, []int32{1, 2}, true},
		{bpe, "hello hello", 2, []int32{9, 0}, true}, // "hello", "Ġ", "hello" keeps its last id
		{bpe, "hello hello", 3, []int32{5, 9, 0}, true},
		{bpe, "hello", 3, []int32{9, 0}, false},
	} {
		got, trunc := c.tk.EncodeLeftTo([]int32{99}, c.text, c.maxLen)
		if got[0] != 99 || !slices.Equal(got[1:], c.want) || trunc != c.trunc {
			t.Errorf("EncodeLeftTo(%q, %d) = %v, %v; want [99] + %v, %v", c.text, c.maxLen, got, trunc, c.want, c.trunc)
		}
		// Cutting on the left keeps exactly the ids that cutting on the
		// right drops from the untruncated sequence.
		full, _ := c.tk.EncodeTo(nil, c.text, 0)
		if !c.trunc && !slices.Equal(got[1:], full) {
			t.Errorf("EncodeLeftTo(%q, %d) = %v untruncated, EncodeTo gives %v", c.text, c.maxLen, got[1:], full)
		}
	}
}

func TestEncodeBPE(t *testing.T) {
	tk := mustParse(t, testBPEJSON)
	for _, c := range []struct {
		text string
		want []int32
	}{
		{"hello", []int32{9, 0}},
		{"hello hello", []int32{9, 5, 9, 0}}, // (h, e) outranks (Ġ, h)
		{" hh", []int32{10, 1, 0}},
		{"hel<|endoftext|>lo", []int32{6, 3, 0, 3, 4, 0}},
		{"hex", []int32{6, 0}}, // x is outside the vocabulary and there is no unk: dropped
	} {
		got, _ := tk.EncodeTo(nil, c.text, 0)
		if !slices.Equal(got, c.want) {
			t.Errorf("EncodeTo(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	got, trunc := tk.EncodeTo(nil, "hello hello", 3)
	if !slices.Equal(got, []int32{9, 5, 0}) || !trunc {
		t.Errorf("truncated to 3: %v %v", got, trunc)
	}
	if tk.Kind() != "BPE" || tk.PadID() != 0 {
		t.Errorf("kind %s pad %d", tk.Kind(), tk.PadID())
	}
}

func TestBPEMergeForms(t *testing.T) {
	old := strings.Replace(testBPEJSON, `[["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "h"]]`,
		`["h e", "l l", "he ll", "hell o", "Ġ h"]`, 1)
	a, b := mustParse(t, testBPEJSON), mustParse(t, old)
	for _, s := range []string{"hello hello", "hhheeelll", "ohell"} {
		x, _ := a.EncodeTo(nil, s, 0)
		y, _ := b.EncodeTo(nil, s, 0)
		if !slices.Equal(x, y) {
			t.Errorf("%q: pair merges give %v, string merges %v", s, x, y)
		}
	}
}

func TestAddedSplit(t *testing.T) {
	mk := func(a addedToken) *addedMatcher { a.ID = 7; return newAddedMatcher([]addedToken{a}) }
	for _, c := range []struct {
		tok  addedToken
		text string
		want []span
	}{
		{addedToken{Content: "<m>"}, "a <m>  b", []span{{0, 2, -1}, {2, 5, 7}, {5, 8, -1}}},
		{addedToken{Content: "<m>", LStrip: true}, "a <m>  b", []span{{0, 1, -1}, {1, 5, 7}, {5, 8, -1}}},
		{addedToken{Content: "<m>", RStrip: true}, "a <m>  b", []span{{0, 2, -1}, {2, 7, 7}, {7, 8, -1}}},
		{addedToken{Content: "<m>", LStrip: true, RStrip: true}, "<m> <m>", []span{{0, 4, 7}, {4, 7, 7}}},
		{addedToken{Content: "ab", SingleWord: true}, "ab xab ab_ ab!", []span{{0, 2, 7}, {2, 11, -1}, {11, 13, 7}, {13, 14, -1}}},
		{addedToken{Content: "ab"}, "", nil},
	} {
		got := mk(c.tok).split(nil, c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v in %q: got %v, want %v", c.tok, c.text, got, c.want)
		}
	}
	// Leftmost-longest: the longer of two tokens starting at the same place wins.
	m := newAddedMatcher([]addedToken{{ID: 1, Content: "<a>"}, {ID: 2, Content: "<a><b>"}})
	if got, want := m.split(nil, "x<a><b><a>"), []span{{0, 1, -1}, {1, 7, 2}, {7, 10, 1}}; !slices.Equal(got, want) {
		t.Errorf("longest match: got %v, want %v", got, want)
	}
}

func TestGPT2Split(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"I'm  here\n\nok ", []string{"I", "'m", " ", " here", "\n", "\n", "ok", " "}},
		{"abc123!!? x", []string{"abc", "123", "!!?", " x"}},
		{" 's don't 'LL", []string{" '", "s", " don", "'t", " '", "LL"}},
		{"\t\tx   ", []string{"\t", "\t", "x", "   "}},
		{"é\u00a0z", []string{"é", "\u00a0", "z"}},
		{"٣4 ½", []string{"٣4", " ½"}},
	} {
		var got []string
		for i := 0; i < len(c.in); {
			n := gpt2Match(c.in, i)
			got = append(got, c.in[i:i+n])
			i += n
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("split(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestBertPreTokenizer(t *testing.T) {
	got := bertPreTokenizer{}.PreTokenize(nil, "Hi,  there$ a-b 『x』\u3000y")
	want := []string{"Hi", ",", "there", "$", "a", "-", "b", "『", "x", "』", "y"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name, json string
		err        error
		mention    string
	}{
		{"unknown normalizer", strings.Replace(testWordPieceJSON, `"type": "BertNormalizer"`, `"type": "Frobnicate"`, 1), ErrUnsupported, "BertNormalizer"},
		{"unknown model", strings.Replace(testWordPieceJSON, `"type": "WordPiece"`, `"type": "Magic"`, 1), ErrUnsupported, "WordPiece"},
		{"unknown pre-tokenizer", strings.Replace(testBPEJSON, `"type": "ByteLevel"`, `"type": "Nope"`, 1), ErrUnsupported, "ByteLevel"},
		{"not json", "{", ErrFormat, ""},
		{"no model", `{"added_tokens": []}`, ErrFormat, "no model"},
		{"merge outside vocab", strings.Replace(testBPEJSON, `["Ġ", "h"]`, `["Ġ", "q"]`, 1), ErrFormat, "merge 4"},
		{"empty WordPiece vocabulary", strings.Replace(testWordPieceJSON, `"vocab": {"[UNK]": 0,`, `"vocab": {}, "x": {"[UNK]": 0,`, 1), ErrFormat, "vocabulary is empty"},
		{"unk_token outside the vocabulary", strings.Replace(testWordPieceJSON, `"unk_token": "[UNK]"`, `"unk_token": "[NOPE]"`, 1), ErrFormat, "[NOPE]"},
		{"dropout", strings.Replace(testBPEJSON, `"dropout": null`, `"dropout": 0.1`, 1), ErrUnsupported, "dropout"},
		{"template id outside vocab", strings.Replace(testBPEJSON, `"ids": [0]`, `"ids": [1000]`, 1), ErrFormat, "1000"},
		{"template token undeclared", strings.Replace(testBPEJSON, `"special_tokens": {"<|endoftext|>"`, `"special_tokens": {"<|x|>"`, 1), ErrFormat, "<|endoftext|>"},
	} {
		_, err := parseTokenizerJSON([]byte(c.json))
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: got %v, want %v mentioning %q", c.name, err, c.err, c.mention)
		}
	}
	for name, vocab := range map[string]string{"empty vocab.txt": "", "vocab.txt without [UNK]": "[CLS]\n[SEP]\nhello\n"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(vocab), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "vocab.txt") {
			t.Errorf("%s: got %v, want ErrFormat naming vocab.txt", name, err)
		}
	}
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := FromFile("/nonexistent/tokenizer.json"); err == nil || !strings.Contains(err.Error(), "/nonexistent/tokenizer.json") {
		t.Errorf("missing file: %v", err)
	}
}

// TestEncodeOffsets checks offsets on the small WordPiece tokenizer (bytes
// of the raw text, accents and added tokens included; none for [CLS] and
// [SEP]), and that a tokenizer whose stages cannot be traced back (byte-level
// BPE) gives its ids with no offsets rather than wrong ones.
func TestEncodeOffsets(t *testing.T) {
	wp := mustParse(t, testWordPieceJSON)
	const text = "Héllo <mask> ab"
	ids, offs, known := wp.EncodeOffsets(text, 0)
	want := []Offset{{}, {0, 6}, {6, 13}, {14, 15}, {15, 16}, {}}
	if !slices.Equal(ids, []int32{1, 5, 4, 7, 8, 2}) || !slices.Equal(offs, want) ||
		!slices.Equal(known, []bool{false, true, true, true, true, false}) {
		t.Fatalf("EncodeOffsets(%q) = %v %v %v, want offsets %v", text, ids, offs, known, want)
	}
	bpe := mustParse(t, testBPEJSON)
	ids, offs, _ = bpe.EncodeOffsets("hello hello", 0)
	if full, _ := bpe.EncodeTo(nil, "hello hello", 0); !slices.Equal(ids, full) || offs != nil {
		t.Fatalf("BPE: %v %v, want %v and no offsets", ids, offs, full)
	}
}
