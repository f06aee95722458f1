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
	"strings"
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
// EMBEDPIPE_BENCH_MODEL selects another model directory (default
// testdata/tiny-bert), loaded with one kernel thread per worker as the
// embed command does; EMBEDPIPE_BENCH_REPS sets the alternating passes of
// the ratio (default 7).
func BenchmarkCorpus(b *testing.B) {
	m := loadTinyBert(b)
	if dir := os.Getenv("EMBEDPIPE_BENCH_MODEL"); dir != "" {
		var err error
		if m, err = encoder.Load(dir, encoder.WithThreads(1)); err != nil {
			b.Fatal(err)
		}
	}
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
		reps := 7
		if v := os.Getenv("EMBEDPIPE_BENCH_REPS"); v != "" {
			fmt.Sscan(v, &reps)
		}
		var enc, e2e, encCPU, e2eCPU []float64
		for it := 0; it < b.N*reps; it++ {
			t0, c0 := time.Now(), cpuSeconds()
			pass()
			enc = append(enc, time.Since(t0).Seconds())
			encCPU = append(encCPU, cpuSeconds()-c0)
			t0, c0 = time.Now(), cpuSeconds()
			if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, "o.parquet"),
				BatchSize: batchSize, MaxBatchTokens: maxTokens, Workers: workers}); err != nil {
				b.Fatal(err)
			}
			e2e = append(e2e, time.Since(t0).Seconds())
			e2eCPU = append(e2eCPU, cpuSeconds()-c0)
			b.Logf("pass %d: encoder %.3f s wall %.3f s CPU, end-to-end %.3f s wall %.3f s CPU", it, enc[it], encCPU[it], e2e[it], e2eCPU[it])
		}
		med := func(xs []float64) float64 { xs = slices.Clone(xs); slices.Sort(xs); return xs[len(xs)/2] }
		b.ReportMetric(med(enc)/med(e2e), "e2e/encoder")
		b.ReportMetric(med(encCPU)/med(e2eCPU), "e2e/encoder-cpu")
		b.ReportMetric(med(enc)*1000, "encoder-ms")
		b.ReportMetric(med(e2e)*1000, "e2e-ms")
		b.ReportMetric(med(encCPU)*1000, "encoder-cpu-ms")
		b.ReportMetric(med(e2eCPU)*1000, "e2e-cpu-ms")
	})
}

// cpuSeconds returns the user and system CPU time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
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

// BenchmarkPeakRSS embeds generated Parquet files of the sizes in
// EMBEDPIPE_BENCH_GB (comma-separated gigabytes, default "0.02,0.5,2") with
// the real command and reports each run's peak RSS (getrusage maxrss) and
// CPU time: the pipeline's memory is the model plus a per-chunk term, so the
// figures should not grow with the input. Rows carry a 10 KB incompressible
// payload column that passes through, and a short unique text. The sizes
// are run in turn, EMBEDPIPE_BENCH_REPS times (default 1), and the median
// per size is reported.
//
// The files are generated once into EMBEDPIPE_BENCH_DIR (default a
// temporary directory removed afterwards) and reused when present, so
// repeated measurements do not pay for generation; keep that directory out
// of the repository, e.g. /tmp/embedpipe-rss. EMBEDPIPE_BENCH_MODEL selects
// another model directory (default testdata/tiny-bert) and
// EMBEDPIPE_BENCH_ARGS adds flags to the embed command.
func BenchmarkPeakRSS(b *testing.B) {
	sizes := []float64{0.02, 0.5, 2}
	if v := os.Getenv("EMBEDPIPE_BENCH_GB"); v != "" {
		sizes = sizes[:0]
		for _, f := range strings.Split(v, ",") {
			var gb float64
			if _, err := fmt.Sscan(f, &gb); err != nil || gb <= 0 || gb > 4 {
				b.Fatalf("EMBEDPIPE_BENCH_GB: %q: want sizes in (0, 4]", f)
			}
			sizes = append(sizes, gb)
		}
	}
	reps := 1
	if v := os.Getenv("EMBEDPIPE_BENCH_REPS"); v != "" {
		fmt.Sscan(v, &reps)
	}
	dir := os.Getenv("EMBEDPIPE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	model := os.Getenv("EMBEDPIPE_BENCH_MODEL")
	if model == "" {
		model = filepath.Join(repoRoot(), "testdata", "tiny-bert")
	}
	const payload = 10 << 10
	var inputs []string
	for _, gb := range sizes {
		rows := int(gb * (1 << 30) / payload)
		in := filepath.Join(dir, fmt.Sprintf("payload-%d.parquet", rows))
		if _, err := os.Stat(in); err != nil {
			genPayload(b, in, rows, payload)
		}
		inputs = append(inputs, in)
	}
	bin := buildEmbedpipe(&testing.T{})
	if binPath == "" {
		b.Fatal(buildErr)
	}
	out := b.TempDir()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		rss := make([][]float64, len(inputs))
		for r := 0; r < reps; r++ {
			for i, in := range inputs {
				st, _ := os.Stat(in)
				o := filepath.Join(out, "out.parquet")
				sumPath := filepath.Join(out, "summary.json")
				args := []string{"embed", "--model", model, "--input", in, "--output", o, "--quiet", "--resume=false", "--overwrite", "--summary", sumPath}
				args = append(args, strings.Fields(os.Getenv("EMBEDPIPE_BENCH_ARGS"))...)
				cmd := exec.Command(bin, args...)
				start := time.Now()
				if res, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v\n%s", err, res)
				}
				wall := time.Since(start).Seconds()
				// The command reports its own VmHWM: the child's rusage
				// maxrss would include this process's high-water mark, which
				// a vforked child inherits at exec.
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				var rep struct {
					PeakRSS int64 `json:"peak_rss_bytes"`
				}
				if js, err := os.ReadFile(sumPath); err != nil || json.Unmarshal(js, &rep) != nil || rep.PeakRSS == 0 {
					b.Fatalf("no peak_rss_bytes in %s: %v", sumPath, err)
				}
				mb := float64(rep.PeakRSS) / (1 << 20)
				cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
				rss[i] = append(rss[i], mb)
				b.Logf("%s: %.2f GB input, peak RSS %.0f MB, wall %.1f s, CPU %.1f s", filepath.Base(in), float64(st.Size())/(1<<30), mb, wall, cpu)
				os.Remove(o)
			}
		}
		for i, gb := range sizes {
			slices.Sort(rss[i])
			b.ReportMetric(rss[i][len(rss[i])/2], fmt.Sprintf("peakRSS-MB@%gGB", gb))
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
