package encoder_test

import (
	"context"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// TestPrefixCache embeds Qwen3 queries behind the model's instruction
// prompt in batches, where the prompt's ids are encoded once per batch,
// and compares them with the same batches encoded without the cache and
// with each query encoded alone: every component within 1e-6. It also
// compares the token embeddings of a batch, prefix rows included.
func TestPrefixCache(t *testing.T) {
	for _, name := range []string{"tiny-qwen3", "tiny-qwen3-moe"} {
		t.Run(name, func(t *testing.T) {
			dir := refs.ModelDir(t, name)
			rows := refs.Read[refs.Row](t, name+".parquet")
			cached := load(t, dir)
			plain := load(t, dir, encoder.WithPrefixCache(false))
			prompt, err := cached.Prompt("query")
			if err != nil {
				t.Fatal(err)
			}
			var ids [][]int32
			for i, r := range rows {
				if r.Text == nil || i%4 != 0 {
					continue
				}
				q, _ := cached.TokenizeTo(nil, *r.Text, prompt, 0)
				ids = append(ids, q)
			}
			p, _ := cached.TokenizeTo(nil, "", prompt, 0)
			t.Logf("%d queries, prompt of %d tokens", len(ids), len(p)-1)
			withCache := embedRows(t, cached, ids)
			without := embedRows(t, plain, ids)
			dim := cached.Dim()
			alone := make([]float32, dim)
			worst, worstAlone := 0.0, 0.0
			for i := range ids {
				worst = max(worst, maxAbs(withCache[i*dim:(i+1)*dim], without[i*dim:(i+1)*dim]))
				var b encoder.Batch
				b.Add(ids[i])
				if err := cached.EmbedBatch(context.Background(), &b, alone); err != nil {
					t.Fatal(err)
				}
				worstAlone = max(worstAlone, maxAbs(withCache[i*dim:(i+1)*dim], alone))
			}
			t.Logf("max abs diff: cached vs uncached batches %.3g, vs one query at a time %.3g", worst, worstAlone)
			if worst > 1e-6 || worstAlone > 1e-6 {
				t.Errorf("cached embeddings differ by %.3g (batches) and %.3g (alone), bound 1e-6", worst, worstAlone)
			}
			var b encoder.Batch
			for _, q := range ids[:16] {
				b.Add(q)
			}
			h := cached.Hidden()
			tc, tp := make([]float32, b.Tokens()*h), make([]float32, b.Tokens()*h)
			if err := cached.TokenEmbeddingsBatch(context.Background(), &b, tc); err != nil {
				t.Fatal(err)
			}
			if err := plain.TokenEmbeddingsBatch(context.Background(), &b, tp); err != nil {
				t.Fatal(err)
			}
			if d := maxAbs(tc, tp); d > 1e-6 {
				t.Errorf("token embeddings differ by %.3g", d)
			}
		})
	}
}
