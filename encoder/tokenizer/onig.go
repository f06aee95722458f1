package tokenizer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

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
// have no Go spelling and are reported as errors. The Replace normalizer and
// the Split pre-tokenizer both compile their patterns through it.
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

// compileOnigRegexp compiles the Oniguruma pattern of the component part
// what (such as "Replace regex") through onigToGoRegexp. A pattern Go cannot
// express is an ErrUnsupported error quoting it.
func compileOnigRegexp(what, pattern string) (*regexp.Regexp, error) {
	goPat, err := onigToGoRegexp(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrUnsupported, what, pattern, err)
	}
	re, err := regexp.Compile(goPat)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q does not compile as a Go regexp: %v", ErrUnsupported, what, pattern, err)
	}
	return re, nil
}
