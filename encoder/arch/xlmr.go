package arch

import (
	"encoding/json"
	"fmt"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

func init() {
	Register("xlm-roberta", buildXLMR)
	Register("roberta", buildXLMR)
}

// XLM-R (and RoBERTa) is BERT with one difference the forward pass sees:
// position ids start after the padding index, at pad_token_id+1, so the
// first pad_token_id+1 rows of the position table are never used by a real
// token (Hugging Face's create_position_ids_from_input_ids). Rather than a
// second copy of the BERT stack, buildXLMR hands buildBERT a view of the
// checkpoint whose position table starts at that row and a config whose
// max_position_embeddings counts only the usable rows. The token type table
// has a single row (type_vocab_size 1), which BERT folds in as it does row 0.

// positionOffset returns the first position id of RoBERTa-style models,
// pad_token_id+1.
func positionOffset(cfg *Config) (int, error) {
	pad, err := cfg.IntOr("pad_token_id", 1, 0, 1<<20)
	if err != nil {
		return 0, err
	}
	return pad + 1, nil
}

// withValue returns a copy of c whose key holds v; c is unchanged.
func (c *Config) withValue(key string, v any) (*Config, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, c.errf(key, "%v", err)
	}
	raw := make(map[string]json.RawMessage, len(c.raw)+1)
	for k, r := range c.raw {
		raw[k] = r
	}
	raw[key] = b
	return &Config{Path: c.Path, raw: raw}, nil
}

func buildXLMR(cfg *Config, w Weights) (Encoder, error) {
	off, err := positionOffset(cfg)
	if err != nil {
		return nil, err
	}
	maxPos, err := cfg.Int("max_position_embeddings", 1, 1<<20)
	if err != nil {
		return nil, err
	}
	if maxPos <= off {
		return nil, fmt.Errorf("%w: %s: max_position_embeddings %d leaves no position after pad_token_id %d", ErrConfig, cfg.Path, maxPos, off-1)
	}
	view, err := cfg.withValue("max_position_embeddings", maxPos-off)
	if err != nil {
		return nil, err
	}
	p, err := ResolvePrefix(w, "embeddings.word_embeddings.weight", "roberta.", "xlm_roberta.")
	if err != nil {
		return nil, err
	}
	return buildBERT(view, &shiftedPositions{Weights: w, prefix: p, skip: off, rows: maxPos})
}

// shiftedPositions presents a RoBERTa checkpoint to buildBERT: tensor names
// lose the checkpoint's prefix ("roberta.") and the position table loses its
// first skip rows. Errors keep the real tensor names.
type shiftedPositions struct {
	Weights
	prefix     string
	skip, rows int // rows of the stored position table
}

const positionTable = "embeddings.position_embeddings.weight"

func (s *shiftedPositions) Float32(name string, shape ...int) ([]float32, error) {
	if name != positionTable || len(shape) != 2 {
		return s.Weights.Float32(s.prefix+name, shape...)
	}
	t, err := s.Weights.Float32(s.prefix+name, s.rows, shape[1])
	if err != nil {
		return nil, err
	}
	return t[s.skip*shape[1]:], nil
}

// compute forwards the compute mode of BuildCompute to buildBERT.
func (s *shiftedPositions) compute() kernels.Compute { return computeOf(s.Weights) }

func (s *shiftedPositions) Lookup(names ...string) (string, bool) {
	for _, n := range names {
		if _, ok := s.Weights.Lookup(s.prefix + n); ok {
			return n, true
		}
	}
	return "", false
}
