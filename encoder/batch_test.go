package encoder_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

func batchOf(seqs ...[]int32) *encoder.Batch {
	var b encoder.Batch
	for _, s := range seqs {
		b.Add(s)
	}
	return &b
}

// TestBatchIndependence embeds texts alone and in batches of several sizes,
// orders and thread counts: every vector must be bit-identical.
func TestBatchIndependence(t *testing.T) {
	for _, name := range []string{"tiny-bert-f16-max-sharded", "minilm-l6-shape"} {
		t.Run(name, func(t *testing.T) {
			var dir string
			if name == "minilm-l6-shape" {
				dir = minilmDir(t)
			} else {
				dir = refs.ModelDir(t, name)
			}
			rows := refs.Read[refs.Row](t, name+".parquet")
			// A spread of lengths: the first rows are short, some later
			// ones are long documents.
			limit, sizes := 40, []int{2, 3, 7, 16, 40}
			if testing.Short() && name == "minilm-l6-shape" {
				limit, sizes = 16, []int{3, 16}
			}
			var seqs [][]int32
			for i := 0; i < len(rows) && len(seqs) < limit; i += 37 {
				seqs = append(seqs, rows[i].InputIDs)
			}
			m1 := load(t, dir)
			m2 := load(t, dir, encoder.WithThreads(2))
			dim := m1.Dim()
			alone := make([]float32, len(seqs)*dim)
			for i, s := range seqs {
				if err := m1.EmbedBatch(context.Background(), batchOf(s), alone[i*dim:(i+1)*dim]); err != nil {
					t.Fatal(err)
				}
			}
			// Alone on the threaded model, the dense layers are split
			// across the worker pool instead: same numbers.
			one := make([]float32, dim)
			for i, s := range seqs {
				if err := m2.EmbedBatch(context.Background(), batchOf(s), one); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(one, alone[i*dim:(i+1)*dim]) {
					t.Fatalf("sequence %d (%d tokens): the pooled GEMMs change the embedding", i, len(s))
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for _, size := range sizes {
				for _, m := range []*encoder.Model{m1, m2} {
					perm := rng.Perm(len(seqs))
					for lo := 0; lo < len(perm); lo += size {
						idx := perm[lo:min(lo+size, len(perm))]
						var b encoder.Batch
						for _, k := range idx {
							b.Add(seqs[k])
						}
						out := make([]float32, len(idx)*dim)
						if err := m.EmbedBatch(context.Background(), &b, out); err != nil {
							t.Fatal(err)
						}
						for j, k := range idx {
							if !slices.Equal(out[j*dim:(j+1)*dim], alone[k*dim:(k+1)*dim]) {
								t.Fatalf("batch size %d: sequence %d (%d tokens) differs from its lone embedding", size, k, len(seqs[k]))
							}
						}
					}
				}
			}
		})
	}
}

// TestConcurrentEmbed runs EmbedBatch from several goroutines on one Model
// (run with -race) and checks each result against a serial one.
func TestConcurrentEmbed(t *testing.T) {
	m := load(t, refs.ModelDir(t, "tiny-bert"), encoder.WithThreads(2))
	dim := m.Dim()
	want := embedTexts(t, m, sampleTexts)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float32, len(sampleTexts)*dim)
			for it := 0; it < 20; it++ {
				if err := m.Embed(context.Background(), sampleTexts, "", out); err != nil {
					errs <- err.Error()
					return
				}
				if !slices.Equal(out, want) {
					errs <- "concurrent result differs"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestEmbedBatchErrors(t *testing.T) {
	m := load(t, refs.ModelDir(t, "tiny-bert"))
	dim := m.Dim()
	ctx := context.Background()
	cases := map[string]struct {
		b   *encoder.Batch
		dst int
	}{
		"empty sequence": {&encoder.Batch{IDs: []int32{101, 102}, Starts: []int{0, 2, 2}}, 2 * dim},
		"bad starts":     {&encoder.Batch{IDs: []int32{101, 102}, Starts: []int{0, 3}}, dim},
		"ids w/o starts": {&encoder.Batch{IDs: []int32{101, 102}}, dim},
		"short dst":      {batchOf([]int32{101, 102}, []int32{101, 102}), dim},
		"id too large":   {batchOf([]int32{101, 40000, 102}), dim},
		"too long":       {batchOf(make([]int32, 600)), dim},
	}
	for name, c := range cases {
		if err := m.EmbedBatch(ctx, c.b, make([]float32, c.dst)); err == nil || !errorsIs(err, encoder.ErrInput) {
			t.Errorf("%s: got %v, want ErrInput", name, err)
		}
	}
	// An empty batch is fine and writes nothing.
	if err := m.EmbedBatch(ctx, &encoder.Batch{}, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.EmbedBatch(cctx, batchOf([]int32{101, 102}), make([]float32, dim)); err == nil {
		t.Error("cancelled context: no error")
	}
}

// TestSteadyStateAllocs checks that EmbedBatch allocates nothing once its
// pooled scratch has grown.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	m := load(t, refs.ModelDir(t, "tiny-bert"))
	b := batchOf([]int32{101, 2023, 2003, 102}, []int32{101, 7592, 1010, 2088, 999, 102})
	out := make([]float32, 2*m.Dim())
	ctx := context.Background()
	allocs := testing.AllocsPerRun(50, func() {
		if err := m.EmbedBatch(ctx, b, out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("EmbedBatch: %v allocations per call in steady state", allocs)
	}
}

// TestSteadyStateAllocsThreaded checks the threaded paths: a batch split by
// sequences across the workers, and a lone sequence whose GEMMs are split.
func TestSteadyStateAllocsThreaded(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	m := load(t, refs.ModelDir(t, "tiny-bert"), encoder.WithThreads(2))
	defer m.Close()
	ctx := context.Background()
	for name, b := range map[string]*encoder.Batch{
		"split by sequences": batchOf([]int32{101, 2023, 2003, 102}, []int32{101, 7592, 1010, 2088, 999, 102}, []int32{101, 102}),
		"split GEMMs":        batchOf([]int32{101, 7592, 1010, 2088, 999, 102}),
	} {
		out := make([]float32, b.Len()*m.Dim())
		allocs := testing.AllocsPerRun(50, func() {
			if err := m.EmbedBatch(ctx, b, out); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 0 {
			t.Errorf("%s: %v allocations per call in steady state", name, allocs)
		}
	}
}
