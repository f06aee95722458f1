package tokenizer

import (
	"slices"
	"testing"
)

// qwen2Pattern is the pre-tokenization pattern of Qwen2/Qwen3 tokenizers.
const qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

func splitWith(t *testing.T, js string, s string) []string {
	t.Helper()
	p, err := newPreTokenizer([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return p.PreTokenize(nil, s)
}

func TestSplitPreTokenizers(t *testing.T) {
	for _, c := range []struct {
		js, in string
		want   []string
	}{
		{`{"type": "Split", "pattern": {"Regex": "` + jsonEscape(qwen2Pattern) + `"}, "behavior": "Isolated", "invert": false}`,
			"I'M  here\n\n ok 12€ x\u3000 y", []string{"I", "'M", " ", " here", "\n\n", " ok", " ", "1", "2", "€", " x", "\u3000", " y"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "Removed", "invert": false}`, "a-b--c", []string{"a", "b", "c"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithPrevious", "invert": false}`, "a-b--c-", []string{"a-", "b-", "-", "c-"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithNext", "invert": false}`, "-a-b--c", []string{"-a", "-b", "-", "-c"}},
		{`{"type": "Split", "pattern": {"String": "-"}, "behavior": "Contiguous", "invert": false}`, "a-b--c", []string{"a", "-", "b", "--", "c"}},
		{`{"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Removed", "invert": true}`, "ab12c٣4", []string{"12", "٣4"}},
		// A POSIX class does not close the bracket expression around it, and
		// \s after it keeps its Unicode meaning (U+00A0 is white space).
		{`{"type": "Split", "pattern": {"Regex": "[[:punct:]\\s]+"}, "behavior": "Isolated", "invert": false}`, "a,\u00a0b", []string{"a", ",\u00a0", "b"}},
		{`{"type": "Whitespace"}`, "Hello, wörld!! a_b", []string{"Hello", ",", "wörld", "!!", "a_b"}},
		{`{"type": "WhitespaceSplit"}`, " Hello,\u00a0wörld  ", []string{"Hello,", "wörld"}},
		{`{"type": "Punctuation", "behavior": "Isolated"}`, "a,,b$", []string{"a", ",", ",", "b", "$"}},
		{`{"type": "Digits", "individual_digits": false}`, "a123b4", []string{"a", "123", "b", "4"}},
		{`{"type": "Digits", "individual_digits": true}`, "a123", []string{"a", "1", "2", "3"}},
		{`{"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": true}]}`, "x12 y", []string{"x", "1", "2", "y"}},
	} {
		if got := splitWith(t, c.js, c.in); !slices.Equal(got, c.want) {
			t.Errorf("%s on %q: got %q, want %q", c.js, c.in, got, c.want)
		}
	}
}

func jsonEscape(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '"' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func TestNormalizers(t *testing.T) {
	for _, c := range []struct{ js, in, want string }{
		{`{"type": "NFC"}`, "e\u0301", "é"},
		{`{"type": "NFKD"}`, "ﬁé", "fie\u0301"},
		{`{"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}, {"type": "Lowercase"}]}`, "ÉCOLE İ", "ecole i"},
		{`{"type": "Strip", "strip_left": true, "strip_right": false}`, " \t a ", "a "},
		{`{"type": "Prepend", "prepend": "▁"}`, "a", "▁a"},
		{`{"type": "Prepend", "prepend": "▁"}`, "", ""},
	} {
		n, err := newNormalizer([]byte(c.js))
		if err != nil {
			t.Fatal(err)
		}
		if got := n.Normalize(c.in); got != c.want {
			t.Errorf("%s on %q: got %q, want %q", c.js, c.in, got, c.want)
		}
	}
}

// FuzzRegexGPT2 checks the translated Oniguruma pattern (with its emulated
// look-ahead) against the hand-written GPT-2 splitter: two independent
// implementations of the same pattern must cut every input alike.
func FuzzRegexGPT2(f *testing.F) {
	for _, s := range []string{"I'm  here\n\nok ", "\t\tx   ", "a'b'llc 's", "1 ½ \u3000\u3000z", " \n x"} {
		f.Add(s)
	}
	re, err := compileOnig(gpt2Pattern)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := re.segments(nil, s)
		want := gpt2Matcher{}.segments(nil, s)
		if !slices.Equal(got, want) {
			t.Fatalf("%q: regexp %v, hand-written %v", s, got, want)
		}
	})
}

func TestWordLevel(t *testing.T) {
	tk := mustParse(t, `{"model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {"<unk>": 0, "hello": 1, "world": 2}},
		"pre_tokenizer": {"type": "Whitespace"}, "normalizer": {"type": "Lowercase"}}`)
	if got, _ := tk.EncodeTo(nil, "Hello big WORLD!", 0); !slices.Equal(got, []int32{1, 0, 2, 0}) {
		t.Errorf("got %v", got)
	}
	if tk.Kind() != "WordLevel" || tk.VocabSize() != 3 || tk.IDToToken(2) != "world" {
		t.Errorf("kind %s size %d", tk.Kind(), tk.VocabSize())
	}
}
