package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/io/parquetio"
)

// BenchmarkCorpus compares, on the public corpus, the encoder alone (texts
// tokenized and length-sorted beforehand, batches fed to GOMAXPROCS
// concurrent EmbedBatch calls) with the whole pipeline (JSONL in, Parquet
// out, same batch limits and workers). The ratio of their tokens/s is the
// pipeline's overhead: the goal is e2e ≥ 90% of encoder-only.
//
// EMBEDPIPE_BENCH_REPEAT=N feeds the corpus N times over (as one JSONL
// file, copy k>0 with " (k)" appended to every text so that deduplication
// does not skip the repeats), which amortises the per-run fixed costs
// (model hash, checkpoint directory, output fsync) as a real dataset does.
func BenchmarkCorpus(b *testing.B) {
	m := loadTinyBert(b)
	texts := corpusTexts(b)
	in := corpusPath(b)
	if v := os.Getenv("EMBEDPIPE_BENCH_REPEAT"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		in = filepath.Join(b.TempDir(), "corpus.jsonl")
		var all []byte
		var allTexts []string
		for i := 0; i < n; i++ {
			for _, s := range texts {
				if i > 0 {
					s = fmt.Sprintf("%s (%d)", s, i)
				}
				line, _ := json.Marshal(map[string]string{"text": s})
				all = append(append(all, line...), '\n')
				allTexts = append(allTexts, s)
			}
		}
		if err := os.WriteFile(in, all, 0o644); err != nil {
			b.Fatal(err)
		}
		texts = allTexts
	}
	workers := runtime.GOMAXPROCS(0)
	const batchSize, maxTokens = 64, 8192

	b.Run("encoder-only", func(b *testing.B) {
		pass, tokens := encoderOnlyPass(b, m, texts, workers, batchSize, maxTokens)
		b.ResetTimer()
		start := time.Now()
		for it := 0; it < b.N; it++ {
			pass()
		}
		b.ReportMetric(float64(tokens*b.N)/time.Since(start).Seconds(), "tokens/s")
	})

	b.Run("end-to-end", func(b *testing.B) {
		dir := b.TempDir()
		var tokens int64
		b.ResetTimer()
		start := time.Now()
		for it := 0; it < b.N; it++ {
			sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, fmt.Sprintf("o%d.parquet", it)),
				BatchSize: batchSize, MaxBatchTokens: maxTokens, Workers: workers})
			if err != nil {
				b.Fatal(err)
			}
			tokens += sum.Tokens
		}
		b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tokens/s")
	})

	// ratio alternates the two, pass by pass, and reports the ratio of the
	// median times: on a shared machine the load drifts, and alternating
	// exposes both to the same drift.
	b.Run("ratio", func(b *testing.B) {
		pass, _ := encoderOnlyPass(b, m, texts, workers, batchSize, maxTokens)
		dir := b.TempDir()
		var enc, e2e []float64
		for it := 0; it < b.N*7; it++ {
			t0 := time.Now()
			pass()
			enc = append(enc, time.Since(t0).Seconds())
			t0 = time.Now()
			if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, "o.parquet"),
				BatchSize: batchSize, MaxBatchTokens: maxTokens, Workers: workers}); err != nil {
				b.Fatal(err)
			}
			e2e = append(e2e, time.Since(t0).Seconds())
		}
		slices.Sort(enc)
		slices.Sort(e2e)
		b.ReportMetric(enc[len(enc)/2]/e2e[len(e2e)/2], "e2e/encoder")
		b.ReportMetric(enc[len(enc)/2]*1000, "encoder-ms")
		b.ReportMetric(e2e[len(e2e)/2]*1000, "e2e-ms")
	})
}

