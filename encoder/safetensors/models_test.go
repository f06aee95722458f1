package safetensors

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// hfConfig holds the config.json sizes the tensor shapes follow from.
type hfConfig struct {
	ModelType       string `json:"model_type"`
	Hidden          int    `json:"hidden_size"`
	Intermediate    int    `json:"intermediate_size"`
	Layers          int    `json:"num_hidden_layers"`
	Vocab           int    `json:"vocab_size"`
	MaxPos          int    `json:"max_position_embeddings"`
	TypeVocab       int    `json:"type_vocab_size"`
	Heads           int    `json:"num_attention_heads"`
	KVHeads         int    `json:"num_key_value_heads"`
	HeadDim         int    `json:"head_dim"`
	Experts         int    `json:"num_local_experts"`
	MoEIntermediate int    `json:"moe_intermediate_size"`
}

func readConfig(t *testing.T, dir string) hfConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c hfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// expectedShapes derives, from config.json alone, the shapes of tensors each
// architecture must hold; it is an independent statement of what the files
// should contain, not a copy of what Open reads.
func expectedShapes(c hfConfig) map[string][]int {
	h, in := c.Hidden, c.Intermediate
	m := map[string][]int{}
	switch c.ModelType {
	case "bert", "xlm-roberta":
		m["embeddings.word_embeddings.weight"] = []int{c.Vocab, h}
		m["embeddings.position_embeddings.weight"] = []int{c.MaxPos, h}
		m["embeddings.token_type_embeddings.weight"] = []int{c.TypeVocab, h}
		m["embeddings.LayerNorm.weight"] = []int{h}
		for l := range c.Layers {
			p := fmt.Sprintf("encoder.layer.%d.", l)
			m[p+"attention.self.query.weight"] = []int{h, h}
			m[p+"attention.self.key.bias"] = []int{h}
			m[p+"attention.output.dense.weight"] = []int{h, h}
			m[p+"intermediate.dense.weight"] = []int{in, h}
			m[p+"output.dense.weight"] = []int{h, in}
			m[p+"output.LayerNorm.bias"] = []int{h}
		}
	case "mpnet":
		m["embeddings.word_embeddings.weight"] = []int{c.Vocab, h}
		m["embeddings.position_embeddings.weight"] = []int{c.MaxPos, h}
		for l := range c.Layers {
			p := fmt.Sprintf("encoder.layer.%d.", l)
			m[p+"attention.attn.q.weight"] = []int{h, h}
			m[p+"intermediate.dense.weight"] = []int{in, h}
			m[p+"output.dense.weight"] = []int{h, in}
		}
	case "modernbert":
		m["embeddings.tok_embeddings.weight"] = []int{c.Vocab, h}
		m["final_norm.weight"] = []int{h}
		for l := range c.Layers {
			p := fmt.Sprintf("layers.%d.", l)
			m[p+"attn.Wqkv.weight"] = []int{3 * h, h}
			m[p+"attn.Wo.weight"] = []int{h, h}
			m[p+"mlp.Wi.weight"] = []int{2 * in, h}
			m[p+"mlp.Wo.weight"] = []int{h, in}
		}
	case "qwen3", "qwen3_moe":
		m["embed_tokens.weight"] = []int{c.Vocab, h}
		m["norm.weight"] = []int{h}
		for l := range c.Layers {
			p := fmt.Sprintf("layers.%d.", l)
			m[p+"self_attn.q_proj.weight"] = []int{c.Heads * c.HeadDim, h}
			m[p+"self_attn.k_proj.weight"] = []int{c.KVHeads * c.HeadDim, h}
			m[p+"self_attn.o_proj.weight"] = []int{h, c.Heads * c.HeadDim}
			m[p+"self_attn.q_norm.weight"] = []int{c.HeadDim}
			if c.ModelType == "qwen3" {
				m[p+"mlp.gate_proj.weight"] = []int{in, h}
				m[p+"mlp.down_proj.weight"] = []int{h, in}
			} else {
				m[p+"mlp.gate.weight"] = []int{c.Experts, h}
				for e := range c.Experts {
					m[p+fmt.Sprintf("mlp.experts.%d.down_proj.weight", e)] = []int{h, c.MoEIntermediate}
				}
			}
		}
	}
	return m
}

