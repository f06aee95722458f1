package encoder_test

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/embedpipe/embedpipe/encoder"
)

// The bundled tiny-bert model (random weights, BERT shape) keeps the
// examples runnable without the shared material.
const tinyBERT = "../testdata/tiny-bert"

// Example_bank shows what "contextual" means: the token "bank" has one
// static word-embedding row, but the encoder turns it into different vectors
// in a sentence about a river and one about money.
func Example_bank() {
	ctx := context.Background()
	m, err := encoder.Load(tinyBERT)
	if err != nil {
		fmt.Println(err)
		return
	}
	bank, _ := m.Tokenizer().TokenToID("bank")
	var b encoder.Batch
	for _, s := range []string{"The bank of the river was muddy.", "She deposited money at the bank."} {
		ids, _ := m.TokenizeTo(nil, s, "", 0)
		b.Add(ids)
	}
	h := m.Hidden()
	tok := make([]float32, b.Tokens()*h)
	if err := m.TokenEmbeddingsBatch(ctx, &b, tok); err != nil {
		fmt.Println(err)
		return
	}
	// The contextual vector of "bank" in each sentence.
	var vecs [2][]float32
	for i := range 2 {
		k := slices.Index(b.Seq(i), bank)
		o := b.Starts[i] + k
		vecs[i] = tok[o*h : (o+1)*h]
	}
	static1, _ := m.WordEmbeddingTo(nil, b.Seq(0)[slices.Index(b.Seq(0), bank)])
	static2, _ := m.WordEmbeddingTo(nil, b.Seq(1)[slices.Index(b.Seq(1), bank)])
	c := cos(vecs[0], vecs[1])
	fmt.Println("static rows identical:", slices.Equal(static1, static2))
	fmt.Printf("contextual cosine: %.2f\n", c)
	fmt.Println("contextual vectors differ:", c < 0.95)
	// Output:
	// static rows identical: true
	// contextual cosine: 0.83
	// contextual vectors differ: true
}

// ExampleModel_EmbedBatch embeds two texts through a reusable Batch into a
// caller-owned row-major matrix.
func ExampleModel_EmbedBatch() {
	m, err := encoder.Load(tinyBERT)
	if err != nil {
		fmt.Println(err)
		return
	}
	var b encoder.Batch
	for _, s := range []string{"Hello, world!", "Vectors for every row."} {
		if _, err := m.AppendTo(&b, s, "", 0); err != nil {
			fmt.Println(err)
			return
		}
	}
	out := make([]float32, b.Len()*m.Dim())
	if err := m.EmbedBatch(context.Background(), &b, out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sequences:", b.Len(), "dim:", m.Dim())
	fmt.Printf("norm of row 0: %.3f\n", norm(out[:m.Dim()]))
	// Output:
	// sequences: 2 dim: 32
	// norm of row 0: 1.000
}

// ExampleLoad prints what Load found in a sentence-transformers directory.
func ExampleLoad() {
	m, err := encoder.Load(tinyBERT)
	if err != nil {
		fmt.Println(err)
		return
	}
	i := m.Info()
	fmt.Println(i.Arch, i.ModelType, i.Layers, "layers", i.Heads, "heads")
	fmt.Println("pooling:", i.Pooling, "normalize:", i.Normalize, "max length:", m.MaxSeqLen())
	// Output:
	// BertModel bert 2 layers 4 heads
	// pooling: mean normalize: true max length: 128
}

// ExampleModel_Embed embeds texts in one call; the model tokenizes and
// batches them itself.
func ExampleModel_Embed() {
	m, err := encoder.Load(tinyBERT)
	if err != nil {
		fmt.Println(err)
		return
	}
	texts := []string{"a cat sat on the mat", "a cat sat on the mat", "stock prices fell"}
	out := make([]float32, len(texts)*m.Dim())
	if err := m.Embed(context.Background(), texts, "", out); err != nil {
		fmt.Println(err)
		return
	}
	d := m.Dim()
	fmt.Println("identical texts, identical vectors:", slices.Equal(out[:d], out[d:2*d]))
	// Output:
	// identical texts, identical vectors: true
}

func norm(v []float32) float64 { return math.Sqrt(dot(v, v)) }

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func cos(a, b []float32) float64 { return dot(a, b) / (norm(a) * norm(b)) }
