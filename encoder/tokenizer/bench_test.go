package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// corpusTexts reads the texts of the shared reference corpus.
func corpusTexts(b *testing.B) []string {
	b.Helper()
	f, err := os.Open(filepath.Join(refs.Shared(b), "refs", "corpus.public.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var row struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			b.Fatal(err)
		}
		if row.Text != nil {
			texts = append(texts, *row.Text)
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return texts
}

// BenchmarkEncode encodes the whole reference corpus per iteration, without
// truncation (full) and at the model's usual length, and reports tokens/s
// by the wall clock and by the process's CPU time.
func BenchmarkEncode(b *testing.B) {
	texts := corpusTexts(b)
	for _, c := range []struct {
		model  string
		maxLen int
	}{{"tiny-bert", 0}, {"tiny-bert", 128}, {"tiny-modernbert", 0}, {"tiny-qwen3", 256}, {"tiny-xlmr", 0}} {
		name := c.model
		if c.maxLen > 0 {
			name += "/max" + itoa(c.maxLen)
		} else {
			name += "/full"
		}
		b.Run(name, func(b *testing.B) {
			tk, err := Load(refs.ModelDir(b, c.model))
			if err != nil {
				b.Fatal(err)
			}
			var ids []int32
			tokens, bytes := 0, 0
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for b.Loop() {
				for _, s := range texts {
					ids, _ = tk.EncodeTo(ids[:0], s, c.maxLen)
					tokens += len(ids)
					bytes += len(s)
				}
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			// The process's CPU time, unlike the wall clock, does not count
			// the time other processes hold the cores (the benchmark is
			// single-threaded, so the two agree on an idle machine).
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(tokens)/cpu.Seconds(), "tokens/cpu-s")
				b.ReportMetric(float64(bytes)/cpu.Seconds()/1e6, "MB/cpu-s")
			}
			b.SetBytes(int64(bytes / b.N))
		})
	}
}

func itoa(n int) string {
	s, _ := json.Marshal(n)
	return string(s)
}
