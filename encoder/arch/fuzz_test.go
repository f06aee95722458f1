package arch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/arch"
)

// zeroWeights serves a zero tensor of any requested shape up to a size
// limit, and refuses larger ones as a checkpoint whose header disagrees
// would: the config alone decides the shapes, which is what the fuzz test
// exercises.
type zeroWeights struct{}

func (zeroWeights) Float32(name string, shape ...int) ([]float32, error) {
	n := 1
	for _, d := range shape {
		if d <= 0 || n > (1<<20)/d {
			return nil, errors.New(name + ": shape mismatch")
		}
		n *= d
	}
	return make([]float32, n), nil
}

func (zeroWeights) Lookup(names ...string) (string, bool) { return names[0], true }

// FuzzBuild feeds arbitrary config.json bytes to the registry: Build must
// return an encoder or an error, never panic, and a built encoder must run
// a small batch.
func FuzzBuild(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tiny-bert", "config.json"))
	if err == nil {
		f.Add(seed)
	}
	f.Add([]byte(`{"model_type":"bert","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4,"max_position_embeddings":4,"vocab_size":5,"hidden_act":"relu"}`))
	f.Add([]byte(`{"model_type":"bert","hidden_size":1e9}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := arch.ParseConfig("config.json", data)
		if err != nil {
			return
		}
		enc, err := arch.Build(cfg, zeroWeights{})
		if err != nil {
			return
		}
		ids := []int32{0, 0, 0}
		dst := make([]float32, len(ids)*enc.Hidden())
		_ = enc.Forward(context.Background(), &arch.Scratch{}, ids, []int{0, 1, 3}, dst)
	})
}
