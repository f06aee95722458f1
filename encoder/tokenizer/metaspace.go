package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

func init() {
	preTokenizerCtors["Metaspace"] = newMetaspaceFromJSON
}

// metaspacePrepend says when Metaspace puts a replacement character in
// front of a segment that does not already start with one.
type metaspacePrepend uint8

const (
	// prependAlways prepends to every segment.
	prependAlways metaspacePrepend = iota
	// prependFirst prepends only to the segment at the start of the input.
	prependFirst
	// prependNever never prepends.
	prependNever
)

// metaspace is the SentencePiece-style pre-tokenizer of Hugging Face
// tokenizers: it turns every space into the replacement character (▁ by
// default), prepends one according to its scheme, and, when split is set,
// cuts the text before every replacement character so that each word keeps
// its leading ▁. A metaspace is immutable and safe for concurrent use.
type metaspace struct {
	repl    string
	prepend metaspacePrepend
	split   bool
}

// metaspaceJSON is the tokenizer.json shape of a Metaspace pre-tokenizer.
// add_prefix_space is the legacy spelling of prepend_scheme.
type metaspaceJSON struct {
	Replacement    *string `json:"replacement"`
	PrependScheme  *string `json:"prepend_scheme"`
	Split          *bool   `json:"split"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
}

func newMetaspaceFromJSON(raw []byte) (PreTokenizer, error) {
	const what = "Metaspace pre-tokenizer"
	j, err := decodeConfig[metaspaceJSON](raw, what)
	if err != nil {
		return nil, err
	}
	if j.Replacement == nil {
		return nil, errNoField(what, "replacement")
	}
	scheme := prependAlways // the default of Hugging Face tokenizers
	if j.PrependScheme != nil {
		switch *j.PrependScheme {
		case "always":
			scheme = prependAlways
		case "first":
			scheme = prependFirst
		case "never":
			scheme = prependNever
		default:
			return nil, fmt.Errorf("%w: Metaspace prepend_scheme %q is not one of always, first, never", ErrFormat, *j.PrependScheme)
		}
	}
	if j.AddPrefixSpace != nil && !*j.AddPrefixSpace {
		if j.PrependScheme != nil && scheme != prependNever {
			return nil, fmt.Errorf("%w: Metaspace add_prefix_space false contradicts prepend_scheme %q", ErrFormat, *j.PrependScheme)
		}
		scheme = prependNever
	}
	split := true
	if j.Split != nil {
		split = *j.Split
	}
	m, err := newMetaspace(*j.Replacement, scheme, split)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// newMetaspace returns a Metaspace pre-tokenizer with the given replacement
// character, prepend scheme and split flag.
func newMetaspace(replacement string, prepend metaspacePrepend, split bool) (*metaspace, error) {
	if r, n := utf8.DecodeRuneInString(replacement); n == 0 || n != len(replacement) || r == utf8.RuneError {
		return nil, fmt.Errorf("%w: Metaspace replacement %q is not a single character", ErrFormat, replacement)
	}
	if prepend > prependNever {
		return nil, fmt.Errorf("%w: Metaspace prepend scheme %d is unknown", ErrFormat, prepend)
	}
	return &metaspace{repl: replacement, prepend: prepend, split: split}, nil
}

// PreTokenize pre-tokenizes s as the segment at the start of the input.
func (m *metaspace) PreTokenize(dst []string, s string) []string {
	return m.PreTokenizeSegment(dst, s, true)
}

// PreTokenizeSegment appends the words of s to dst. atStart says whether s
// begins at offset 0 of the original input, which the "first" prepend scheme
// needs: Hugging Face prepends only to that segment, and not to the text that
// follows an added token. An empty s yields no words, because Hugging Face
// drops empty segments before pre-tokenization.
func (m *metaspace) PreTokenizeSegment(dst []string, s string, atStart bool) []string {
	if s == "" {
		return dst
	}
	s = strings.ReplaceAll(s, " ", m.repl)
	if !strings.HasPrefix(s, m.repl) &&
		(m.prepend == prependAlways || (m.prepend == prependFirst && atStart)) {
		s = m.repl + s
	}
	if !m.split {
		return append(dst, s)
	}
	// Each replacement character opens a new word (MergedWithNext), so
	// consecutive ones give words of a single ▁.
	for len(s) > 0 {
		i := strings.Index(s[1:], m.repl)
		if i < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:i+1])
		s = s[i+1:]
	}
	return dst
}
