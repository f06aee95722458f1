package tokenizer

import (
	"errors"
	"testing"
)

func TestReplace(t *testing.T) {
	cases := []struct {
		pattern  string
		isRegex  bool
		content  string
		in, want string
	}{
		{" {2,}", true, " ", "a  b     c d", "a b c d"},
		{" {2,}", true, " ", "", ""},
		{"''", false, "\"", "This is a ''test''", "This is a \"test\""},
		{"aa", false, "b", "aaa", "ba"},
		{"", false, "-", "ab", "-a-b-"},
		{"", false, "-", "", ""},
		{`\s+`, true, "_", "a\u3000\u00a0b\tc", "a_b_c"},
		{`\d`, true, "#", "1٣x", "##x"},
		{`\w+`, true, "w", "héllo, мир!", "w, w!"},
		{`[\s,]+`, true, " ", "a,\u2003b", "a b"},
		{`\S+`, true, "x", "ab cd", "x x"},
		{`[]a]`, true, "-", "]a", "--"},
		{`[[:digit:]]`, true, "d", "a1", "ad"},
		{`x*`, true, "-", "abc", "-a-b-c-"},
		{`^a`, true, "b", "a\na", "b\nb"},
		{`a$`, true, "b", "a\na", "b\nb"},
		{`a.b`, true, "-", "a\nb axb", "a\nb -"},
		{`(?m)a.b`, true, "-", "a\nb", "-"},
		{`(?i:A)b`, true, "-", "ab", "-"},
		{`(?i)Ab`, true, "-", "aB", "-"},
	}
	for _, c := range cases {
		r, err := newReplace(c.pattern, c.isRegex, c.content)
		if err != nil {
			t.Errorf("newReplace(%q): %v", c.pattern, err)
			continue
		}
		if got := r.Normalize(c.in); got != c.want {
			t.Errorf("Replace(%q→%q).Normalize(%q) = %q, want %q", c.pattern, c.content, c.in, got, c.want)
		}
	}
}

func TestReplaceJSON(t *testing.T) {
	r, err := newReplaceFromJSON([]byte(`{"type":"Replace","pattern":{"Regex":" {2,}"},"content":" "}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Normalize("a   b"); got != "a b" {
		t.Errorf("got %q", got)
	}
	r, err = newReplaceFromJSON([]byte(`{"type":"Replace","pattern":{"String":"."},"content":"!"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Normalize("a.b"); got != "a!b" {
		t.Errorf("String pattern is not literal: got %q", got)
	}
	for _, raw := range []string{
		`{"type":"Replace","content":" "}`,
		`{"type":"Replace","pattern":{"Regex":"a"}}`,
		`{"type":"Replace","pattern":{},"content":""}`,
		`{"type":"Replace","pattern":{"Regex":"a","String":"b"},"content":""}`,
		`{"type":"Replace","pattern":"a","content":""}`,
		`nope`,
	} {
		if _, err := newReplaceFromJSON([]byte(raw)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got error %v, want ErrFormat", raw, err)
		}
	}
	for _, re := range []string{`(?<=a)b`, `a(?=b)`, `[^\S]`, `[a-z&&[^aeiou]]`, `(`, `(?x) a`, `a\Z`} {
		if _, err := newReplace(re, true, ""); !errors.Is(err, ErrUnsupported) {
			t.Errorf("regex %q: got error %v, want ErrUnsupported", re, err)
		}
	}
}

// FuzzReplaceRegex translates arbitrary Oniguruma patterns: each is either
// rejected or compiles and normalizes any text without panicking.
func FuzzReplaceRegex(f *testing.F) {
	for _, p := range []string{` {2,}`, `\s+`, `[\w\d]`, `[^]a\]]`, `[[:alpha:]]`, `\\s`, `\`, `[`} {
		f.Add(p, "a  b\tc")
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		r, err := newReplace(pattern, true, "·")
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is not ErrUnsupported", err)
			}
			return
		}
		_ = r.Normalize(text)
	})
}

// FuzzReplaceJSON decodes arbitrary component JSON: it is rejected with
// ErrFormat or ErrUnsupported, or yields a normalizer that handles any text.
func FuzzReplaceJSON(f *testing.F) {
	f.Add([]byte(`{"type":"Replace","pattern":{"Regex":" {2,}"},"content":" "}`), "a  b")
	f.Add([]byte(`{"type":"Replace","pattern":{"String":"''"},"content":"\""}`), "''x''")
	f.Fuzz(func(t *testing.T, raw []byte, text string) {
		n, err := newReplaceFromJSON(raw)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is neither ErrFormat nor ErrUnsupported", err)
			}
			return
		}
		_ = n.Normalize(text)
	})
}
