package arch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// naiveBERT is a float64 transcription of transformers' BertModel forward
// for one unpadded sequence, written for clarity, not speed. It checks the
// activations the shared refs do not cover (relu, gelu_pytorch_tanh).
func naiveBERT(t *testing.T, ck *safetensors.Checkpoint, cfg map[string]any, ids []int32) [][]float64 {
	t.Helper()
	x, _ := naiveBERTProbs(t, ck, cfg, ids)
	return x
}

// naiveBERTProbs is naiveBERT also returning the attention probabilities,
// probs[layer][head][query][key].
func naiveBERTProbs(t *testing.T, ck *safetensors.Checkpoint, cfg map[string]any, ids []int32) (_ [][]float64, probs [][][][]float64) {
	t.Helper()
	H := int(cfg["hidden_size"].(float64))
	L := int(cfg["num_hidden_layers"].(float64))
	nh := int(cfg["num_attention_heads"].(float64))
	I := int(cfg["intermediate_size"].(float64))
	eps := cfg["layer_norm_eps"].(float64)
	act := cfg["hidden_act"].(string)
	get := func(name string) []float32 {
		v, err := ck.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	lin := func(x []float64, name string, out int) []float64 {
		w, b := get(name+".weight"), get(name+".bias")
		in := len(x)
		y := make([]float64, out)
		for o := range y {
			s := float64(b[o])
			for i, v := range x {
				s += float64(w[o*in+i]) * v
			}
			y[o] = s
		}
		return y
	}
	ln := func(x []float64, name string) []float64 {
		g, b := get(name+".weight"), get(name+".bias")
		var mean, vs float64
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			vs += (v - mean) * (v - mean)
		}
		inv := 1 / math.Sqrt(vs/float64(len(x))+eps)
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = (v-mean)*inv*float64(g[i]) + float64(b[i])
		}
		return y
	}
	f := func(x float64) float64 {
		switch act {
		case "relu":
			return math.Max(x, 0)
		case "gelu_pytorch_tanh", "gelu_new":
			return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
		default:
			return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
		}
	}
	word, pos, typ := get("embeddings.word_embeddings.weight"), get("embeddings.position_embeddings.weight"), get("embeddings.token_type_embeddings.weight")
	n := len(ids)
	x := make([][]float64, n)
	for i, id := range ids {
		e := make([]float64, H)
		for j := range e {
			e[j] = float64(word[int(id)*H+j]) + float64(typ[j]) + float64(pos[i*H+j])
		}
		x[i] = ln(e, "embeddings.LayerNorm")
	}
	hd := H / nh
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for i := range x {
			q[i] = lin(x[i], p+"attention.self.query", H)
			k[i] = lin(x[i], p+"attention.self.key", H)
			v[i] = lin(x[i], p+"attention.self.value", H)
		}
		next := make([][]float64, n)
		lp := make([][][]float64, nh)
		for h := range lp {
			lp[h] = make([][]float64, n)
		}
		probs = append(probs, lp)
		for i := range x {
			ctx := make([]float64, H)
			for h := 0; h < nh; h++ {
				w := make([]float64, n)
				mx, sum := math.Inf(-1), 0.0
				for j := range w {
					for c := 0; c < hd; c++ {
						w[j] += q[i][h*hd+c] * k[j][h*hd+c]
					}
					w[j] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, w[j])
				}
				for j := range w {
					w[j] = math.Exp(w[j] - mx)
					sum += w[j]
				}
				lp[h][i] = make([]float64, n)
				for j := range w {
					lp[h][i][j] = w[j] / sum
				}
				for j := range w {
					for c := 0; c < hd; c++ {
						ctx[h*hd+c] += w[j] / sum * v[j][h*hd+c]
					}
				}
			}
			a := lin(ctx, p+"attention.output.dense", H)
			for j := range a {
				a[j] += x[i][j]
			}
			a = ln(a, p+"attention.output.LayerNorm")
			u := lin(a, p+"intermediate.dense", I)
			for j := range u {
				u[j] = f(u[j])
			}
			o := lin(u, p+"output.dense", H)
			for j := range o {
				o[j] += a[j]
			}
			next[i] = ln(o, p+"output.LayerNorm")
		}
		x = next
	}
	return x, probs
}

// TestBERTActivations runs tiny-bert with each supported hidden_act against
// the float64 transcription.
func TestBERTActivations(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-bert")
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	ids := []int32{101, 1996, 2924, 1997, 1996, 2314, 2001, 8494, 2100, 1012, 102}
	for _, act := range []string{"gelu", "gelu_new", "gelu_pytorch_tanh", "relu"} {
		t.Run(act, func(t *testing.T) {
			var m map[string]any
			json.Unmarshal(raw, &m)
			m["hidden_act"] = act
			b, _ := json.Marshal(m)
			cfg, err := arch.ParseConfig("config.json", b)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := arch.Build(cfg, ck)
			if err != nil {
				t.Fatal(err)
			}
			H := enc.Hidden()
			got := make([]float32, len(ids)*H)
			if err := enc.Forward(context.Background(), &arch.Scratch{}, ids, []int{0, len(ids)}, got); err != nil {
				t.Fatal(err)
			}
			want := naiveBERT(t, ck, m, ids)
			worst := 0.0
			for i := range want {
				for j, w := range want[i] {
					worst = math.Max(worst, math.Abs(float64(got[i*H+j])-w))
				}
			}
			if worst > 2e-5 {
				t.Errorf("%s: max abs diff %.3g against the float64 transcription", act, worst)
			}
		})
	}
}
