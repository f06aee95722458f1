package arch_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// prefixed presents a checkpoint as if every tensor name carried prefix, the
// layout of a checkpoint saved from a task model (XLMRobertaForMaskedLM
// stores "roberta.embeddings…").
type prefixed struct {
	arch.Weights
	prefix string
}

func (p prefixed) Float32(name string, shape ...int) ([]float32, error) {
	if !strings.HasPrefix(name, p.prefix) {
		return nil, errors.New("no tensor " + name)
	}
	return p.Weights.Float32(strings.TrimPrefix(name, p.prefix), shape...)
}

func (p prefixed) Lookup(names ...string) (string, bool) {
	for _, n := range names {
		if strings.HasPrefix(n, p.prefix) {
			if _, ok := p.Weights.Lookup(strings.TrimPrefix(n, p.prefix)); ok {
				return n, true
			}
		}
	}
	return "", false
}

// buildWith builds the encoder of a shared model directory from w(checkpoint).
func buildWith(t testing.TB, name string, w func(arch.Weights) arch.Weights) arch.Encoder {
	t.Helper()
	dir := refs.ModelDir(t, name)
	cfg, err := arch.ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	enc, err := arch.Build(cfg, w(ck))
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// forwardRefs runs the reference ids of the first n rows of name's refs as
// one batch.
func forwardRefs(t *testing.T, enc arch.Encoder, name string, n int) []float32 {
	t.Helper()
	rows := refs.Read[refs.Row](t, name+".parquet")
	var ids []int32
	starts := []int{0}
	for _, r := range rows[:n] {
		ids = append(ids, r.InputIDs...)
		starts = append(starts, len(ids))
	}
	dst := make([]float32, len(ids)*enc.Hidden())
	if err := enc.Forward(context.Background(), &arch.Scratch{}, ids, starts, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestXLMRPrefixedCheckpoint(t *testing.T) {
	plain := buildWith(t, "tiny-xlmr", func(w arch.Weights) arch.Weights { return w })
	pre := buildWith(t, "tiny-xlmr", func(w arch.Weights) arch.Weights { return prefixed{w, "roberta."} })
	if !slices.Equal(forwardRefs(t, plain, "tiny-xlmr", 8), forwardRefs(t, pre, "tiny-xlmr", 8)) {
		t.Fatal("the roberta.-prefixed checkpoint gives other token embeddings")
	}
}

func TestXLMRPositionLimit(t *testing.T) {
	enc := loadEncoder(t, refs.ModelDir(t, "tiny-xlmr"))
	// max_position_embeddings 130 minus the pad_token_id+1 rows before the
	// first position.
	if got := enc.MaxPositions(); got != 128 {
		t.Fatalf("MaxPositions() = %d, want 128", got)
	}
	for _, n := range []int{128, 129} {
		ids := make([]int32, n)
		dst := make([]float32, n*enc.Hidden())
		err := enc.Forward(context.Background(), &arch.Scratch{}, ids, []int{0, n}, dst)
		if (n > 128) != errors.Is(err, arch.ErrInput) {
			t.Errorf("%d tokens: err = %v", n, err)
		}
	}
}

func TestUnsupportedModelTypeListsSupported(t *testing.T) {
	cfg, err := arch.ParseConfig("config.json", []byte(`{"model_type": "t5"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = arch.Build(cfg, nil)
	if !errors.Is(err, arch.ErrUnsupported) {
		t.Fatalf("Build(t5) = %v, want ErrUnsupported", err)
	}
	for _, mt := range arch.Supported() {
		if !strings.Contains(err.Error(), mt) {
			t.Errorf("error %q does not list %q", err, mt)
		}
	}
	if !slices.Contains(arch.Supported(), "xlm-roberta") {
		t.Errorf("Supported() = %v lacks xlm-roberta", arch.Supported())
	}
}
