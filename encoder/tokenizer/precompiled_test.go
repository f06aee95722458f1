package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// buildCharsmap compiles rules (key → replacement) into a
// precompiled_charsmap blob the way SentencePiece lays it out: a darts-clone
// double array whose leaves hold offsets into a pool of NUL-terminated
// replacements. It lets the tests state the exact rules a case depends on.
func buildCharsmap(tb testing.TB, rules map[string]string) []byte {
	tb.Helper()
	type node struct {
		children map[byte]*node
		value    int // pool offset of the replacement, or -1
		pos      int
	}
	newNode := func() *node { return &node{children: map[byte]*node{}, value: -1} }
	root := newNode()
	var pool []byte
	keys := make([]string, 0, len(rules))
	for k := range rules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := root
		for i := 0; i < len(k); i++ {
			c, ok := n.children[k[i]]
			if !ok {
				c = newNode()
				n.children[k[i]] = c
			}
			n = c
		}
		n.value = len(pool)
		pool = append(append(pool, rules[k]...), 0)
	}
	var units []uint32
	var used []bool
	take := func(p int) {
		for p >= len(units) {
			units = append(units, 0)
			used = append(used, false)
		}
		used[p] = true
	}
	free := func(p int) bool { return p >= len(used) || !used[p] }
	take(0)
	queue := []*node{root}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		labels := make([]int, 0, len(n.children))
		for c := range n.children {
			labels = append(labels, int(c))
		}
		sort.Ints(labels)
		off := 1
		for ; ; off++ {
			ok := free(n.pos ^ off)
			for _, c := range labels {
				ok = ok && free(n.pos^off^c)
			}
			if ok {
				break
			}
		}
		if off >= 1<<21 {
			tb.Fatal("charsmap offset does not fit a unit")
		}
		units[n.pos] |= uint32(off) << 10
		if n.value >= 0 {
			units[n.pos] |= 1 << 8
			take(n.pos ^ off)
			units[n.pos^off] = uint32(n.value) | 1<<31
		}
		for _, c := range labels {
			child := n.children[byte(c)]
			child.pos = n.pos ^ off ^ c
			take(child.pos)
			units[child.pos] = uint32(c)
			queue = append(queue, child)
		}
	}
	blob := binary.LittleEndian.AppendUint32(nil, uint32(4*len(units)))
	for _, u := range units {
		blob = binary.LittleEndian.AppendUint32(blob, u)
	}
	return append(blob, pool...)
}

func mustPrecompiled(tb testing.TB, rules map[string]string) *precompiled {
	tb.Helper()
	p, err := newPrecompiled(buildCharsmap(tb, rules))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestPrecompiledSemantics pins the Hugging Face behaviours that differ from
// a plain longest-match rewrite.
func TestPrecompiledSemantics(t *testing.T) {
	p := mustPrecompiled(t, map[string]string{
		"a":        "X",
		"ab":       "Y",
		"e\u0301":  "É",
		"\u0301":   "",
		"\r":       " ",
		"ﬁ":        "fi",
		"\u00a0":   " ",
		"g\u0308q": "never",
	})
	cases := []struct{ in, want, why string }{
		{"", "", "empty input"},
		{"plum", "plum", "unmatched characters pass through"},
		{"ab", "Xb", "a and b are separate clusters, so the key ab never applies"},
		{"a\u0301", "X", "a short cluster is replaced whole by its shortest matching key"},
		{"e\u0301", "É", "a cluster that is a key"},
		{"x\u0301", "x", "no key begins the cluster: character by character"},
		{"a\u0301\u0301\u0301", "X", "a cluster of 6 bytes or more goes character by character"},
		{"\r\n", " ", "CR LF is one cluster, replaced whole through the key CR"},
		{"\n\r", "\n ", "LF CR is two clusters"},
		{"ﬁ\u00a0ﬁ", "fi fi", "multi-byte keys"},
		{"a\x00a", "X\x00X", "NUL is kept and ends no lookup early"},
		{"\xffa", "\uFFFDX", "invalid UTF-8 becomes U+FFFD"},
	}
	for _, c := range cases {
		if got := p.Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q (%s)", c.in, got, c.want, c.why)
		}
	}
}

