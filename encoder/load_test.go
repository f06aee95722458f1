package encoder_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// variant is refs.Variant.
func variant(t *testing.T, src string, edits map[string]string) string {
	t.Helper()
	return refs.Variant(t, src, edits)
}

// editJSON returns the JSON file at path with the top-level keys of set
// replaced (a nil value deletes the key).
func editJSON(t *testing.T, path string, set map[string]any) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, _ := json.Marshal(m)
	return string(out)
}

var sampleTexts = []string{
	"The bank of the river was muddy.",
	"She deposited money at the bank.",
	"Hello, world!",
	"a",
	"Embeddings turn text into vectors that a database can search by meaning rather than by words.",
}

func embedTexts(t *testing.T, m *encoder.Model, texts []string) []float32 {
	t.Helper()
	out := make([]float32, len(texts)*m.Dim())
	if err := m.Embed(context.Background(), texts, "", out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	cfg := filepath.Join(src, "config.json")
	cases := []struct {
		name  string
		edits map[string]string
		want  error
		says  []string
	}{
		{"no config", map[string]string{"config.json": "-"}, encoder.ErrModelDir, []string{"config.json"}},
		{"no weights", map[string]string{"model.safetensors": "-"}, encoder.ErrModelDir, []string{"model.safetensors"}},
		{"nothing", map[string]string{"model.safetensors": "-", "config.json": "-", "tokenizer.json": "-", "vocab.txt": "-"},
			encoder.ErrModelDir, []string{"config.json", "model.safetensors", "tokenizer.json"}},
		{"no pooling config", map[string]string{"1_Pooling/config.json": "-"}, encoder.ErrModelDir, []string{"1_Pooling"}},
		{"unknown model_type", map[string]string{"config.json": editJSON(t, cfg, map[string]any{"model_type": "gpt9"})},
			encoder.ErrUnsupported, []string{"gpt9", "bert"}},
		{"unknown activation", map[string]string{"config.json": editJSON(t, cfg, map[string]any{"hidden_act": "swoosh"})},
			encoder.ErrUnsupported, []string{"swoosh", "hidden_act"}},
		{"bad hidden size", map[string]string{"config.json": editJSON(t, cfg, map[string]any{"hidden_size": 33})},
			encoder.ErrConfig, []string{"hidden_size"}},
		{"negative layer_norm_eps", map[string]string{"config.json": editJSON(t, cfg, map[string]any{"layer_norm_eps": -1})},
			encoder.ErrConfig, []string{"layer_norm_eps", "config.json"}},
		{"zero layer_norm_eps", map[string]string{"config.json": editJSON(t, cfg, map[string]any{"layer_norm_eps": 0})},
			encoder.ErrConfig, []string{"layer_norm_eps"}},
		{"NaN layer_norm_eps", map[string]string{"config.json": strings.Replace(editJSON(t, cfg, map[string]any{"layer_norm_eps": 1}), `"layer_norm_eps":1`, `"layer_norm_eps":NaN`, 1)},
			encoder.ErrConfig, []string{"config.json"}},
		{"missing layers", map[string]string{"config.json": editJSON(t, cfg, map[string]any{"num_hidden_layers": nil})},
			encoder.ErrConfig, []string{"num_hidden_layers"}},
		{"more layers than weights", map[string]string{"config.json": editJSON(t, cfg, map[string]any{"num_hidden_layers": 3})},
			encoder.ErrWeights, []string{"encoder.layer.2."}},
		{"unknown module", map[string]string{"modules.json": `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
			{"idx":2,"name":"2","path":"2_LayerNorm","type":"sentence_transformers.models.LayerNorm"}]`}, encoder.ErrUnsupported, []string{"LayerNorm", "Dense, Normalize"}},
		{"dense without config", map[string]string{"modules.json": denseModules}, encoder.ErrModelDir, []string{"2_Dense"}},
		{"dense width", map[string]string{"modules.json": denseModules,
			"2_Dense/config.json": `{"in_features": 16, "out_features": 8, "bias": true, "activation_function": "torch.nn.modules.activation.Tanh"}`},
			encoder.ErrConfig, []string{"in_features 16"}},
		{"dense activation", map[string]string{"modules.json": denseModules,
			"2_Dense/config.json": `{"in_features": 32, "out_features": 8, "activation_function": "torch.nn.modules.activation.Softplus"}`},
			encoder.ErrUnsupported, []string{"Softplus", "Tanh"}},
		{"dense before pooling", map[string]string{"modules.json": `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			{"idx":1,"name":"1","path":"2_Dense","type":"sentence_transformers.models.Dense"},
			{"idx":2,"name":"2","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]`}, encoder.ErrUnsupported, []string{"after Pooling"}},
		{"splade without mlm", map[string]string{"modules.json": `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			{"idx":1,"name":"1","path":"1_SpladePooling","type":"sentence_transformers.sparse_encoder.models.SpladePooling"}]`}, encoder.ErrUnsupported, []string{"MLMTransformer"}},
		{"bad pooling mode", map[string]string{"1_Pooling/config.json": `{"pooling_mode": "median"}`}, encoder.ErrUnsupported, []string{"median"}},
		{"no pooling mode", map[string]string{"1_Pooling/config.json": `{"pooling_mode_mean_tokens": false}`}, encoder.ErrConfig, []string{"pooling"}},
		{"pooling width", map[string]string{"1_Pooling/config.json": `{"pooling_mode": "mean", "word_embedding_dimension": 64}`}, encoder.ErrConfig, []string{"64"}},
		{"bad default prompt", map[string]string{"config_sentence_transformers.json": `{"prompts": {"q": "x"}, "default_prompt_name": "query"}`},
			encoder.ErrConfig, []string{"default_prompt_name"}},
		{"broken json", map[string]string{"sentence_bert_config.json": `{"max_seq_length": `}, encoder.ErrConfig, []string{"sentence_bert_config.json"}},
		{"broken tokenizer", map[string]string{"tokenizer.json": `{"model": `}, nil, []string{"tokenizer.json"}},
		{"broken weights", map[string]string{"model.safetensors": "\x08\x00\x00\x00\x00\x00\x00\x00{}"}, encoder.ErrWeights, []string{"model.safetensors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := encoder.Load(variant(t, src, c.edits))
			if err == nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	if _, err := encoder.Load(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, encoder.ErrModelDir) {
		t.Errorf("absent directory: %v", err)
	}
}

// TestPlainTransformersDir loads a directory without the
// sentence-transformers files: mean pooling, no normalisation, and a note.
func TestPlainTransformersDir(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	dir := variant(t, src, map[string]string{"modules.json": "-", "1_Pooling/config.json": "-",
		"sentence_bert_config.json": "-", "config_sentence_transformers.json": "-"})
	plain := load(t, dir)
	st := load(t, src)
	info := plain.Info()
	if info.Pooling != "mean" || info.Normalize || len(info.Notes) == 0 || info.MaxSeqLen != 512 {
		t.Fatalf("plain info: %+v", info)
	}
	a, b := embedTexts(t, plain, sampleTexts), embedTexts(t, st, sampleTexts)
	dim := st.Dim()
	for i := range sampleTexts {
		// tiny-bert is mean pooling + Normalize: the plain vectors must be
		// the same up to length.
		if c := cosine(a[i*dim:i*dim+dim], b[i*dim:i*dim+dim]); c < 0.9999999 {
			t.Errorf("text %d: cosine %v between plain and sentence-transformers loading", i, c)
		}
	}
}

// TestPrefixedTensorNames rewrites tiny-bert's checkpoint with "bert."
// prefixed names, as BertForMaskedLM checkpoints store them; the model must
// load and give bit-identical embeddings.
func TestPrefixedTensorNames(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	dir := variant(t, src, map[string]string{"model.safetensors": "-"})
	ck, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	header := map[string]any{}
	var data []byte
	for _, name := range ck.Names() {
		info, _ := ck.Info(name)
		raw, err := ck.Raw(name)
		if err != nil {
			t.Fatal(err)
		}
		header["bert."+name] = map[string]any{"dtype": info.DType, "shape": info.Shape, "data_offsets": []int{len(data), len(data) + len(raw)}}
		data = append(data, raw...)
	}
	hj, _ := json.Marshal(header)
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(hj)))
	file = append(append(file, hj...), data...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	a, b := embedTexts(t, load(t, dir), sampleTexts), embedTexts(t, load(t, src), sampleTexts)
	if !slices.Equal(a, b) {
		t.Fatal("prefixed checkpoint gives different embeddings")
	}
}

func TestMaxSeqLenCapped(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	m := load(t, variant(t, src, map[string]string{"sentence_bert_config.json": `{"max_seq_length": 100000}`}))
	if m.MaxSeqLen() != 512 || len(m.Info().Notes) == 0 {
		t.Fatalf("MaxSeqLen %d, notes %v", m.MaxSeqLen(), m.Info().Notes)
	}
	long := strings.Repeat("word ", 2000)
	ids, truncated := m.TokenizeTo(nil, long, "", 0)
	if len(ids) != 512 || !truncated {
		t.Fatalf("%d ids, truncated %v", len(ids), truncated)
	}
	ids, _ = m.TokenizeTo(nil, long, "", 100000)
	if len(ids) != 512 {
		t.Fatalf("maxLen beyond the position table: %d ids", len(ids))
	}
	out := make([]float32, m.Dim())
	if err := m.Embed(context.Background(), []string{long}, "", out); err != nil {
		t.Fatal(err)
	}
}

// TestDoLowerCase: sentence_bert_config.json's do_lower_case lower-cases
// the text before a cased tokenizer sees it.
func TestDoLowerCase(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	cased, err := os.ReadFile(filepath.Join(refs.Shared(t), "refs", "tokenizers", "bert-cased-variant.tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	plain := load(t, variant(t, src, map[string]string{"tokenizer.json": string(cased)}))
	lower := load(t, variant(t, src, map[string]string{"tokenizer.json": string(cased),
		"sentence_bert_config.json": `{"max_seq_length": 128, "do_lower_case": true}`}))
	const text = "Paris Is The Capital"
	a, _ := plain.TokenizeTo(nil, text, "", 0)
	b, _ := plain.TokenizeTo(nil, strings.ToLower(text), "", 0)
	c, _ := lower.TokenizeTo(nil, text, "", 0)
	if slices.Equal(a, b) {
		t.Fatalf("the cased tokenizer gives the same ids for both cases: %v", a)
	}
	if !slices.Equal(c, b) {
		t.Fatalf("do_lower_case: ids %v, want those of the lower-cased text %v", c, b)
	}
}

// TestNonFiniteEmbeddingIsAnError loads tiny-bert with a NaN in one weight
// of the embedding LayerNorm: every embedding is NaN, and Embed must say so
// instead of handing the NaNs out as results.
func TestNonFiniteEmbeddingIsAnError(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	b, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hlen], &hdr); err != nil {
		t.Fatal(err)
	}
	var ti struct {
		Dtype   string  `json:"dtype"`
		Offsets []int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(hdr["embeddings.LayerNorm.weight"], &ti); err != nil || ti.Dtype != "F32" {
		t.Fatalf("embeddings.LayerNorm.weight: %s, %v", hdr["embeddings.LayerNorm.weight"], err)
	}
	bad := bytes.Clone(b)
	binary.LittleEndian.PutUint32(bad[8+int64(hlen)+ti.Offsets[0]:], math.Float32bits(float32(math.NaN())))
	m := load(t, variant(t, src, map[string]string{"model.safetensors": string(bad)}))
	defer m.Close()
	out := make([]float32, m.Dim())
	err = m.Embed(context.Background(), []string{"hello"}, "", out)
	if !errors.Is(err, encoder.ErrNonFinite) {
		t.Fatalf("Embed of a NaN model: err = %v, want ErrNonFinite", err)
	}
}

// denseModules is a modules.json with a Dense module after the pooling.
const denseModules = `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
	{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
	{"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]`

// TestModulePathWithDots loads a model whose pooling module lives in a
// directory named pool..x: a ".." inside a name is not a parent directory.
// A path with a ".." element is still refused.
func TestModulePathWithDots(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	pool, err := os.ReadFile(filepath.Join(src, "1_Pooling", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	mods := func(p string) string {
		return `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			{"idx":1,"name":"1","path":"` + p + `","type":"sentence_transformers.models.Pooling"}]`
	}
	m, err := encoder.Load(variant(t, src, map[string]string{"pool..x/config.json": string(pool), "modules.json": mods("pool..x")}))
	if err != nil {
		t.Fatalf("module directory pool..x: %v", err)
	}
	m.Close()
	if _, err := encoder.Load(variant(t, src, map[string]string{"modules.json": mods("../1_Pooling")})); !errors.Is(err, encoder.ErrConfig) {
		t.Fatalf("module path ../1_Pooling: err = %v, want ErrConfig", err)
	}
}
