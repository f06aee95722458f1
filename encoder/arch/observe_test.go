package arch_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// recorder is an Observer keeping copies of everything it is shown.
type recorder struct {
	states map[int][]float32
	probs  map[[3]int][]float32 // layer, seq, head
	kv     map[[3]int]int
	masks  map[int]arch.Mask
	routes map[int][]int32
	rw     map[int][]float32
	k      int
}

func newRecorder() *recorder {
	return &recorder{states: map[int][]float32{}, probs: map[[3]int][]float32{}, kv: map[[3]int]int{},
		masks: map[int]arch.Mask{}, routes: map[int][]int32{}, rw: map[int][]float32{}}
}

func (r *recorder) States(stage int, x []float32, starts []int, hidden int) {
	r.states[stage] = slices.Clone(x[:starts[len(starts)-1]*hidden])
}

func (r *recorder) Attention(layer, seq, head, kvHead int, mask arch.Mask, probs []float32, n int) {
	key := [3]int{layer, seq, head}
	r.probs[key] = slices.Clone(probs[:n*n])
	r.kv[key] = kvHead
	r.masks[layer] = mask
}

func (r *recorder) Routes(layer int, experts []int32, weights []float32, k int) {
	r.routes[layer] = slices.Clone(experts)
	r.rw[layer] = slices.Clone(weights)
	r.k = k
}

func buildModel(t *testing.T, name string) arch.Encoder {
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
	defer ck.Close()
	enc, err := arch.Build(cfg, ck)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestObserverEveryArch runs a two-sequence batch through every
// architecture with and without an Observer: the outputs must be the same
// bits, every attention row must sum to 1 and be zero where the mask
// forbids, and the last observed states must be Forward's output.
func TestObserverEveryArch(t *testing.T) {
	for _, name := range []string{"tiny-bert", "tiny-xlmr", "tiny-mpnet", "tiny-modernbert", "tiny-qwen3", "tiny-qwen3-moe"} {
		t.Run(name, func(t *testing.T) {
			enc := buildModel(t, name)
			d := enc.Describe()
			// 21 tokens: longer than half of tiny-modernbert's window of 16,
			// so its sliding layers have forbidden keys.
			ids := []int32{5, 17, 42, 99, 7, 8, 150, 3, 64, 11, 12, 13, 14, 15, 16, 200, 201, 202, 203, 204, 205, 9, 10, 30, 31, 32}
			starts := []int{0, 21, len(ids)}
			H := enc.Hidden()
			plain := make([]float32, len(ids)*H)
			if err := enc.Forward(context.Background(), &arch.Scratch{}, ids, starts, plain); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			got := make([]float32, len(ids)*H)
			if err := enc.Forward(context.Background(), &arch.Scratch{Observer: rec}, ids, starts, got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(plain, got) {
				t.Fatal("the observed forward pass changed the output")
			}
			if !slices.Equal(rec.states[d.Layers], got) {
				t.Errorf("states of stage %d (the last) differ from the output", d.Layers)
			}
			if len(rec.states) != d.Layers+1 {
				t.Errorf("%d stages observed, want %d", len(rec.states), d.Layers+1)
			}
			if want := d.Layers * d.Heads * 2; len(rec.probs) != want {
				t.Fatalf("%d heads observed, want %d", len(rec.probs), want)
			}
			forbidden := 0
			for key, p := range rec.probs {
				n := starts[key[1]+1] - starts[key[1]]
				mask := rec.masks[key[0]]
				if want := key[2] / (d.Heads / d.KVHeads); rec.kv[key] != want {
					t.Errorf("layer %d head %d: kv head %d, want %d", key[0], key[2], rec.kv[key], want)
				}
				for i := 0; i < n; i++ {
					lo, hi := mask.Range(i, n)
					sum := 0.0
					for j := 0; j < n; j++ {
						v := p[i*n+j]
						if j < lo || j >= hi {
							forbidden++
							if v != 0 {
								t.Fatalf("layer %d seq %d head %d: p[%d][%d] = %g where the mask forbids", key[0], key[1], key[2], i, j, v)
							}
						}
						if v < 0 || math.IsNaN(float64(v)) {
							t.Fatalf("layer %d head %d: p[%d][%d] = %g", key[0], key[2], i, j, v)
						}
						sum += float64(v)
					}
					if math.Abs(sum-1) > 1e-5 {
						t.Fatalf("layer %d seq %d head %d: row %d sums to %.8f", key[0], key[1], key[2], i, sum)
					}
				}
			}
			switch name {
			case "tiny-qwen3", "tiny-qwen3-moe":
				for l := 0; l < d.Layers; l++ {
					if !rec.masks[l].Causal {
						t.Errorf("layer %d of a decoder is not causal", l)
					}
				}
				if d.KVHeads == d.Heads {
					t.Errorf("%s is expected to use grouped-query attention", name)
				}
			case "tiny-modernbert":
				// layer_types: full, sliding, sliding with local_attention 16.
				if rec.masks[0].Window != 0 || rec.masks[1].Window != 16 || rec.masks[2].Window != 16 {
					t.Errorf("masks %+v, want full, window 16, window 16", rec.masks)
				}
			default:
				if forbidden != 0 {
					t.Errorf("%d forbidden entries in a bidirectional model", forbidden)
				}
			}
			if name == "tiny-modernbert" && forbidden == 0 {
				t.Error("no key was outside a sliding window")
			}
			if name == "tiny-qwen3-moe" {
				if len(rec.routes) == 0 {
					t.Fatal("no routes observed")
				}
				for l, ex := range rec.routes {
					w := rec.rw[l]
					if len(ex) != len(ids)*rec.k {
						t.Fatalf("layer %d: %d routes for %d tokens × %d", l, len(ex), len(ids), rec.k)
					}
					for i, e := range ex {
						if e < 0 || e >= 4 || w[i] <= 0 || w[i] > 1 {
							t.Fatalf("layer %d route %d: expert %d weight %g", l, i, e, w[i])
						}
					}
				}
			}
		})
	}
}

// TestObserverBERTAgainstFloat64 compares the attention probabilities of
// one text on tiny-bert with those of the float64 transcription of
// BertModel computed from the raw weights.
func TestObserverBERTAgainstFloat64(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-bert")
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	enc := buildModel(t, "tiny-bert")
	// [CLS] the river bank flooded . [SEP] in bert-base-uncased ids.
	ids := []int32{101, 1996, 2314, 2924, 10361, 1012, 102}
	rec := newRecorder()
	out := make([]float32, len(ids)*enc.Hidden())
	if err := enc.Forward(context.Background(), &arch.Scratch{Observer: rec}, ids, []int{0, len(ids)}, out); err != nil {
		t.Fatal(err)
	}
	_, want := naiveBERTProbs(t, ck, cfg, ids)
	n := len(ids)
	worst := 0.0
	for l := range want {
		for h := range want[l] {
			got := rec.probs[[3]int{l, 0, h}]
			if got == nil {
				t.Fatalf("layer %d head %d not observed", l, h)
			}
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					worst = math.Max(worst, math.Abs(float64(got[i*n+j])-want[l][h][i][j]))
				}
			}
		}
	}
	t.Logf("max abs diff of %d layers' probabilities against float64: %.3g", len(want), worst)
	if worst > 1e-6 {
		t.Errorf("max abs diff %.3g > 1e-6 against the float64 transcription", worst)
	}
}