// TestPrecompiledXLMR checks well-known NFKC rewrites of the charsmap shipped
// with tiny-xlmr (SentencePiece's nmt_nfkc).
func TestPrecompiledXLMR(t *testing.T) {
	p := xlmrPrecompiled(t)
	for in, want := range map[string]string{
		"ｈｅｌｌｏ":   "hello",
		"ﬁ":       "fi",
		"①":       "1",
		"Ⅻ":       "XII",
		"\u00a0":  " ",
		"\r\n":    " ",
		"abc":     "abc",
		"e\u0300": "\u00e8",
	} {
		if got := p.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func xlmrCharsmap(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(refs.ModelDir(tb, "tiny-xlmr"), "tokenizer.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Normalizer struct {
			Normalizers []struct {
				Type     string `json:"type"`
				Charsmap string `json:"precompiled_charsmap"`
			} `json:"normalizers"`
		} `json:"normalizer"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		tb.Fatal(err)
	}
	for _, n := range f.Normalizer.Normalizers {
		if n.Type == "Precompiled" {
			blob, err := base64.StdEncoding.DecodeString(n.Charsmap)
			if err != nil {
				tb.Fatal(err)
			}
			return blob
		}
	}
	tb.Fatal("tiny-xlmr has no Precompiled normalizer")
	return nil
}

func xlmrPrecompiled(tb testing.TB) *precompiled {
	tb.Helper()
	p, err := newPrecompiled(xlmrCharsmap(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestPrecompiledCorrupt feeds broken blobs and expects errors that are
// ErrFormat and say what is wrong.
func TestPrecompiledCorrupt(t *testing.T) {
	good := buildCharsmap(t, map[string]string{"a": "X", "é": "e"})
	patch := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	trieLen := int(binary.LittleEndian.Uint32(good))
	cases := map[string][]byte{
		"empty":             nil,
		"short header":      {1, 0, 0},
		"trie past the end": patch(func(b []byte) []byte { binary.LittleEndian.PutUint32(b, uint32(len(b))); return b }),
		"empty trie":        patch(func(b []byte) []byte { binary.LittleEndian.PutUint32(b, 0); return b }),
		"pool not UTF-8":    append(append([]byte(nil), good...), 0xff),
		"truncated pool": patch(func(b []byte) []byte {
			// Leaves point past a pool cut to one byte.
			return b[:4+trieLen+1]
		}),
		"offset splits a character": patch(func(b []byte) []byte {
			// Pool "X\0e\0" becomes "€\0": the leaf of "a" (0) is still
			// fine, the one of "é" (2) now lands mid-character.
			pool := b[4+trieLen:]
			copy(pool, "€")
			return b
		}),
	}
	for name, blob := range cases {
		p, err := newPrecompiled(blob)
		if err == nil {
			t.Errorf("%s: accepted (%v)", name, p != nil)
			continue
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: error %v is not ErrFormat", name, err)
		}
	}
	for name, raw := range map[string]string{
		"not base64":       `{"type":"Precompiled","precompiled_charsmap":"%%%"}`,
		"missing charsmap": `{"type":"Precompiled"}`,
		"null charsmap":    `{"type":"Precompiled","precompiled_charsmap":null}`,
		"wrong type":       `{"type":"Precompiled","precompiled_charsmap":3}`,
	} {
		if _, err := newPrecompiledFromJSON([]byte(raw)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got error %v, want ErrFormat", name, err)
		}
	}
}

// TestGraphemeClusters checks the segmentation rules Precompiled relies on.
func TestGraphemeClusters(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"ab", []string{"a", "b"}},
		{"\r\n\n", []string{"\r\n", "\n"}},
		{"e\u0301\u0302x", []string{"e\u0301\u0302", "x"}},
		{"\u0301a", []string{"\u0301", "a"}},
		{"a\u200db", []string{"a\u200d", "b"}},
		{"👩\u200d🔬!", []string{"👩\u200d🔬", "!"}},
		{"👍🏽x", []string{"👍🏽", "x"}},
		{"🇫🇷🇩🇪🇮", []string{"🇫🇷", "🇩🇪", "🇮"}},
		{"\u1100\u1161\u11a8\u1100", []string{"\u1100\u1161\u11a8", "\u1100"}},
		{"\uac00\u11a8a", []string{"\uac00\u11a8", "a"}},
		{"\u0600a", []string{"\u0600a"}},
		{"क\u093f", []string{"क\u093f"}},
		{"a\u0903", []string{"a\u0903"}},
		{"\x01\u0301", []string{"\x01", "\u0301"}},
		{"\u00ad\u00ad", []string{"\u00ad", "\u00ad"}},
	}
	for _, c := range cases {
		var got []string
		for s := c.in; len(s) > 0; {
			n := nextGraphemeLen(s)
			got = append(got, s[:n])
			s = s[n:]
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: clusters %q, want %q", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: clusters %q, want %q", c.in, got, c.want)
				break
			}
		}
	}
}

// FuzzPrecompiledCharsmap parses arbitrary blobs: a blob is either rejected
// with an error or normalizes any text to valid UTF-8 without panicking.
func FuzzPrecompiledCharsmap(f *testing.F) {
	f.Add(buildCharsmap(f, map[string]string{"a": "X", "ab": "Y", "\u0301": "", "e\u0301": "É"}), "ab a\u0301 e\u0301")
	f.Add(buildCharsmap(f, map[string]string{"": "x", "\x00": "y"}), "\x00")
	f.Add([]byte{8, 0, 0, 0, 0, 4, 0, 0, 0xff, 0xff, 0xff, 0xff}, "abc")
	f.Add([]byte{4, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, "\xff\xfe")
	f.Fuzz(func(t *testing.T, blob []byte, text string) {
		p, err := newPrecompiled(blob)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		if out := p.Normalize(text); !utf8.ValidString(out) {
			t.Fatalf("Normalize(%q) = %q is not valid UTF-8", text, out)
		}
	})
}

// FuzzPrecompiledXLMR normalizes arbitrary text with the real XLM-R charsmap.
func FuzzPrecompiledXLMR(f *testing.F) {
	p := xlmrPrecompiled(f)
	for _, s := range []string{"", "Héllo wörld", "\r\n\t", "👩\u200d🔬🇫🇷", "ｈｅｌｌｏ①", "\xff\x00a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out := p.Normalize(text)
		if !utf8.ValidString(out) {
			t.Fatalf("Normalize(%q) = %q is not valid UTF-8", text, out)
		}
		if want := p.normalizeByClusters(text); out != want {
			t.Fatalf("Normalize(%q) = %q, but cluster by cluster gives %q", text, out, want)
		}
		// The charsmap is idempotent on what it produces for plain ASCII.
		if isPrintableASCII(text) && out != text {
			t.Fatalf("Normalize(%q) = %q changed printable ASCII", text, out)
		}
	})
}

// normalizeByClusters is Normalize without its ASCII fast path: the plain
// statement of the Hugging Face algorithm, to check the fast path against.
func (p *precompiled) normalizeByClusters(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for len(s) > 0 {
		n := nextGraphemeLen(s)
		g := s[:n]
		s = s[n:]
		if r, ok := p.lookup(g); ok && len(g) < 6 {
			b.WriteString(r)
			continue
		}
		for _, c := range g {
			if r, ok := p.lookup(string(c)); ok {
				b.WriteString(r)
			} else {
				b.WriteRune(c)
			}
		}
	}
	return b.String()
}

// TestPrecompiledFastPath compares Normalize with normalizeByClusters over
// the reference corpus.
func TestPrecompiledFastPath(t *testing.T) {
	p := xlmrPrecompiled(t)
	for i, r := range refs.Read[refs.Row](t, "tiny-xlmr.parquet") {
		if r.Text == nil {
			continue
		}
		if got, want := p.Normalize(*r.Text), p.normalizeByClusters(*r.Text); got != want {
			t.Errorf("row %d: Normalize = %q, cluster by cluster %q", i, got, want)
		}
	}
	for _, s := range []string{"a\r\nb", "\r\n", "x\r", "a\u0301", "ab\u0301\r\r\n\u0301"} {
		if got, want := p.Normalize(s), p.normalizeByClusters(s); got != want {
			t.Errorf("Normalize(%q) = %q, cluster by cluster %q", s, got, want)
		}
	}
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
