package encoder_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// TestPoolingModes checks every pooling mode, in both config forms, against
// pooling computed here from the token embeddings.
func TestPoolingModes(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	noNorm := `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
		{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.sentence_transformer.modules.pooling.Pooling"}]`
	// expect pools the n×h token matrix tok by one mode.
	expect := func(mode string, tok []float32, n, h int) []float64 {
		out := make([]float64, h)
		for j := 0; j < h; j++ {
			switch mode {
			case "cls":
				out[j] = float64(tok[j])
			case "lasttoken":
				out[j] = float64(tok[(n-1)*h+j])
			case "max":
				out[j] = math.Inf(-1)
				for k := 0; k < n; k++ {
					out[j] = math.Max(out[j], float64(tok[k*h+j]))
				}
			default:
				var s, ws float64
				for k := 0; k < n; k++ {
					w := 1.0
					if mode == "weightedmean" {
						w = float64(k + 1)
					}
					s += w * float64(tok[k*h+j])
					ws += w
				}
				switch mode {
				case "mean":
					out[j] = s / ws
				case "mean_sqrt_len_tokens":
					out[j] = s / math.Sqrt(float64(n))
				default:
					out[j] = s / ws
				}
			}
		}
		return out
	}
	cases := []struct {
		name, config string
		modes        []string
	}{
		{"new cls", `{"pooling_mode": "cls", "embedding_dimension": 32}`, []string{"cls"}},
		{"new max", `{"pooling_mode": "max"}`, []string{"max"}},
		{"new mean", `{"pooling_mode": "mean"}`, []string{"mean"}},
		{"new sqrt", `{"pooling_mode": "mean_sqrt_len_tokens"}`, []string{"mean_sqrt_len_tokens"}},
		{"new weighted", `{"pooling_mode": "weightedmean"}`, []string{"weightedmean"}},
		{"new last", `{"pooling_mode": "lasttoken"}`, []string{"lasttoken"}},
		{"new list", `{"pooling_mode": ["mean", "cls"]}`, []string{"cls", "mean"}},
		{"classic combo", `{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": true, "word_embedding_dimension": 32}`,
			[]string{"cls", "max", "mean"}},
		{"classic last", `{"pooling_mode_lasttoken": true, "pooling_mode_mean_tokens": false}`, []string{"lasttoken"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := load(t, variant(t, src, map[string]string{"modules.json": noNorm, "1_Pooling/config.json": c.config}))
			h := m.Hidden()
			if m.Dim() != h*len(c.modes) || m.Info().Normalize {
				t.Fatalf("Dim %d for %d modes of %d, normalize %v", m.Dim(), len(c.modes), h, m.Info().Normalize)
			}
			got := embedTexts(t, m, sampleTexts)
			for i, text := range sampleTexts {
				ids, _ := m.TokenizeTo(nil, text, "", 0)
				var b = batchOf(ids)
				tok := make([]float32, len(ids)*h)
				if err := m.TokenEmbeddingsBatch(context.Background(), b, tok); err != nil {
					t.Fatal(err)
				}
				row := got[i*m.Dim() : (i+1)*m.Dim()]
				for mi, mode := range c.modes {
					want := expect(mode, tok, len(ids), h)
					for j, w := range want {
						if d := math.Abs(float64(row[mi*h+j]) - w); d > 1e-6 {
							t.Fatalf("text %d mode %s dim %d: got %v, want %v", i, mode, j, row[mi*h+j], w)
						}
					}
				}
			}
		})
	}
}

// TestExcludedPromptPooling: with a Pooling module saying include_prompt
// false, the prompt's tokens are encoded but left out of the pooling, as
// sentence-transformers does: a prompted embedding equals the normalized
// mean of the same run's token embeddings without the prompt's
// PromptPoolSkip tokens, and differs from pooling every token.
func TestExcludedPromptPooling(t *testing.T) {
	src := refs.ModelDir(t, "tiny-bert")
	m := load(t, refs.ExcludedPromptVariant(t, src))
	if m.Info().IncludePrompt {
		t.Fatal("Info().IncludePrompt is true")
	}
	const prompt = "query: "
	skip := m.PromptPoolSkip(prompt)
	promptIDs, _ := m.TokenizeTo(nil, "", prompt, 0)
	if skip != len(promptIDs)-1 || skip < 2 {
		t.Fatalf("PromptPoolSkip %d, prompt alone tokenizes to %d ids", skip, len(promptIDs))
	}
	if load(t, src).PromptPoolSkip(prompt) != 0 {
		t.Fatal("tiny-bert (include_prompt true) skips prompt tokens")
	}
	h := m.Hidden()
	got := make([]float32, len(sampleTexts)*m.Dim())
	if err := m.Embed(context.Background(), sampleTexts, prompt, got); err != nil {
		t.Fatal(err)
	}
	for i, text := range sampleTexts {
		ids, _ := m.TokenizeTo(nil, text, prompt, 0)
		b := batchOf(ids)
		tok := make([]float32, len(ids)*h)
		if err := m.TokenEmbeddingsBatch(context.Background(), b, tok); err != nil {
			t.Fatal(err)
		}
		mean := func(from int) []float32 {
			out := make([]float32, h)
			for j := range out {
				var s float64
				for k := from; k < len(ids); k++ {
					s += float64(tok[k*h+j])
				}
				out[j] = float32(s / float64(len(ids)-from))
			}
			encoder.Normalize(out)
			return out
		}
		want, all := mean(skip), mean(0)
		row := got[i*m.Dim() : (i+1)*m.Dim()]
		if d := maxAbs(row, want); d > 1e-6 {
			t.Fatalf("text %d: prompted embedding differs from pooling without the prompt by %g", i, d)
		}
		if d := maxAbs(row, all); d < 1e-4 {
			t.Fatalf("text %d: prompted embedding equals pooling with the prompt (diff %g): the skip did nothing", i, d)
		}
	}
	// A max length that leaves nothing but the prompt is refused, naming
	// the sequence.
	var b encoder.Batch
	b.Reset()
	if _, err := m.AppendTo(&b, "text", prompt, skip); err != nil {
		t.Fatal(err)
	}
	if err := m.EmbedBatch(context.Background(), &b, make([]float32, m.Dim())); !errors.Is(err, encoder.ErrInput) {
		t.Fatalf("prompt-only sequence: %v, want ErrInput", err)
	}
}
