package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"
)

// byteChars maps each byte to the printable character that stands for it
// in byte-level vocabularies (GPT-2's bytes_to_unicode): printable Latin-1
// bytes stand for themselves, the others for U+0100 onwards in byte order.
var byteChars = func() (tab [256]string) {
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			tab[b] = string(rune(b))
		} else {
			tab[b] = string(rune(256 + n))
			n++
		}
	}
	return tab
}()

// byteLevel is the "ByteLevel" pre-tokenizer: it optionally prefixes a
// space, splits with GPT-2's pattern and spells each word's bytes with
// byteChars.
type byteLevel struct {
	addPrefixSpace bool
	useRegex       bool
}

func (p byteLevel) PreTokenize(dst []string, s string) []string {
	if p.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if s == "" {
		return dst
	}
	if !p.useRegex {
		return append(dst, byteLevelString(s))
	}
	// The words are cut first and then spelt all at once, so that the
	// whole segment costs one allocation rather than one per word.
	base := len(dst)
	for i := 0; i < len(s); {
		n := gpt2Match(s, i)
		dst = append(dst, s[i:i+n])
		i += n
	}
	mapped := byteLevelString(s)
	off := 0
	for k, w := range dst[base:] {
		n := 0
		for i := 0; i < len(w); i++ {
			n += len(byteChars[w[i]])
		}
		dst[base+k] = mapped[off : off+n]
		off += n
	}
	return dst
}

// byteLevelString spells the bytes of s with byteChars.
func byteLevelString(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		n += len(byteChars[s[i]])
	}
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(s); i++ {
		b.WriteString(byteChars[s[i]])
	}
	return b.String()
}

// gpt2Match returns the byte length (at least 1) of the match at s[i:] of
// GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// whose alternatives are tried in order. Go's regexp has no look-ahead, so
// the pattern is written out by hand; invalid UTF-8 bytes count as
// characters of the "other" class, one byte each.
func gpt2Match(s string, i int) int {
	if s[i] == '\'' && i+1 < len(s) {
		switch rest := s[i+1:]; {
		case strings.HasPrefix(rest, "re"), strings.HasPrefix(rest, "ve"), strings.HasPrefix(rest, "ll"):
			return 3
		case rest[0] == 's', rest[0] == 't', rest[0] == 'm', rest[0] == 'd':
			return 2
		}
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	j := i
	if r == ' ' {
		j = i + 1
	}
	if j < len(s) {
		r2, _ := utf8.DecodeRuneInString(s[j:])
		var class func(rune) bool
		switch {
		case unicode.IsLetter(r2):
			class = unicode.IsLetter
		case unicode.IsNumber(r2):
			class = unicode.IsNumber
		case !unicode.IsSpace(r2):
			class = isGPT2Other
		}
		if class != nil {
			for j < len(s) {
				r3, w3 := utf8.DecodeRuneInString(s[j:])
				if !class(r3) {
					break
				}
				j += w3
			}
			return j - i
		}
	}
	if unicode.IsSpace(r) {
		end, last, count := i, i, 0
		for end < len(s) {
			r3, w3 := utf8.DecodeRuneInString(s[end:])
			if !unicode.IsSpace(r3) {
				break
			}
			last = end
			end += w3
			count++
		}
		if end < len(s) && count > 1 {
			// \s+(?!\S): leave the last space to prefix the next word.
			return last - i
		}
		return end - i
	}
	return w
}

func isGPT2Other(r rune) bool {
	return !unicode.IsSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r)
}

func init() {
	preTokenizerCtors["ByteLevel"] = func(raw []byte) (PreTokenizer, error) {
		cfg := struct {
			AddPrefixSpace bool `json:"add_prefix_space"`
			UseRegex       bool `json:"use_regex"`
		}{AddPrefixSpace: true, UseRegex: true}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		return byteLevel{addPrefixSpace: cfg.AddPrefixSpace, useRegex: cfg.UseRegex}, nil
	}
}
