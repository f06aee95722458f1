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

// buildSequence builds each component of the list field of raw, the
// tokenizer.json object of a Sequence, with build, naming the entry
// (field[i]) in an error. Components built as nil do nothing and are left
// out.
func buildSequence[T any](raw []byte, field string, build func([]byte) (T, error)) ([]T, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, formatErr(err)
	}
	var items []json.RawMessage
	if v, ok := obj[field]; ok {
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, formatErr(err)
		}
	}
	q := make([]T, 0, len(items))
	for i, r := range items {
		v, err := build(r)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		if any(v) != nil {
			q = append(q, v)
		}
	}
	return q, nil
}

func init() {
	normalizerCtors["Sequence"] = func(raw []byte) (Normalizer, error) {
		q, err := buildSequence(raw, "normalizers", newNormalizer)
		if err != nil {
			return nil, err
		}
		return sequenceNormalizer(q), nil
	}
	preTokenizerCtors["Sequence"] = func(raw []byte) (PreTokenizer, error) {
		q, err := buildSequence(raw, "pretokenizers", newPreTokenizer)
		if err != nil {
			return nil, err
		}
		return sequencePreTokenizer(q), nil
	}
}