func TestSharedModels(t *testing.T) {
	for _, tc := range []struct {
		model string
		dtype DType
		files int
	}{
		{"tiny-bert", F32, 1},
		{"tiny-bert-bf16-cls", BF16, 1},
		{"tiny-bert-f16-max-sharded", F16, 2},
		{"tiny-xlmr", F32, 1},
		{"tiny-mpnet", F32, 1},
		{"tiny-modernbert", F32, 1},
		{"tiny-qwen3", F32, 1},
		{"tiny-qwen3-moe", F32, 1},
	} {
		t.Run(tc.model, func(t *testing.T) {
			dir := refs.ModelDir(t, tc.model)
			cfg := readConfig(t, dir)
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if n := len(c.Files()); n != tc.files {
				t.Errorf("%d files, want %d", n, tc.files)
			}
			names := c.Names()
			if !slices.IsSorted(names) || len(names) == 0 {
				t.Errorf("Names not sorted or empty: %v", names)
			}
			if d := c.DTypes(); len(d) != 1 || d[tc.dtype] != len(names) {
				t.Errorf("DTypes = %v, want all %d %s", d, len(names), tc.dtype)
			}
			want := expectedShapes(cfg)
			if len(want) < 4 {
				t.Fatalf("no expected shapes for model_type %q", cfg.ModelType)
			}
			for name, shape := range want {
				info, ok := c.Info(name)
				if !ok {
					t.Errorf("tensor %s missing", name)
					continue
				}
				if !slices.Equal(info.Shape, shape) {
					t.Errorf("tensor %s: shape %v, want %v from config.json", name, info.Shape, shape)
				}
				if _, err := c.Float32(name, shape...); err != nil {
					t.Error(err)
				}
			}
			var params int64
			for _, name := range names {
				v, err := c.Float32(name)
				if err != nil {
					t.Fatal(err)
				}
				info, _ := c.Info(name)
				if int64(len(v)) != info.Elements() {
					t.Fatalf("%s: %d values for shape %v", name, len(v), info.Shape)
				}
				for i, x := range v {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) || math.Abs(float64(x)) > 100 {
						t.Fatalf("%s[%d] = %g: deterministic weights are small and finite", name, i, x)
					}
				}
				params += info.Elements()
			}
			if c.NumParams() != params {
				t.Errorf("NumParams = %d, want %d", c.NumParams(), params)
			}
			if c.Metadata()["format"] != "pt" {
				t.Errorf("Metadata = %v", c.Metadata())
			}
		})
	}
}

// TestSharedValues compares decoded values with ones computed independently
// by Python's struct module (format 'e' for binary16, and a 16-bit shift into
// format 'f' for bfloat16) from the bytes of the shared files.
func TestSharedValues(t *testing.T) {
	for _, tc := range []struct {
		model, tensor string
		want          []float32
	}{
		{"tiny-bert", "encoder.layer.0.attention.self.query.weight", []float32{-0.20089854300022125, 0.24261139333248138, 0.20590804517269135, 0.5246996283531189}},
		{"tiny-bert-bf16-cls", "encoder.layer.0.attention.self.query.weight", []float32{-0.365234375, -0.12451171875, -0.06640625, 0.33984375}},
		{"tiny-bert-f16-max-sharded", "encoder.layer.1.intermediate.dense.weight", []float32{0.037933349609375, 0.0132293701171875, -0.05908203125, -0.10919189453125}},
	} {
		c, err := Open(refs.ModelDir(t, tc.model))
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Float32(tc.tensor)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v[:len(tc.want)], tc.want) {
			t.Errorf("%s %s: first values %v, want %v", tc.model, tc.tensor, v[:len(tc.want)], tc.want)
		}
	}
}

// TestReadFallback forces the reading path used where mmap is unavailable
// and checks it yields the same tensors as the mapped path.
func TestReadFallback(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-bert-bf16-cls")
	mapped, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	if mmapSupported && mapped.sources[0].unmap == nil {
		t.Fatal("the file was not memory-mapped on a platform with mmap")
	}
	mapFile = func(*os.File, int) ([]byte, func() error, error) { return nil, nil, os.ErrInvalid }
	defer func() { mapFile = mmapFile }()
	read, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	if read.sources[0].unmap != nil {
		t.Fatal("fallback still mapped the file")
	}
	if !slices.Equal(mapped.Names(), read.Names()) {
		t.Fatal("names differ between mapped and read checkpoints")
	}
	for _, name := range mapped.Names() {
		a, _ := mapped.Float32(name)
		b, err := read.Float32(name)
		if err != nil || !slices.Equal(a, b) {
			t.Fatalf("%s differs between mapped and read checkpoints (%v)", name, err)
		}
	}
}
