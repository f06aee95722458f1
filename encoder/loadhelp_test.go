package encoder_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
)

// TestLoadPyTorchOnly checks that a directory with PyTorch weights but no
// safetensors says what it has and how to convert it.
func TestLoadPyTorchOnly(t *testing.T) {
	dir := variant(t, "../testdata/tiny-bert", map[string]string{"model.safetensors": "-", "pytorch_model.bin": "not read"})
	_, err := encoder.Load(dir)
	if !errors.Is(err, encoder.ErrModelDir) {
		t.Fatalf("pytorch_model.bin only: %v", err)
	}
	for _, want := range []string{"lacks model.safetensors", "has pytorch_model.bin", "safe_serialization=True"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestLoadMissingModel checks that a --model that is neither a directory
// nor a Hub id says what to give, and that a bare model name is pointed to
// the org/name form.
func TestLoadMissingModel(t *testing.T) {
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Chdir(t.TempDir())
	_, err := encoder.Load("all-MiniLM-L6-v2")
	if !errors.Is(err, encoder.ErrModelDir) || !strings.Contains(err.Error(), "sentence-transformers/all-MiniLM-L6-v2") {
		t.Errorf("bare name: %v", err)
	}
	_, err = encoder.Load("./models/minilm")
	if !errors.Is(err, encoder.ErrModelDir) || !strings.Contains(err.Error(), "want a model directory") {
		t.Errorf("missing path: %v", err)
	}
}

// TestModelFiles checks that Files lists the files a model is built from,
// relative to its directory, each of which exists.
func TestModelFiles(t *testing.T) {
	m, err := encoder.Load("../testdata/tiny-bert")
	if err != nil {
		t.Fatal(err)
	}
	files := m.Files()
	for _, want := range []string{"config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"} {
		if !slices.Contains(files, want) {
			t.Errorf("Files %v lacks %s", files, want)
		}
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(m.Info().Dir, f)); err != nil {
			t.Errorf("listed file %s: %v", f, err)
		}
	}
}
