package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// wordPiece is the WordPiece model: greedy longest-match-first over the
// vocabulary, pieces after the first carrying the continuing-subword prefix
// ("##"); a word with a piece missing from the vocabulary, or longer than
// maxChars characters, becomes the unknown token.
type wordPiece struct {
	vocabTable
	cont     map[string]int32 // entries that start with prefix, keyed without it
	unk      int32            // -1 when the unknown token is not in the vocabulary
	prefix   string
	maxChars int
	// longest and longestCont are the byte lengths of the longest entries
	// of vocab and cont: the greedy search starts no further than that.
	longest, longestCont int
}

func newWordPiece(vocab map[string]int32, unkToken, prefix string, maxChars int) (*wordPiece, error) {
	// Hugging Face fails on the first unknown word of such tokenizers; one
	// without a vocabulary, or whose unknown token is not in it, would
	// otherwise silently drop words, so both are refused here.
	if len(vocab) == 0 {
		return nil, fmt.Errorf("%w: WordPiece vocabulary is empty", ErrFormat)
	}
	if _, ok := vocab[unkToken]; !ok {
		return nil, fmt.Errorf("%w: WordPiece unk_token %q is not in the %d-entry vocabulary (unknown words would vanish)", ErrFormat, unkToken, len(vocab))
	}
	vt, err := newVocabTable(vocab)
	if err != nil {
		return nil, err
	}
	m := &wordPiece{vocabTable: vt, cont: map[string]int32{}, unk: -1, prefix: prefix, maxChars: maxChars}
	for tok, id := range vocab {
		if prefix != "" && strings.HasPrefix(tok, prefix) {
			m.cont[tok[len(prefix):]] = id
		}
	}
	if prefix == "" {
		m.cont = vocab
	}
	for tok := range vocab {
		m.longest = max(m.longest, len(tok))
	}
	for tok := range m.cont {
		m.longestCont = max(m.longestCont, len(tok))
	}
	if id, ok := vocab[unkToken]; ok {
		m.unk = id
	}
	return m, nil
}

func (m *wordPiece) Tokenize(dst []int32, word string) []int32 {
	if utf8.RuneCountInString(word) > m.maxChars {
		return m.appendUnk(dst)
	}
	base := len(dst)
	for start := 0; start < len(word); {
		longest := m.longestCont
		if start == 0 {
			longest = m.longest
		}
		end := len(word)
		if end-start > longest {
			end = start + longest
			for end > start && !utf8.RuneStart(word[end]) {
				end--
			}
		}
		found := false
		for start < end {
			var id int32
			var ok bool
			if start == 0 {
				id, ok = m.vocab[word[:end]]
			} else {
				id, ok = m.cont[word[start:end]]
			}
			if ok {
				dst = append(dst, id)
				found = true
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if !found {
			return m.appendUnk(dst[:base])
		}
		start = end
	}
	return dst
}

func (m *wordPiece) appendUnk(dst []int32) []int32 {
	if m.unk < 0 {
		return dst
	}
	return append(dst, m.unk)
}

func init() {
	modelCtors["WordPiece"] = func(raw []byte) (Model, error) {
		cfg := struct {
			Vocab    map[string]int32 `json:"vocab"`
			Unk      string           `json:"unk_token"`
			Prefix   *string          `json:"continuing_subword_prefix"`
			MaxChars int              `json:"max_input_chars_per_word"`
		}{Unk: "[UNK]", MaxChars: 100}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, formatErr(err)
		}
		prefix := "##"
		if cfg.Prefix != nil {
			prefix = *cfg.Prefix
		}
		return newWordPiece(cfg.Vocab, cfg.Unk, prefix, cfg.MaxChars)
	}
}
