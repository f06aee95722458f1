package arch

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Weights is the source of an architecture's parameters. A
// *safetensors.Checkpoint satisfies it.
type Weights interface {
	// Float32 returns a fresh float32 copy of the named tensor, checking that
	// its shape is exactly shape. Errors name the file and the tensor.
	Float32(name string, shape ...int) ([]float32, error)
	// Lookup returns the first of names that the checkpoint holds.
	Lookup(names ...string) (string, bool)
}

// Encoder is a loaded transformer stack. Its parameters are read-only after
// the Builder returns, so one Encoder serves any number of concurrent
// Forward calls, each with its own Scratch.
type Encoder interface {
	// Hidden is the width of the token embeddings Forward writes.
	Hidden() int
	// MaxPositions is the longest sequence the position scheme allows
	// (max_position_embeddings), or 0 when there is no limit.
	MaxPositions() int
	// Describe returns the layer count and head count for inspection.
	Describe() Description
	// WordEmbedding returns the static (input) embedding row of token id,
	// shared and read-only, or nil when id is outside the vocabulary.
	WordEmbedding(id int32) []float32
	// Forward runs the stack over the sequences ids[starts[i]:starts[i+1]]
	// and writes len(ids)×Hidden() token embeddings, row-major, into dst.
	// starts holds one more entry than there are sequences, starts[0] == 0
	// and the last == len(ids). Buffers come from s. Forward checks ctx
	// between layers.
	Forward(ctx context.Context, s *Scratch, ids []int32, starts []int, dst []float32) error
}

// TypedEncoder is an Encoder with a token type (segment) embedding, which
// sentence-pair inputs (a cross-encoder's query and document) use to tell
// their two segments apart. The BERT family implements it.
type TypedEncoder interface {
	Encoder
	// TypeVocab is the number of token types (type_vocab_size).
	TypeVocab() int
	// ForwardTyped is Forward with types[i] the token type of ids[i];
	// types is nil (every token of type 0) or as long as ids, each in
	// [0, TypeVocab()).
	ForwardTyped(ctx context.Context, s *Scratch, ids, types []int32, starts []int, dst []float32) error
}

// checkTypes validates the token types of a ForwardTyped call.
func checkTypes(types []int32, n, typeVocab int) error {
	if types == nil {
		return nil
	}
	if len(types) != n {
		return fmt.Errorf("%w: %d token types for %d ids", ErrInput, len(types), n)
	}
	for i, t := range types {
		if t < 0 || int(t) >= typeVocab {
			return fmt.Errorf("%w: token %d: token type %d outside [0, %d)", ErrInput, i, t, typeVocab)
		}
	}
	return nil
}

// Description is what an Encoder tells about its shape.
type Description struct {
	Layers, Heads, KVHeads, Hidden, Intermediate, VocabSize int
	// Activation is the hidden_act of the config (gelu, gelu_new, relu…).
	Activation string
}

// Builder constructs an Encoder from a config and a weight source.
type Builder func(cfg *Config, w Weights) (Encoder, error)

var (
	regMu    sync.RWMutex
	registry = map[string]Builder{}
)

// Register makes b the Builder of model_type name. It is meant for init
// functions and panics on a duplicate name, a programmer error.
func Register(name string, b Builder) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("arch: duplicate Register of " + name)
	}
	registry[name] = b
}

// Supported returns the registered model types in sorted order.
func Supported() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build constructs the Encoder for cfg's model_type.
func Build(cfg *Config, w Weights) (Encoder, error) {
	mt, err := cfg.ModelType()
	if err != nil {
		return nil, err
	}
	regMu.RLock()
	b := registry[mt]
	regMu.RUnlock()
	if b == nil {
		return nil, fmt.Errorf("%w: %s: model_type %q (supported: %s)", ErrUnsupported, cfg.Path, mt, strings.Join(Supported(), ", "))
	}
	return b(cfg, w)
}

// CheckBatch validates the sequence layout of a Forward call: starts must
// begin at 0, never decrease, end at len(ids), and dst must hold
// len(ids)×hidden floats. Sequences longer than maxPos (when > 0) and ids
// outside [0, vocab) are rejected with an error naming the sequence.
func CheckBatch(ids []int32, starts []int, dst []float32, hidden, vocab, maxPos int) error {
	if len(starts) == 0 {
		if len(ids) != 0 {
			return fmt.Errorf("%w: %d ids but no sequence starts", ErrInput, len(ids))
		}
		return nil
	}
	if starts[0] != 0 || starts[len(starts)-1] != len(ids) {
		return fmt.Errorf("%w: sequence starts run from %d to %d, want 0 to %d", ErrInput, starts[0], starts[len(starts)-1], len(ids))
	}
	if len(dst) < len(ids)*hidden {
		return fmt.Errorf("%w: destination holds %d floats, need %d×%d", ErrInput, len(dst), len(ids), hidden)
	}
	for i := 0; i+1 < len(starts); i++ {
		n := starts[i+1] - starts[i]
		if n < 0 {
			return fmt.Errorf("%w: sequence %d has negative length %d", ErrInput, i, n)
		}
		if maxPos > 0 && n > maxPos {
			return fmt.Errorf("%w: sequence %d has %d tokens, the model allows %d", ErrInput, i, n, maxPos)
		}
		for _, id := range ids[starts[i]:starts[i+1]] {
			if id < 0 || int(id) >= vocab {
				return fmt.Errorf("%w: sequence %d: token id %d outside the vocabulary [0, %d)", ErrInput, i, id, vocab)
			}
		}
	}
	return nil
}
