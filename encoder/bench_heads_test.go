package encoder_test

import (
	"context"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// shortQueries returns the first n corpus texts of at most 40 bytes.
func shortQueries(b *testing.B, n int) []string {
	var out []string
	for _, r := range refs.Read[refs.Row](b, "tiny-qwen3.parquet") {
		if r.Text != nil && len(*r.Text) > 0 && len(*r.Text) <= 40 {
			out = append(out, *r.Text)
		}
		if len(out) == n {
			break
		}
	}
	return out
}

// BenchmarkPrefixCache embeds 256 short queries with tiny-qwen3 behind a
// 20-token instruction, in batches of 32, with the KV prefix cache on and
// off. tokens/s counts every token a query's sequence holds, the
// instruction's included, so the ratio of the two is the speed-up.
func BenchmarkPrefixCache(b *testing.B) {
	dir := refs.ModelDir(b, "tiny-qwen3")
	queries := shortQueries(b, 256)
	for _, mode := range []struct {
		name string
		on   bool
	}{{"cache=on", true}, {"cache=off", false}} {
		b.Run(mode.name, func(b *testing.B) {
			m, err := encoder.Load(dir, encoder.WithPrefixCache(mode.on))
			if err != nil {
				b.Fatal(err)
			}
			// Twenty tokens of instruction, then the query.
			instr := "Instruct: Given a search query, retrieve passages\nQuery:"
			p, _ := m.TokenizeTo(nil, "", instr, 0)
			var batches []*encoder.Batch
			tokens := 0
			for lo := 0; lo < len(queries); lo += 32 {
				var bt encoder.Batch
				for _, q := range queries[lo:min(lo+32, len(queries))] {
					if _, err := m.AppendTo(&bt, q, instr, 0); err != nil {
						b.Fatal(err)
					}
				}
				tokens += bt.Tokens()
				batches = append(batches, &bt)
			}
			out := make([]float32, 32*m.Dim())
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				for _, bt := range batches {
					if err := m.EmbedBatch(ctx, bt, out); err != nil {
						b.Fatal(err)
					}
				}
			}
			sec := time.Since(start).Seconds()
			b.ReportMetric(float64(tokens*b.N)/sec, "tokens/s")
			b.ReportMetric(float64(len(p)-1), "instruction-tokens")
			b.ReportMetric(float64(tokens)/float64(len(queries)), "tokens/query")
		})
	}
}

// BenchmarkSparseVsDense encodes the first 512 corpus texts in batches of
// 32 with tiny-splade, as sparse vectors, and with the same encoder shape
// as a dense model (tiny-bert, mean pooling): the difference is the
// masked-LM head and the tiled projection onto 30,522 vocabulary entries.
func BenchmarkSparseVsDense(b *testing.B) {
	rows := refs.Read[refs.Row](b, "tiny-bert.parquet")[:512]
	for _, name := range []string{"tiny-splade", "tiny-bert"} {
		b.Run(name, func(b *testing.B) {
			m, err := encoder.Load(refs.ModelDir(b, name))
			if err != nil {
				b.Fatal(err)
			}
			var batches []*encoder.Batch
			tokens := 0
			for lo := 0; lo < len(rows); lo += 32 {
				var bt encoder.Batch
				for _, r := range rows[lo : lo+32] {
					bt.Add(r.InputIDs)
				}
				tokens += bt.Tokens()
				batches = append(batches, &bt)
			}
			out := make([]float32, 32*m.Dim())
			var sv encoder.SparseVectors
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				for _, bt := range batches {
					var err error
					if m.Info().Kind == encoder.KindSparse {
						sv.Reset()
						err = m.EmbedSparseBatch(ctx, bt, encoder.SparseOptions{}, &sv)
					} else {
						err = m.EmbedBatch(ctx, bt, out)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(tokens*b.N)/time.Since(start).Seconds(), "tokens/s")
		})
	}
}
