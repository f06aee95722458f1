package tokenizer

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMetaspace(t *testing.T) {
	mk := func(scheme metaspacePrepend, split bool) *metaspace {
		m, err := newMetaspace("▁", scheme, split)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		m       *metaspace
		in      string
		atStart bool
		want    []string
	}{
		{mk(prependAlways, true), "Hello world", true, []string{"▁Hello", "▁world"}},
		{mk(prependAlways, true), "Hello world", false, []string{"▁Hello", "▁world"}},
		{mk(prependAlways, true), " Hello  world ", true, []string{"▁Hello", "▁", "▁world", "▁"}},
		{mk(prependAlways, true), "▁already", true, []string{"▁already"}},
		{mk(prependAlways, true), "", true, nil},
		{mk(prependAlways, true), " ", true, []string{"▁"}},
		{mk(prependAlways, false), "a b", true, []string{"▁a▁b"}},
		{mk(prependFirst, true), "a b", true, []string{"▁a", "▁b"}},
		{mk(prependFirst, true), "a b", false, []string{"a", "▁b"}},
		{mk(prependNever, true), "a b", true, []string{"a", "▁b"}},
		{mk(prependNever, true), "ünï cödé", true, []string{"ünï", "▁cödé"}},
		{mk(prependNever, false), "a  b", true, []string{"a▁▁b"}},
	}
	for _, c := range cases {
		got := c.m.PreTokenizeSegment(nil, c.in, c.atStart)
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v.PreTokenizeSegment(%q, %v) = %q, want %q", *c.m, c.in, c.atStart, got, c.want)
		}
	}
	// A custom replacement character works the same way.
	m, err := newMetaspace("_", prependAlways, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.PreTokenize([]string{"kept"}, "a b"); !slices.Equal(got, []string{"kept", "_a", "_b"}) {
		t.Errorf("PreTokenize with _ = %q", got)
	}
}

func TestMetaspaceJSON(t *testing.T) {
	good := map[string]metaspace{
		`{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`:            {"▁", prependAlways, true},
		`{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`:            {"▁", prependFirst, false},
		`{"type":"Metaspace","replacement":"▁","prepend_scheme":"never"}`:                          {"▁", prependNever, true},
		`{"type":"Metaspace","replacement":"▁","add_prefix_space":true}`:                           {"▁", prependAlways, true},
		`{"type":"Metaspace","replacement":"▁","add_prefix_space":false}`:                          {"▁", prependNever, true},
		`{"type":"Metaspace","replacement":"▁","add_prefix_space":false,"prepend_scheme":"never"}`: {"▁", prependNever, true},
	}
	for raw, want := range good {
		p, err := newMetaspaceFromJSON([]byte(raw))
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if got := *p.(*metaspace); got != want {
			t.Errorf("%s: got %+v, want %+v", raw, got, want)
		}
	}
	for _, raw := range []string{
		`{"type":"Metaspace"}`,
		`{"type":"Metaspace","replacement":""}`,
		`{"type":"Metaspace","replacement":"ab"}`,
		`{"type":"Metaspace","replacement":"▁","prepend_scheme":"sometimes"}`,
		`{"type":"Metaspace","replacement":"▁","add_prefix_space":false,"prepend_scheme":"always"}`,
		`{"type":"Metaspace","replacement":"▁","split":"yes"}`,
		`[`,
	} {
		if _, err := newMetaspaceFromJSON([]byte(raw)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got error %v, want ErrFormat", raw, err)
		}
	}
}

// FuzzMetaspace checks the invariants of every scheme: the words put back
// together are the input with spaces replaced (and one ▁ prepended when the
// scheme asks), no word is empty, and every word after the first starts with
// the replacement when splitting.
func FuzzMetaspace(f *testing.F) {
	for _, s := range []string{"", " ", "Hello  world ", "▁x▁", "\xff ▁", "ab"} {
		f.Add(s, uint8(0), true, true)
	}
	f.Add("a b", uint8(1), false, true)
	f.Add("a b", uint8(2), true, false)
	f.Fuzz(func(t *testing.T, s string, scheme uint8, atStart, split bool) {
		m, err := newMetaspace("▁", metaspacePrepend(scheme%3), split)
		if err != nil {
			t.Fatal(err)
		}
		words := m.PreTokenizeSegment(nil, s, atStart)
		if s == "" {
			if len(words) != 0 {
				t.Fatalf("empty input gave %q", words)
			}
			return
		}
		want := strings.ReplaceAll(s, " ", "▁")
		prepend := m.prepend == prependAlways || (m.prepend == prependFirst && atStart)
		if prepend && !strings.HasPrefix(want, "▁") {
			want = "▁" + want
		}
		if got := strings.Join(words, ""); got != want {
			t.Fatalf("words %q join to %q, want %q", words, got, want)
		}
		if !split && len(words) != 1 {
			t.Fatalf("split=false gave %d words", len(words))
		}
		for i, w := range words {
			if w == "" {
				t.Fatalf("word %d is empty in %q", i, words)
			}
			if split && i > 0 && !strings.HasPrefix(w, "▁") {
				t.Fatalf("word %d %q does not start with ▁", i, w)
			}
			if split && strings.Contains(w[1:], "▁") {
				t.Fatalf("word %d %q holds a second ▁", i, w)
			}
		}
	})
}

// FuzzMetaspaceJSON decodes arbitrary component JSON: it is rejected with
// ErrFormat or yields a pre-tokenizer that handles any text.
func FuzzMetaspaceJSON(f *testing.F) {
	f.Add([]byte(`{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`), "a b")
	f.Add([]byte(`{"type":"Metaspace","replacement":"x","add_prefix_space":false}`), "axb")
	f.Fuzz(func(t *testing.T, raw []byte, text string) {
		p, err := newMetaspaceFromJSON(raw)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		for _, w := range p.PreTokenize(nil, text) {
			if w == "" {
				t.Fatal("empty word")
			}
		}
	})
}
