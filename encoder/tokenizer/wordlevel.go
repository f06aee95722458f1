package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
)

// wordLevel is the WordLevel model: each word is one vocabulary entry, or
// the unknown token (dropped when that is not in the vocabulary).
type wordLevel struct {
	vocab   map[string]int32
	idToTok []string
	unk     int32
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

func (m *wordLevel) TokenToID(tok string) (int32, bool) {
	id, ok := m.vocab[tok]
	return id, ok
}

func (m *wordLevel) IDToToken(id int32) string {
	if id < 0 || int(id) >= len(m.idToTok) {
		return ""
	}
	return m.idToTok[id]
}

func (m *wordLevel) VocabSize() int { return len(m.idToTok) }

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
			return nil, formatErr(errors.New("WordLevel model has no vocab"))
		}
		m := &wordLevel{vocab: cfg.Vocab, unk: -1}
		maxID := int32(-1)
		for tok, id := range cfg.Vocab {
			if id < 0 {
				return nil, fmt.Errorf("%w: vocabulary entry %q has negative id %d", ErrFormat, tok, id)
			}
			maxID = max(maxID, id)
		}
		if int(maxID) >= 8*len(cfg.Vocab)+1024 {
			return nil, fmt.Errorf("%w: vocabulary id %d is far beyond its %d entries", ErrFormat, maxID, len(cfg.Vocab))
		}
		m.idToTok = make([]string, maxID+1)
		for tok, id := range cfg.Vocab {
			m.idToTok[id] = tok
		}
		if id, ok := cfg.Vocab[cfg.Unk]; ok {
			m.unk = id
		}
		return m, nil
	}
}
