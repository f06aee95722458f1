package encoder_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// The architectures beyond BERT join the shared fidelity tables, so
// TestFidelity and TestTokenEmbeddingsFidelity check them exactly as they
// check BERT: every reference row from the reference ids and from our own
// tokenization, and the token vectors of the first 48 texts.
func init() {
	fidelityCases = append(fidelityCases,
		fidelityCase{name: "tiny-xlmr", maxAbs: 2e-5},
		fidelityCase{name: "tiny-mpnet", maxAbs: 2e-5},
		fidelityCase{name: "tiny-modernbert", maxAbs: 2e-5},
		fidelityCase{name: "tiny-qwen3", maxAbs: 2e-5},
		fidelityCase{name: "tiny-qwen3-moe", maxAbs: 2e-5},
	)
}

// TestBreadthMaxSeqLen checks the truncation length of the models whose
// sentence_bert_config.json gives none: sentence-transformers then uses
// min(max_position_embeddings, tokenizer model_max_length), and the longest
// reference row has exactly that many ids.
func TestBreadthMaxSeqLen(t *testing.T) {
	for name, want := range map[string]int{
		"tiny-xlmr": 128, "tiny-mpnet": 384, "tiny-modernbert": 256, "tiny-qwen3": 256, "tiny-qwen3-moe": 256,
	} {
		m := load(t, refs.ModelDir(t, name))
		if got := m.MaxSeqLen(); got != want {
			t.Errorf("%s: MaxSeqLen() = %d, want %d", name, got, want)
		}
		longest := 0
		for _, r := range refs.Read[refs.Row](t, name+".parquet") {
			longest = max(longest, len(r.InputIDs))
		}
		if longest != want {
			t.Errorf("%s: the longest reference row has %d ids, expected the truncation length %d", name, longest, want)
		}
	}
}

// TestQwen3QueryPrompt checks the instruction prompt of the Qwen3 embedding
// models: the query prompt comes from config_sentence_transformers.json, is
// prepended to the text before tokenization, and the sequence still ends
// with the EOS token whose vector last-token pooling takes.
func TestQwen3QueryPrompt(t *testing.T) {
	m := load(t, refs.ModelDir(t, "tiny-qwen3"))
	p, err := m.Prompt("query")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, "Instruct: ") || !strings.HasSuffix(p, "\nQuery:") {
		t.Fatalf("query prompt %q", p)
	}
	const text = "what is the capital of France?"
	got, _ := m.TokenizeTo(nil, text, p, 0)
	want, _ := m.TokenizeTo(nil, p+text, "", 0)
	plain, _ := m.TokenizeTo(nil, text, "", 0)
	if !slices.Equal(got, want) || len(got) <= len(plain) {
		t.Fatalf("prompted ids %v, want %v (plain %v)", got, want, plain)
	}
	if got[len(got)-1] != 0 || plain[len(plain)-1] != 0 {
		t.Fatalf("sequences do not end with <|endoftext|> (id 0): %v, %v", got, plain)
	}
	// Truncation keeps the EOS: the template is applied after truncating.
	long, truncated := m.TokenizeTo(nil, strings.Repeat("capital ", 1000), p, 0)
	if !truncated || len(long) != m.MaxSeqLen() || long[len(long)-1] != 0 {
		t.Fatalf("long query: %d ids (truncated %v), last %d", len(long), truncated, long[len(long)-1])
	}
}

// TestLoadUnsupportedModelTypeListsSupported changes tiny-qwen3's model_type
// to one no architecture implements: Load must refuse it and list every
// supported model type.
func TestLoadUnsupportedModelTypeListsSupported(t *testing.T) {
	src := refs.ModelDir(t, "tiny-qwen3")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// Symlinks keep the copy cheap; only config.json is rewritten.
		if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["model_type"] = "gemma3_text"
	b, _ = json.Marshal(cfg)
	os.Remove(filepath.Join(dir, "config.json"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = encoder.Load(dir)
	if !errors.Is(err, encoder.ErrUnsupported) {
		t.Fatalf("Load: %v, want ErrUnsupported", err)
	}
	for _, mt := range []string{"gemma3_text", "bert", "xlm-roberta", "mpnet", "modernbert", "qwen3", "qwen3_moe"} {
		if !strings.Contains(err.Error(), mt) {
			t.Errorf("error %q does not mention %q", err, mt)
		}
	}
}
