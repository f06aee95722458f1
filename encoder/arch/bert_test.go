package arch_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// loadEncoder builds the encoder of a shared model directory.
func loadEncoder(t *testing.T, dir string) arch.Encoder {
	t.Helper()
	cfg, err := arch.ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	enc, err := arch.Build(cfg, ck)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestBERTTokenEmbeddings runs the reference input ids of the first 48
// corpus texts, all in one unpadded batch, and compares every token vector
// with the transformers float64 reference.
func TestBERTTokenEmbeddings(t *testing.T) {
	for _, name := range []string{"tiny-bert", "tiny-bert-bf16-cls", "tiny-bert-f16-max-sharded"} {
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

func TestBERTRejectsBadInput(t *testing.T) {
	enc := loadEncoder(t, refs.ModelDir(t, "tiny-bert"))
	H := enc.Hidden()
	s := &arch.Scratch{}
	ctx := context.Background()
	cases := map[string]struct {
		ids    []int32
		starts []int
		dst    int
	}{
		"id out of range": {[]int32{101, 1 << 30, 102}, []int{0, 3}, 3 * H},
		"negative id":     {[]int32{101, -1, 102}, []int{0, 3}, 3 * H},
		"bad starts":      {[]int32{101, 102}, []int{0, 3}, 3 * H},
		"short dst":       {[]int32{101, 102}, []int{0, 2}, H},
		"too long":        {make([]int32, 513), []int{0, 513}, 513 * H},
	}
	for name, c := range cases {
		err := enc.Forward(ctx, s, c.ids, c.starts, make([]float32, c.dst))
		if !errors.Is(err, arch.ErrInput) {
			t.Errorf("%s: got %v, want ErrInput", name, err)
		}
	}
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}
