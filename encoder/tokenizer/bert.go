package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// bertNormalizer is the "BertNormalizer" of Hugging Face tokenizers: it
// removes control characters and maps white space to a space (clean_text),
// puts spaces around CJK ideographs (handle_chinese_chars), removes accents
// after an NFD decomposition (strip_accents, which follows lowercase when
// null) and lower-cases.
type bertNormalizer struct {
	cleanText    bool
	chineseChars bool
	stripAccents bool
	lowercase    bool
}

func newBertNormalizer(cleanText, chineseChars bool, stripAccents *bool, lowercase bool) *bertNormalizer {
	strip := lowercase
	if stripAccents != nil {
		strip = *stripAccents
	}
	return &bertNormalizer{cleanText: cleanText, chineseChars: chineseChars, stripAccents: strip, lowercase: lowercase}
}

func (n *bertNormalizer) Normalize(s string) string {
	if n.unchanged(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for _, r := range s {
		if n.cleanText {
			if r == 0 || r == utf8.RuneError || isBertControl(r) {
				continue
			}
			if isBertWhitespace(r) {
				r = ' '
			}
		}
		if n.chineseChars && isChineseChar(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
			continue
		}
		b.WriteRune(r)
	}
	s = b.String()
	if n.stripAccents {
		s = stripMarks(norm.NFD.String(s))
	}
	if n.lowercase {
		s = lowerFull(s)
	}
	return s
}

// unchanged reports whether s is plain ASCII text that the normalizer would
// return as is, which spares the common case every allocation.
func (n *bertNormalizer) unchanged(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return false
		case c < 0x20 || c == 0x7f:
			// Controls are removed and \t \n \r become spaces.
			if n.cleanText {
				return false
			}
		case c >= 'A' && c <= 'Z':
			if n.lowercase {
				return false
			}
		}
	}
	return true
}

// stripMarks removes the non-spacing marks (category Mn) of s.
func stripMarks(s string) string {
	i := strings.IndexFunc(s, isMn)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if !isMn(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isMn(r rune) bool { return r >= 0x300 && unicode.Is(unicode.Mn, r) }

// lowerFull lower-cases s character by character with the full (not simple)
// Unicode mapping, as Rust's char::to_lowercase does: the only unconditional
// multi-character lower-case mapping is that of U+0130.
func lowerFull(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == 0x130 {
			b.WriteString("i\u0307")
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// isBertWhitespace is the whitespace test of BertNormalizer: \t, \n, \r and
// the Unicode White_Space characters.
func isBertWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || unicode.IsSpace(r)
}

// isBertControl is the control test of BertNormalizer: the characters of
// categories Cc, Cf and Co except \t, \n and \r. Hugging Face takes the
// "other" test from the unicode_categories crate, which leaves out Cs and
// Cn: unassigned code points are kept (and usually become [UNK]).
func isBertControl(r rune) bool {
	if r < 0x80 {
		return (r < 0x20 || r == 0x7f) && r != '\t' && r != '\n' && r != '\r'
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// isChineseChar reports whether r is in one of the CJK ideograph blocks
// that BERT isolates.
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// bertPreTokenizer is the "BertPreTokenizer": it splits on white space
// (dropped) and isolates every punctuation character.
type bertPreTokenizer struct{}

func (bertPreTokenizer) PreTokenize(dst []string, s string) []string {
	start := -1
	for i, r := range s {
		switch {
		case unicode.IsSpace(r):
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		case isBertPunct(r):
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
			// Punctuation is valid UTF-8 (U+FFFD is a symbol), so the
			// rune's length is its length in s.
			dst = append(dst, s[i:i+utf8.RuneLen(r)])
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

// isBertPunct is BERT's punctuation test: ASCII punctuation (which includes
// symbols such as $ and ^) or any Unicode punctuation category.
func isBertPunct(r rune) bool {
	if r < 0x80 {
		return (r >= '!' && r <= '/') || (r >= ':' && r <= '@') || (r >= '[' && r <= '`') || (r >= '{' && r <= '~')
	}
	return unicode.IsPunct(r)
}

func init() {
	normalizerCtors["BertNormalizer"] = func(raw []byte) (Normalizer, error) {
		cfg := struct {
			CleanText    bool  `json:"clean_text"`
			ChineseChars bool  `json:"handle_chinese_chars"`
			StripAccents *bool `json:"strip_accents"`
			Lowercase    bool  `json:"lowercase"`
		}{CleanText: true, ChineseChars: true, Lowercase: true}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		return newBertNormalizer(cfg.CleanText, cfg.ChineseChars, cfg.StripAccents, cfg.Lowercase), nil
	}
	preTokenizerCtors["BertPreTokenizer"] = func([]byte) (PreTokenizer, error) {
		return bertPreTokenizer{}, nil
	}
}
