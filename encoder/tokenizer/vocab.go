package tokenizer

import "fmt"

// vocabTable is a token-to-id vocabulary with its dense id-to-token inverse:
// the lookups the WordPiece, WordLevel and BPE models share.
type vocabTable struct {
	vocab   map[string]int32
	idToTok []string
}

// newVocabTable checks vocab's ids and builds its inverse. A negative id is
// refused, and so is an id far beyond the number of entries: ids index a
// dense table, and a sparse lying id must not cost gigabytes.
func newVocabTable(vocab map[string]int32) (vocabTable, error) {
	maxID := int32(-1)
	for tok, id := range vocab {
		if id < 0 {
			return vocabTable{}, fmt.Errorf("%w: vocabulary entry %q has negative id %d", ErrFormat, tok, id)
		}
		maxID = max(maxID, id)
	}
	if int(maxID) >= 8*len(vocab)+1024 {
		return vocabTable{}, fmt.Errorf("%w: vocabulary id %d is far beyond its %d entries", ErrFormat, maxID, len(vocab))
	}
	idToTok := make([]string, maxID+1)
	for tok, id := range vocab {
		idToTok[id] = tok
	}
	return vocabTable{vocab: vocab, idToTok: idToTok}, nil
}

// TokenToID returns the id of tok.
func (v *vocabTable) TokenToID(tok string) (int32, bool) {
	id, ok := v.vocab[tok]
	return id, ok
}

// IDToToken returns the token of id, or "" if there is none.
func (v *vocabTable) IDToToken(id int32) string {
	if id < 0 || int(id) >= len(v.idToTok) {
		return ""
	}
	return v.idToTok[id]
}

// VocabSize is the length of the id table: one more than the largest id.
func (v *vocabTable) VocabSize() int { return len(v.idToTok) }
