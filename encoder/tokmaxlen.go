package encoder

import (
	"fmt"
	"path/filepath"
)

// readModelMaxLength supplies the truncation length when
// sentence_bert_config.json gives no max_seq_length. sentence-transformers
// then truncates at min(max_position_embeddings, the tokenizer's
// model_max_length); the first bound is applied by Load, this reads the
// second from tokenizer_config.json. A missing file or key, or the huge
// sentinel transformers writes for "no limit", leaves the length unset.
func (l *stLayout) readModelMaxLength() error {
	path := filepath.Join(l.transformerDir, "tokenizer_config.json")
	var c struct {
		ModelMaxLength *float64 `json:"model_max_length"`
	}
	if found, err := l.readFile(path, &c); !found {
		return err
	}
	if c.ModelMaxLength == nil {
		return nil
	}
	v := *c.ModelMaxLength
	if v > 1<<24 {
		return nil
	}
	if v != float64(int(v)) || v < 1 {
		return fmt.Errorf("%w: %s: model_max_length %v is not a positive integer", ErrConfig, path, v)
	}
	l.maxSeqLen = int(v)
	l.notes = append(l.notes, fmt.Sprintf("no max_seq_length: truncating at tokenizer_config.json model_max_length %d, as sentence-transformers does", l.maxSeqLen))
	return nil
}
