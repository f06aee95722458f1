package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// splitBehavior says what becomes of the delimiters found by a split, as
// SplitDelimiterBehavior does in Hugging Face tokenizers.
type splitBehavior uint8

const (
	splitRemoved splitBehavior = iota
	splitIsolated
	splitMergedWithPrevious
	splitMergedWithNext
	splitContiguous
)

var splitBehaviors = map[string]splitBehavior{
	"Removed": splitRemoved, "Isolated": splitIsolated, "MergedWithPrevious": splitMergedWithPrevious,
	"MergedWithNext": splitMergedWithNext, "Contiguous": splitContiguous,
}

// segment is a piece of a string and whether it is a delimiter.
type segment struct {
	start, end int
	match      bool
}

// matcher finds the delimiters of s, appending to dst segments that cover
// s from start to end in order.
type matcher interface {
	segments(dst []segment, s string) []segment
}

// splitter is a pre-tokenizer that cuts at the delimiters its matcher
// finds and treats them according to its behaviour; invert swaps the roles
// of delimiters and the text between them.
type splitter struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (p *splitter) PreTokenize(dst []string, s string) []string {
	if s == "" {
		return dst
	}
	segs := p.m.segments(nil, s)
	if p.invert {
		for i := range segs {
			segs[i].match = !segs[i].match
		}
	}
	switch p.behavior {
	case splitRemoved:
		out := segs[:0]
		for _, g := range segs {
			if !g.match {
				out = append(out, g)
			}
		}
		segs = out
	case splitMergedWithPrevious:
		out := segs[:0]
		prev := false
		for _, g := range segs {
			if g.match && !prev && len(out) > 0 {
				out[len(out)-1].end = g.end
			} else {
				out = append(out, g)
			}
			prev = g.match
		}
		segs = out
	case splitMergedWithNext:
		// Walk backwards: a delimiter joins the piece that follows it.
		var rev []segment
		prev := false
		for i := len(segs) - 1; i >= 0; i-- {
			g := segs[i]
			if g.match && !prev && len(rev) > 0 {
				rev[len(rev)-1].start = g.start
			} else {
				rev = append(rev, g)
			}
			prev = g.match
		}
		segs = segs[:0]
		for i := len(rev) - 1; i >= 0; i-- {
			segs = append(segs, rev[i])
		}
	case splitContiguous:
		out := segs[:0]
		for i, g := range segs {
			if i > 0 && g.match && segs[i-1].match && len(out) > 0 {
				out[len(out)-1].end = g.end
			} else {
				out = append(out, g)
			}
		}
		segs = out
	}
	for _, g := range segs {
		if g.end > g.start {
			dst = append(dst, s[g.start:g.end])
		}
	}
	return dst
}

// runeMatcher makes each character for which is returns true a delimiter
// of its own.
type runeMatcher func(rune) bool

func (is runeMatcher) segments(dst []segment, s string) []segment {
	prev := 0
	for i, r := range s {
		if is(r) {
			if prev < i {
				dst = append(dst, segment{prev, i, false})
			}
			n := utf8.RuneLen(r)
			if n < 0 || (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) {
				n = 1 // an invalid byte
			}
			dst = append(dst, segment{i, i + n, true})
			prev = i + n
		}
	}
	if prev < len(s) {
		dst = append(dst, segment{prev, len(s), false})
	}
	return dst
}

// literalMatcher makes each occurrence of a string a delimiter.
type literalMatcher string

func (lit literalMatcher) segments(dst []segment, s string) []segment {
	prev := 0
	if lit == "" {
		return append(dst, segment{0, len(s), false})
	}
	for {
		i := strings.Index(s[prev:], string(lit))
		if i < 0 {
			break
		}
		if i > 0 {
			dst = append(dst, segment{prev, prev + i, false})
		}
		dst = append(dst, segment{prev + i, prev + i + len(lit), true})
		prev += i + len(lit)
	}
	if prev < len(s) {
		dst = append(dst, segment{prev, len(s), false})
	}
	return dst
}

// gpt2Matcher makes each match of GPT-2's pattern a delimiter, with the
// hand-written gpt2Match.
type gpt2Matcher struct{}

func (gpt2Matcher) segments(dst []segment, s string) []segment {
	for i := 0; i < len(s); {
		n := gpt2Match(s, i)
		dst = append(dst, segment{i, i + n, true})
		i += n
	}
	return dst
}

// regexMatcher makes each match of a regular expression a delimiter. The
// pattern is written for Oniguruma; Go's regexp lacks look-ahead, so the
// one look-ahead that tokenizer patterns use, "\s+(?!\S)" as the
// alternative before a final "\s+", is captured as plain white space and
// shortened by hand to leave the last space to the following word.
type regexMatcher struct {
	re      *regexp.Regexp
	wsGroup int // submatch index of the look-ahead alternative, or -1
}

func (m *regexMatcher) segments(dst []segment, s string) []segment {
	prev := 0
	for pos := 0; pos <= len(s); {
		loc := m.re.FindStringSubmatchIndex(s[pos:])
		if loc == nil {
			break
		}
		start, end := pos+loc[0], pos+loc[1]
		if m.wsGroup >= 0 && loc[2*m.wsGroup] >= 0 && end < len(s) {
			// \s+(?!\S) before a non-space: give back the last space, unless
			// the run is a single space, which the final \s+ takes.
			if _, n := utf8.DecodeLastRuneInString(s[start:end]); end-n > start {
				end -= n
			}
		}
		if end == start {
			// An empty match delimits nothing; step over one character.
			_, n := utf8.DecodeRuneInString(s[start:])
			pos = start + max(n, 1)
			continue
		}
		if prev < start {
			dst = append(dst, segment{prev, start, false})
		}
		dst = append(dst, segment{start, end, true})
		prev, pos = end, end
	}
	if prev < len(s) {
		dst = append(dst, segment{prev, len(s), false})
	}
	return dst
}

