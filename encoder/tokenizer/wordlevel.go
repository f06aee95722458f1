package tokenizer

import (
	"encoding/json"
)

// wordLevel is the WordLevel model: each word is one vocabulary entry, or
// the unknown token (dropped when that is not in the vocabulary).
type wordLevel struct {
	vocabTable
	unk int32
}

func (m *wordLevel) Tokenize(dst []int32, word string) []int32 {
	if id, ok := m.vocab[word]; ok {
		return append(dst, id)
	}
	if m.unk >= 0 {
		return append(dst, m.unk)
	}
	return dst
}

func init() {
	modelCtors["WordLevel"] = func(raw []byte) (Model, error) {
		var cfg struct {
			Vocab map[string]int32 `json:"vocab"`
			Unk   string           `json:"unk_token"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		if cfg.Vocab == nil {
			return nil, errNoField("WordLevel model", "vocab")
		}
		vt, err := newVocabTable(cfg.Vocab)
		if err != nil {
			return nil, err
		}
		m := &wordLevel{vocabTable: vt, unk: -1}
		if id, ok := cfg.Vocab[cfg.Unk]; ok {
			m.unk = id
		}
		return m, nil
	}
}
