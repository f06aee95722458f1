package tokenizer

import (
	"encoding/json"
	"fmt"
)

// sequenceNormalizer applies its normalizers one after the other, as the
// "Sequence" normalizer of Hugging Face tokenizers does.
type sequenceNormalizer []Normalizer

func (q sequenceNormalizer) Normalize(s string) string {
	for _, n := range q {
		s = n.Normalize(s)
	}
	return s
}

// sequencePreTokenizer applies its pre-tokenizers one after the other, each
// one cutting every word left by the previous one further.
type sequencePreTokenizer []PreTokenizer

func (q sequencePreTokenizer) PreTokenize(dst []string, s string) []string {
	return q.PreTokenizeSegment(dst, s, true)
}

// PreTokenizeSegment passes atStart on to the stages that care, for the
// first word only: only it begins where the segment does.
func (q sequencePreTokenizer) PreTokenizeSegment(dst []string, s string, atStart bool) []string {
	base := len(dst)
	dst = append(dst, s)
	var next []string
	for _, p := range q {
		next = next[:0]
		sp, segmented := p.(segmentPreTokenizer)
		for i, w := range dst[base:] {
			if segmented {
				next = sp.PreTokenizeSegment(next, w, atStart && i == 0)
			} else {
				next = p.PreTokenize(next, w)
			}
		}
		dst = append(dst[:base], next...)
	}
	return dst
}

func init() {
	normalizerCtors["Sequence"] = func(raw []byte) (Normalizer, error) {
		var cfg struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		q := make(sequenceNormalizer, 0, len(cfg.Normalizers))
		for i, r := range cfg.Normalizers {
			n, err := newNormalizer(r)
			if err != nil {
				return nil, fmt.Errorf("normalizers[%d]: %w", i, err)
			}
			if n != nil {
				q = append(q, n)
			}
		}
		return q, nil
	}
	preTokenizerCtors["Sequence"] = func(raw []byte) (PreTokenizer, error) {
		var cfg struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		q := make(sequencePreTokenizer, 0, len(cfg.PreTokenizers))
		for i, r := range cfg.PreTokenizers {
			p, err := newPreTokenizer(r)
			if err != nil {
				return nil, fmt.Errorf("pretokenizers[%d]: %w", i, err)
			}
			if p != nil {
				q = append(q, p)
			}
		}
		return q, nil
	}
}