// gpt2Pattern is the pre-tokenization pattern of GPT-2, RoBERTa and the
// ByteLevel pre-tokenizer.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// newRegexMatcher compiles an Oniguruma pattern of a tokenizer.json.
func newRegexMatcher(pattern string) (matcher, error) {
	if pattern == gpt2Pattern {
		return gpt2Matcher{}, nil
	}
	return compileOnig(pattern)
}

// compileOnig translates an Oniguruma pattern into a regexMatcher.
func compileOnig(pattern string) (*regexMatcher, error) {
	const la = `\s+(?!\S)`
	if i := strings.Index(pattern, la); i >= 0 {
		rest := pattern[i+len(la):]
		if !strings.HasPrefix(rest, `|\s+`) || (i > 0 && pattern[i-1] != '|') || strings.Contains(rest, "(?") {
			return nil, fmt.Errorf("%w: look-ahead in pattern %q (only \\s+(?!\\S)|\\s+ is supported)", ErrUnsupported, pattern)
		}
		pattern = pattern[:i] + `(?P<lookahead>\s+)` + rest
	}
	if strings.Contains(pattern, "(?=") || strings.Contains(pattern, "(?!") || strings.Contains(pattern, "(?<") {
		return nil, fmt.Errorf("%w: look-around in pattern %q", ErrUnsupported, pattern)
	}
	re, err := compileOnigRegexp("pattern", pattern)
	if err != nil {
		return nil, err
	}
	// wsGroup is -1 when there is no look-ahead group.
	return &regexMatcher{re: re, wsGroup: re.SubexpIndex("lookahead")}, nil
}

// isOnigWord is Oniguruma's Unicode \w.
func isOnigWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r)
}

// wordsMatcher makes each run of \w characters and each run of characters
// that are neither \w nor white space a delimiter, as the regex
// \w+|[^\w\s]+ of the Whitespace pre-tokenizer does.
type wordsMatcher struct{}

func (wordsMatcher) segments(dst []segment, s string) []segment {
	class := func(r rune) int {
		switch {
		case isOnigWord(r):
			return 1
		case unicode.IsSpace(r):
			return 0
		}
		return 2
	}
	prev, runStart, runClass := 0, 0, 0
	flush := func(end int) {
		if runClass != 0 {
			if prev < runStart {
				dst = append(dst, segment{prev, runStart, false})
			}
			dst = append(dst, segment{runStart, end, true})
			prev = end
		}
	}
	for i, r := range s {
		if c := class(r); c != runClass {
			flush(i)
			runStart, runClass = i, c
		}
	}
	flush(len(s))
	if prev < len(s) {
		dst = append(dst, segment{prev, len(s), false})
	}
	return dst
}

func init() {
	preTokenizerCtors["Split"] = func(raw []byte) (PreTokenizer, error) {
		var cfg struct {
			Pattern struct {
				String *string `json:"String"`
				Regex  *string `json:"Regex"`
			} `json:"pattern"`
			Behavior string `json:"behavior"`
			Invert   bool   `json:"invert"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		b, ok := splitBehaviors[cfg.Behavior]
		if !ok {
			return nil, formatErr(fmt.Errorf("split behavior %q", cfg.Behavior))
		}
		var m matcher
		switch {
		case cfg.Pattern.String != nil:
			m = literalMatcher(*cfg.Pattern.String)
		case cfg.Pattern.Regex != nil:
			var err error
			if m, err = newRegexMatcher(*cfg.Pattern.Regex); err != nil {
				return nil, err
			}
		default:
			return nil, formatErr(errors.New("split pattern is neither String nor Regex"))
		}
		return &splitter{m: m, behavior: b, invert: cfg.Invert}, nil
	}
	preTokenizerCtors["Whitespace"] = func([]byte) (PreTokenizer, error) {
		return &splitter{m: wordsMatcher{}, behavior: splitRemoved, invert: true}, nil
	}
	preTokenizerCtors["WhitespaceSplit"] = func([]byte) (PreTokenizer, error) {
		return &splitter{m: runeMatcher(unicode.IsSpace), behavior: splitRemoved}, nil
	}
	preTokenizerCtors["Punctuation"] = func(raw []byte) (PreTokenizer, error) {
		cfg := struct {
			Behavior string `json:"behavior"`
		}{"Isolated"}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		b, ok := splitBehaviors[cfg.Behavior]
		if !ok {
			return nil, formatErr(fmt.Errorf("split behavior %q", cfg.Behavior))
		}
		return &splitter{m: runeMatcher(isBertPunct), behavior: b}, nil
	}
	preTokenizerCtors["Digits"] = func(raw []byte) (PreTokenizer, error) {
		var cfg struct {
			Individual bool `json:"individual_digits"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		b := splitContiguous
		if cfg.Individual {
			b = splitIsolated
		}
		return &splitter{m: runeMatcher(unicode.IsNumber), behavior: b}, nil
	}
}
