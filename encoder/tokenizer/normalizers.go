package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// unicodeNormalizer applies one of the four Unicode normalisation forms
// ("NFC", "NFD", "NFKC", "NFKD").
type unicodeNormalizer struct{ form norm.Form }

func (n unicodeNormalizer) Normalize(s string) string { return n.form.String(s) }

// lowercaseNormalizer is the "Lowercase" normalizer.
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) Normalize(s string) string { return lowerFull(s) }

// stripNormalizer is the "Strip" normalizer: it trims white space on the
// chosen sides.
type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) Normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// stripAccentsNormalizer is the "StripAccents" normalizer: it removes the
// combining marks, which only strips accents after an NFD or NFKD.
type stripAccentsNormalizer struct{}

func (stripAccentsNormalizer) Normalize(s string) string {
	if strings.IndexFunc(s, unicode.IsMark) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsMark(r) {
			return -1
		}
		return r
	}, s)
}

// prependNormalizer is the "Prepend" normalizer: it puts a string before
// non-empty text.
type prependNormalizer struct{ prefix string }

func (n prependNormalizer) Normalize(s string) string {
	if s == "" {
		return s
	}
	return n.prefix + s
}

func init() {
	for name, form := range map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD} {
		n := unicodeNormalizer{form}
		normalizerCtors[name] = func([]byte) (Normalizer, error) { return n, nil }
	}
	normalizerCtors["Lowercase"] = func([]byte) (Normalizer, error) { return lowercaseNormalizer{}, nil }
	normalizerCtors["StripAccents"] = func([]byte) (Normalizer, error) { return stripAccentsNormalizer{}, nil }
	normalizerCtors["Strip"] = func(raw []byte) (Normalizer, error) {
		cfg := struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}{true, true}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		return stripNormalizer{cfg.Left, cfg.Right}, nil
	}
	normalizerCtors["Prepend"] = func(raw []byte) (Normalizer, error) {
		var cfg struct {
			Prepend string `json:"prepend"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		return prependNormalizer{cfg.Prepend}, nil
	}
}
