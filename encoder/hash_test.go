package encoder_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

func TestContentHash(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	h1 := load(t, src).ContentHash()
	if len(h1) != 64 {
		t.Fatalf("hash %q", h1)
	}
	// Stable across loads and across a copy at another path.
	if h2 := load(t, src).ContentHash(); h2 != h1 {
		t.Fatalf("hash changed between loads: %s vs %s", h1, h2)
	}
	if h3 := load(t, variant(t, src, nil)).ContentHash(); h3 != h1 {
		t.Fatalf("hash depends on the directory path: %s vs %s", h1, h3)
	}
	// Any defining file changes it: pooling, prompts, weights.
	for name, edits := range map[string]map[string]string{
		"pooling":   {"1_Pooling/config.json": `{"pooling_mode": "cls"}`},
		"prompts":   {"config_sentence_transformers.json": `{"prompts": {"query": "q: "}}`},
		"max len":   {"sentence_bert_config.json": `{"max_seq_length": 64}`},
		"tokenizer": {"vocab.txt": "[PAD]\n"},
	} {
		if h := load(t, variant(t, src, edits)).ContentHash(); h == h1 {
			t.Errorf("%s: edit does not change the hash", name)
		}
	}
	// The int8 compute mode gives other vectors, hence another hash.
	if h := load(t, src, encoder.WithCompute(encoder.ComputeInt8)).ContentHash(); h == h1 {
		t.Error("int8 compute does not change the hash")
	}
	hb := load(t, src, encoder.WithCompute(encoder.ComputeBF16)).ContentHash()
	if hb == h1 {
		t.Error("bf16 compute does not change the hash")
	}
	if hb == load(t, src, encoder.WithCompute(encoder.ComputeInt8)).ContentHash() {
		t.Error("bf16 and int8 compute share a hash")
	}
	other := load(t, refs.ModelDir(t, "tiny-bert-bf16-cls")).ContentHash()
	if other == h1 {
		t.Error("two models share a hash")
	}
	// A weight byte flipped in a copy changes it too.
	dir := variant(t, src, map[string]string{"model.safetensors": "-"})
	b, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if h := load(t, dir).ContentHash(); h == h1 {
		t.Error("weight change does not change the hash")
	}
}
