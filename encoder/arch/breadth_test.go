package arch_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// TestBreadthTokenEmbeddings runs the reference input ids of the first 48
// corpus texts of every non-BERT shared model through the encoder, in one
// unpadded batch, and compares every token vector with the transformers
// float64 reference. (Package encoder checks pooled embeddings and
// tokenization over all rows.)
func TestBreadthTokenEmbeddings(t *testing.T) {
	for _, name := range []string{"tiny-xlmr", "tiny-mpnet", "tiny-modernbert", "tiny-qwen3", "tiny-qwen3-moe"} {
		t.Run(name, func(t *testing.T) {
			enc := loadEncoder(t, refs.ModelDir(t, name))
			rows := refs.Read[refs.Row](t, name+".parquet")
			toks := refs.Read[refs.TokenRow](t, name+".token_embeddings.parquet")
			var ids []int32
			starts := []int{0}
			for i := range toks {
				if int(toks[i].NTokens) != len(rows[i].InputIDs) {
					t.Fatalf("row %d: %d reference tokens, %d input ids", i, toks[i].NTokens, len(rows[i].InputIDs))
				}
				ids = append(ids, rows[i].InputIDs...)
				starts = append(starts, len(ids))
			}
			H := enc.Hidden()
			dst := make([]float32, len(ids)*H)
			if err := enc.Forward(context.Background(), &arch.Scratch{}, ids, starts, dst); err != nil {
				t.Fatal(err)
			}
			worst, minCos := 0.0, 1.0
			for i := range toks {
				got := dst[starts[i]*H : starts[i+1]*H]
				for j, want := range toks[i].Values {
					worst = math.Max(worst, math.Abs(float64(got[j])-float64(want)))
				}
				for k := 0; k < int(toks[i].NTokens); k++ {
					minCos = math.Min(minCos, cosine(got[k*H:k*H+H], toks[i].Values[k*H:k*H+H]))
				}
			}
			t.Logf("%s: %d tokens, max abs diff %.3g, min cosine %.9f", name, len(ids), worst, minCos)
			if worst > 2e-5 || minCos < 0.999999 {
				t.Errorf("%s: max abs diff %.3g (bound 2e-5), min cosine %.9f (bound 0.999999)", name, worst, minCos)
			}
		})
	}
}

// TestDecoderConfigErrors checks that configs the decoders cannot run are
// refused at build time with the key named, before any weight is read.
func TestDecoderConfigErrors(t *testing.T) {
	base := `"model_type": %q, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "head_dim": 16,
		"intermediate_size": 128, "max_position_embeddings": 512, "vocab_size": 3000`
	cases := []struct {
		mt, extra, key string
		err            error
	}{
		{"qwen3", `"num_key_value_heads": 3`, "num_key_value_heads", arch.ErrConfig},
		{"qwen3", `"use_sliding_window": true`, "use_sliding_window", arch.ErrUnsupported},
		{"qwen3", `"layer_types": ["full_attention", "sliding_attention"]`, "layer_types", arch.ErrUnsupported},
		{"qwen3", `"rope_parameters": {"rope_theta": 1e6, "rope_type": "yarn"}`, "rope_parameters", arch.ErrUnsupported},
		{"qwen3", `"head_dim": 15`, "head_dim", arch.ErrConfig},
		{"qwen3_moe", `"num_experts": 4, "num_experts_per_tok": 5, "moe_intermediate_size": 32`, "num_experts_per_tok", arch.ErrConfig},
		{"qwen3_moe", `"num_experts_per_tok": 2, "moe_intermediate_size": 32`, "num_local_experts", arch.ErrConfig},
		{"modernbert", `"layer_types": ["full_attention"]`, "layer_types", arch.ErrConfig},
		{"mpnet", `"pad_token_id": 600`, "max_position_embeddings", arch.ErrConfig},
	}
	for _, c := range cases {
		js := "{" + fmt.Sprintf(base, c.mt) + ", " + c.extra + "}"
		// A later key overrides an earlier one in encoding/json.
		cfg, err := arch.ParseConfig("config.json", []byte(js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		_, err = arch.Build(cfg, nil)
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s %s: err = %v, want %v naming %s", c.mt, c.extra, err, c.err, c.key)
		}
	}
}

// breadthBatch returns the reference ids of the first n rows of name's refs
// as one batch.
func breadthBatch(t testing.TB, name string, n int) ([]int32, []int) {
	t.Helper()
	rows := refs.Read[refs.Row](t, name+".parquet")
	var ids []int32
	starts := []int{0}
	for _, r := range rows[:n] {
		ids = append(ids, r.InputIDs...)
		starts = append(starts, len(ids))
	}
	return ids, starts
}

// TestBreadthForwardAllocs checks that a Forward call with a warmed Scratch
// allocates nothing: all working memory is in the Scratch or pooled.
func TestBreadthForwardAllocs(t *testing.T) {
	for _, name := range []string{"tiny-xlmr", "tiny-mpnet", "tiny-modernbert", "tiny-qwen3", "tiny-qwen3-moe"} {
		enc := loadEncoder(t, refs.ModelDir(t, name))
		ids, starts := breadthBatch(t, name, 16)
		dst := make([]float32, len(ids)*enc.Hidden())
		s := &arch.Scratch{}
		ctx := context.Background()
		run := func() {
			if err := enc.Forward(ctx, s, ids, starts, dst); err != nil {
				t.Fatal(err)
			}
		}
		run()
		// A garbage collection during the runs may empty a sync.Pool and
		// cost one allocation; anything steady is a defect.
		if a := testing.AllocsPerRun(20, run); a > 0.5 {
			t.Errorf("%s: %.2f allocations per Forward", name, a)
		}
	}
}

// BenchmarkBreadthForward encodes the first 48 reference texts of each
// model as one batch and reports tokens per second.
func BenchmarkBreadthForward(b *testing.B) {
	for _, name := range []string{"tiny-xlmr", "tiny-mpnet", "tiny-modernbert", "tiny-qwen3", "tiny-qwen3-moe"} {
		b.Run(name, func(b *testing.B) {
			enc := buildWith(b, name, func(w arch.Weights) arch.Weights { return w })
			ids, starts := breadthBatch(b, name, 48)
			dst := make([]float32, len(ids)*enc.Hidden())
			s := &arch.Scratch{}
			b.ReportAllocs()
			for b.Loop() {
				if err := enc.Forward(context.Background(), s, ids, starts, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(ids))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
