package encoder_test

import (
	"context"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// nopObserver keeps nothing: it measures the materialising attention path
// an Observer selects, not the copying a real one does.
type nopObserver struct{}

func (nopObserver) States(int, []float32, []int, int)                          {}
func (nopObserver) Attention(int, int, int, int, encoder.Mask, []float32, int) {}
func (nopObserver) Routes(int, []int32, []float32, int)                        {}

// BenchmarkObserver compares EmbedBatch with EmbedBatchObserved on the
// all-MiniLM-L6-v2 shape, one thread, a batch of the first 32 corpus texts:
// "plain" is the path embed takes, whose cost the Observer hook must not
// change (compare it with the same sub-benchmark at a commit before the
// hook); "observed" is what explain pays.
func BenchmarkObserver(b *testing.B) {
	rows := refs.Read[refs.Row](b, "minilm-l6-shape.parquet")
	m, err := encoder.Load(minilmDir(b))
	if err != nil {
		b.Fatal(err)
	}
	var bt encoder.Batch
	for _, r := range rows[:32] {
		text := ""
		if r.Text != nil {
			text = *r.Text
		}
		if _, err := m.AppendTo(&bt, text, "", 0); err != nil {
			b.Fatal(err)
		}
	}
	out := make([]float32, 32*m.Dim())
	ctx := context.Background()
	for _, c := range []struct {
		name string
		obs  encoder.Observer
	}{{"plain", nil}, {"observed", nopObserver{}}} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := processCPU()
			for range b.N {
				var err error
				if c.obs == nil {
					err = m.EmbedBatch(ctx, &bt, out)
				} else {
					err = m.EmbedBatchObserved(ctx, &bt, c.obs, out)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bt.Tokens()*b.N)/b.Elapsed().Seconds(), "tokens/s")
			// On a shared machine tokens per CPU second is the figure that
			// does not depend on what else runs.
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(bt.Tokens()*b.N)/cpu, "tokens/cpu-s")
			}
		})
	}
}
