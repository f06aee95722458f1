package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

func init() {
	normalizerCtors["Replace"] = newReplaceFromJSON
}

// replaceNormalizer is the Replace normalizer of Hugging Face tokenizers: it
// replaces every non-overlapping match of a literal string or a regular
// expression, scanning left to right, by a fixed content. It is immutable and
// safe for concurrent use.
type replaceNormalizer struct {
	literal string         // the String pattern; used when re is nil
	re      *regexp.Regexp // the Regex pattern, translated to Go syntax
	content string
}

// replaceJSON is the tokenizer.json shape of a Replace normalizer; the
// pattern is an object with exactly one of String and Regex.
type replaceJSON struct {
	Pattern *struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content *string `json:"content"`
}

func newReplaceFromJSON(raw []byte) (Normalizer, error) {
	var j replaceJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("%w: decoding Replace normalizer: %v", ErrFormat, err)
	}
	if j.Pattern == nil {
		return nil, fmt.Errorf("%w: Replace normalizer has no pattern", ErrFormat)
	}
	if j.Content == nil {
		return nil, fmt.Errorf("%w: Replace normalizer has no content", ErrFormat)
	}
	var (
		r   *replaceNormalizer
		err error
	)
	switch {
	case j.Pattern.String != nil && j.Pattern.Regex != nil:
		return nil, fmt.Errorf("%w: Replace pattern has both String and Regex", ErrFormat)
	case j.Pattern.String != nil:
		r, err = newReplace(*j.Pattern.String, false, *j.Content)
	case j.Pattern.Regex != nil:
		r, err = newReplace(*j.Pattern.Regex, true, *j.Content)
	default:
		return nil, fmt.Errorf("%w: Replace pattern has neither String nor Regex", ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// newReplace returns a Replace normalizer for pattern (a regular expression
// in Oniguruma syntax when isRegex is set, else a literal string) and
// content. A regular expression Go cannot express, such as one with
// look-around, is an ErrUnsupported error.
func newReplace(pattern string, isRegex bool, content string) (*replaceNormalizer, error) {
	if !isRegex {
		if pattern == "" {
			// An empty literal would match between every pair of
			// characters; Hugging Face compiles it to a regular expression
			// that does exactly that.
			return &replaceNormalizer{re: regexp.MustCompile(``), content: content}, nil
		}
		return &replaceNormalizer{literal: pattern, content: content}, nil
	}
	goPat, err := onigToGoRegexp(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: Replace regex %q: %v", ErrUnsupported, pattern, err)
	}
	re, err := regexp.Compile(goPat)
	if err != nil {
		return nil, fmt.Errorf("%w: Replace regex %q does not compile as a Go regexp: %v", ErrUnsupported, pattern, err)
	}
	return &replaceNormalizer{re: re, content: content}, nil
}

// Normalize replaces the matches in s. Go's ReplaceAll skips an empty match
// right after a previous match, as Oniguruma's iteration in Hugging Face
// does; an empty input is left alone, as there.
func (r *replaceNormalizer) Normalize(s string) string {
	if s == "" {
		return s
	}
	if r.re == nil {
		return strings.ReplaceAll(s, r.literal, r.content)
	}
	return r.re.ReplaceAllLiteralString(s, r.content)
}

// Unicode-aware spellings of the Perl classes. Oniguruma, which Hugging Face
// uses, gives \s, \d and \w their Unicode meaning on UTF-8 text, while Go's
// are ASCII-only.
const (
	onigSpace = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`
	onigDigit = `\p{Nd}`
	onigWord  = `\p{L}\p{M}\p{Nd}\p{Pc}`
)

// onigToGoRegexp rewrites an Oniguruma pattern (its default Ruby-like
// syntax, as Hugging Face compiles it) into Go syntax with the same meaning:
// the class escapes \s \S \d \D \w \W become their Unicode sets; ^ and $
// match at line boundaries, as they always do in Ruby syntax, so the result
// starts with (?m); and the inline option m, which lets . match a newline in
// Ruby syntax, becomes Go's s. Negated classes inside a bracket expression
// have no Go spelling and are reported as errors.
func onigToGoRegexp(pattern string) (string, error) {
	var b strings.Builder
	b.WriteString("(?m)")
	inClass := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern):
			e := pattern[i+1]
			i++
			var set string
			neg := false
			switch e {
			case 's', 'S':
				set, neg = onigSpace, e == 'S'
			case 'd', 'D':
				set, neg = onigDigit, e == 'D'
			case 'w', 'W':
				set, neg = onigWord, e == 'W'
			default:
				b.WriteByte(c)
				b.WriteByte(e)
				continue
			}
			switch {
			case inClass && neg:
				return "", fmt.Errorf(`\%c inside a bracket expression is not supported`, e)
			case inClass:
				b.WriteString(set)
			case neg:
				b.WriteString("[^" + set + "]")
			default:
				b.WriteString("[" + set + "]")
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal member.
			if i+1 < len(pattern) && pattern[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(pattern) && pattern[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case c == '[' && inClass:
			if strings.HasPrefix(pattern[i:], "[:") {
				// A POSIX class such as [:alpha:] stays as it is.
				end := strings.Index(pattern[i+2:], ":]")
				if end >= 0 {
					b.WriteString(pattern[i : i+2+end+2])
					i += 2 + end + 1
					continue
				}
			}
			return "", errors.New("nested bracket expressions are not supported")
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		case c == '(' && !inClass && strings.HasPrefix(pattern[i:], "(?"):
			// Inline options such as (?m) or (?i-m:…): Ruby's m is Go's s.
			j := i + 2
			for j < len(pattern) && strings.IndexByte("imx-", pattern[j]) >= 0 {
				j++
			}
			if j > i+2 && j < len(pattern) && (pattern[j] == ')' || pattern[j] == ':') {
				b.WriteString("(?")
				b.WriteString(strings.ReplaceAll(pattern[i+2:j], "m", "s"))
				i = j - 1
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
