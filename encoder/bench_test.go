package encoder_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// BenchmarkEmbedMiniLM measures EmbedBatch throughput on the
// all-MiniLM-L6-v2 shape over the whole public corpus (2,092 texts, the
// model's own ids truncated at 256) in batches of 32 in corpus order, as the
// ONNX Runtime peer benchmark does (which times the forward pass only;
// tokenization is excluded here too). One iteration is one pass; run with
// -benchtime=1x or 2x. The tokens/s metric counts real tokens;
// tokens/cpu-s divides them by the process's CPU time instead of wall time.
func BenchmarkEmbedMiniLM(b *testing.B) {
	rows := refs.Read[refs.Row](b, "minilm-l6-shape.parquet")
	dir := minilmDir(b)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			m, err := encoder.Load(dir, encoder.WithThreads(threads))
			if err != nil {
				b.Fatal(err)
			}
			var batches []*encoder.Batch
			tokens := 0
			for lo := 0; lo < len(rows); lo += 32 {
				var bt encoder.Batch
				for _, r := range rows[lo:min(lo+32, len(rows))] {
					text := ""
					if r.Text != nil {
						text = *r.Text
					}
					if _, err := m.AppendTo(&bt, text, "", 0); err != nil {
						b.Fatal(err)
					}
				}
				tokens += bt.Tokens()
				batches = append(batches, &bt)
			}
			out := make([]float32, 32*m.Dim())
			ctx := context.Background()
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			for range b.N {
				for _, bt := range batches {
					if err := m.EmbedBatch(ctx, bt, out); err != nil {
						b.Fatal(err)
					}
				}
			}
			sec, cpu := time.Since(start).Seconds(), processCPU()-cpu0
			b.ReportMetric(float64(tokens*b.N)/sec, "tokens/s")
			b.ReportMetric(float64(len(rows)*b.N)/sec, "sentences/s")
			// Tokens per CPU second: on a shared machine this is the figure
			// that does not depend on what else runs.
			if cpu > 0 {
				b.ReportMetric(float64(tokens*b.N)/cpu, "tokens/cpu-s")
			}
		})
	}
}