// encoderOnlyPass tokenizes and length-sorts texts, cuts them into batches
// as the pipeline does, and returns a function that encodes every batch on
// workers goroutines, with the number of tokens.
func encoderOnlyPass(b *testing.B, m *encoder.Model, texts []string, workers, batchSize, maxTokens int) (func(), int) {
	{
		var seqs [][]int32
		tokens := 0
		for _, s := range texts {
			ids, _ := m.TokenizeTo(nil, s, "", 0)
			seqs = append(seqs, ids)
			tokens += len(ids)
		}
		slices.SortStableFunc(seqs, func(a, b []int32) int { return len(b) - len(a) })
		var batches []*encoder.Batch
		for lo := 0; lo < len(seqs); {
			bt := &encoder.Batch{}
			n := 0
			for lo < len(seqs) && bt.Len() < batchSize && (bt.Len() == 0 || n+len(seqs[lo]) <= maxTokens) {
				bt.Add(seqs[lo])
				n += len(seqs[lo])
				lo++
			}
			batches = append(batches, bt)
		}
		return func() {
			ch := make(chan *encoder.Batch)
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dst := make([]float32, batchSize*m.Dim())
					for bt := range ch {
						if err := m.EmbedBatch(context.Background(), bt, dst); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for _, bt := range batches {
				ch <- bt
			}
			close(ch)
			wg.Wait()
		}, tokens
	}
}

// BenchmarkPeakRSS embeds a generated Parquet file of EMBEDPIPE_BENCH_GB
// gigabytes (default 2) with the real command and reports the process's
// peak RSS, next to the peak RSS for a 1/100 slice of the same data: the
// pipeline's memory is the model plus a per-chunk term, so the two should be
// close. Rows carry a 10 KB incompressible payload column that passes
// through, and a short text.
func BenchmarkPeakRSS(b *testing.B) {
	gb := 2.0
	if v := os.Getenv("EMBEDPIPE_BENCH_GB"); v != "" {
		fmt.Sscan(v, &gb)
	}
	const payload = 10 << 10
	rows := int(gb * (1 << 30) / payload)
	dir := b.TempDir()
	big := filepath.Join(dir, "big.parquet")
	quarter := filepath.Join(dir, "quarter.parquet")
	small := filepath.Join(dir, "small.parquet")
	genPayload(b, big, rows, payload)
	genPayload(b, quarter, rows/4, payload)
	genPayload(b, small, rows/100, payload)
	bin := buildEmbedpipe(&testing.T{})
	if binPath == "" {
		b.Fatal(buildErr)
	}
	model := filepath.Join(repoRoot(), "testdata", "tiny-bert")
	for it := 0; it < b.N; it++ {
		for _, in := range []string{small, quarter, big} {
			st, _ := os.Stat(in)
			out := filepath.Join(dir, "out-"+filepath.Base(in))
			cmd := exec.Command(bin, "embed", "--model", model, "--input", in, "--output", out, "--quiet", "--resume=false")
			start := time.Now()
			if res, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v\n%s", err, res)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			mb := float64(ru.Maxrss) / 1024
			b.Logf("%s: %.2f GB input, peak RSS %.0f MB, %.1fs", filepath.Base(in), float64(st.Size())/(1<<30), mb, time.Since(start).Seconds())
			if in == big {
				b.ReportMetric(mb, "peakRSS-MB")
				b.ReportMetric(float64(st.Size())/(1<<30), "input-GB")
			}
			os.Remove(out)
		}
	}
}

func genPayload(b *testing.B, path string, rows, payload int) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "payload", Type: arrow.BinaryTypes.Binary},
	}, nil)
	w, err := parquetio.Create(path, schema, parquetio.WriteOptions{RowGroupRows: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Abort()
	buf := make([]byte, payload)
	const per = 1024
	for lo := 0; lo < rows; lo += per {
		bl := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := lo; i < min(rows, lo+per); i++ {
			rand.Read(buf)
			bl.Field(0).(*array.Int64Builder).Append(int64(i))
			bl.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row %d says hello to row %d", i, i%977))
			bl.Field(2).(*array.BinaryBuilder).Append(buf)
		}
		rec := bl.NewRecord()
		if err := w.Write(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
		rec.Release()
		bl.Release()
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
}
