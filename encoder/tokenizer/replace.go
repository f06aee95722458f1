package tokenizer

import (
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
	const what = "Replace normalizer"
	j, err := decodeConfig[replaceJSON](raw, what)
	if err != nil {
		return nil, err
	}
	if j.Pattern == nil {
		return nil, errNoField(what, "pattern")
	}
	if j.Content == nil {
		return nil, errNoField(what, "content")
	}
	var r *replaceNormalizer
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
	re, err := compileOnigRegexp("Replace regex", pattern)
	if err != nil {
		return nil, err
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
