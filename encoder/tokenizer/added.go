package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of the "added_tokens" table of tokenizer.json:
// a token matched in the text before the model sees it.
type addedToken struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// span is a piece of a string: [start, end) and the added token's id, or -1
// for text that is not an added token.
type span struct {
	start, end int
	id         int32
}

// addedMatcher finds added tokens in text the way Hugging Face tokenizers
// does: leftmost-longest matching of the contents (an Aho-Corasick automaton
// there; the tables are small enough here for a scan indexed by first byte),
// then the single_word, lstrip and rstrip rules.
type addedMatcher struct {
	toks    []addedToken // Content holds the pattern to match
	byFirst [256][]int32 // indexes into toks, longest pattern first
}

func newAddedMatcher(toks []addedToken) *addedMatcher {
	m := &addedMatcher{}
	for _, t := range toks {
		if t.Content == "" {
			continue
		}
		i := int32(len(m.toks))
		m.toks = append(m.toks, t)
		b := t.Content[0]
		lst := append(m.byFirst[b], i)
		// Insertion keeps the list ordered by decreasing length; among
		// equal lengths the first declared wins, which can only happen for
		// duplicate contents.
		for j := len(lst) - 1; j > 0 && len(m.toks[lst[j-1]].Content) < len(m.toks[lst[j]].Content); j-- {
			lst[j-1], lst[j] = lst[j], lst[j-1]
		}
		m.byFirst[b] = lst
	}
	return m
}

// empty reports whether the matcher can never match.
func (m *addedMatcher) empty() bool { return m == nil || len(m.toks) == 0 }

// longestAt returns the index of the longest pattern that starts at s[i:],
// or -1.
func (m *addedMatcher) longestAt(s string, i int) int32 {
	for _, k := range m.byFirst[s[i]] {
		if strings.HasPrefix(s[i:], m.toks[k].Content) {
			return k
		}
	}
	return -1
}

// split appends to dst the pieces of s: added tokens (with the whitespace
// their lstrip/rstrip flags swallow) and the text between them. Empty text
// pieces are left out.
func (m *addedMatcher) split(dst []span, s string) []span {
	if m.empty() {
		if s != "" {
			dst = append(dst, span{0, len(s), -1})
		}
		return dst
	}
	prev := 0 // end of the last accepted token
	for i := 0; i < len(s); {
		k := m.longestAt(s, i)
		if k < 0 {
			i++
			continue
		}
		t := &m.toks[k]
		start, stop := i, i+len(t.Content)
		// The automaton resumes after the match whether or not the match is
		// then rejected by single_word.
		i = stop
		if t.SingleWord {
			if (start > 0 && endsWithWord(s[:start])) || (stop < len(s) && startsWithWord(s[stop:])) {
				continue
			}
		}
		if t.LStrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), prev)
		}
		if t.RStrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if start < prev {
			// A previous rstrip swallowed the start of this match.
			start = prev
		}
		if prev < start {
			dst = append(dst, span{prev, start, -1})
		}
		dst = append(dst, span{start, stop, t.ID})
		prev = stop
		if i < stop {
			i = stop
		}
	}
	if prev < len(s) {
		dst = append(dst, span{prev, len(s), -1})
	}
	return dst
}

// isWordChar is the \w class of Rust's regex crate: alphabetic, marks,
// decimal digits, connector punctuation and the joiners.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Pc, r) || r == 0x200C || r == 0x200D
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordChar(r)
}
