package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// runBench implements "embedpipe bench": it measures the encoder's
// throughput on a JSONL file of texts or token ids, the way
// shared/peers/ort/bench.js measures ONNX Runtime, so the two are
// comparable (see bench/compare.sh).
func runBench(ctx context.Context, args []string) error {
	return bench(ctx, os.Stdout, os.Stderr, args)
}

// benchResult is the --json output, one line. Field names follow the ORT
// peer's where they mean the same thing.
type benchResult struct {
	Engine  string `json:"engine"`
	Version string `json:"version"`
	Model   string `json:"model"`
	Threads int    `json:"threads"`
	Compute string `json:"compute"`
	// KernelFamily is the kernel family the run's dense layers used
	// (avx2, gonum; bf16 names the float32 family it is emulated on), and
	// CPUFlags the CPU features that chose it; Dispatch has the rest.
	KernelFamily   string               `json:"kernel_family"`
	CPUFlags       []string             `json:"cpu_flags"`
	Dispatch       kernels.DispatchInfo `json:"dispatch"`
	Batch          int                  `json:"batch"`
	Sentences      int                  `json:"sentences"`
	RealTokens     int                  `json:"real_tokens"`
	PaddedTokens   int                  `json:"padded_tokens"`
	Reps           int                  `json:"reps"`
	SecondsMedian  float64              `json:"seconds_median"`
	SecondsAll     []float64            `json:"seconds_all"`
	TokensPerS     float64              `json:"tokens_per_s"`
	SentencesPerS  float64              `json:"sentences_per_s"`
	ModelGFLOPPerS float64              `json:"model_gflop_per_s"`
	// CPUSecondsMedian is the median process CPU time of the timed encoder
	// passes; TokensPerCPUS is real tokens per CPU second, which depends
	// less than tokens_per_s on other work sharing the machine.
	CPUSecondsMedian float64 `json:"cpu_seconds_median,omitempty"`
	TokensPerCPUS    float64 `json:"tokens_per_cpu_s,omitempty"`
	// End-to-end figures (tokenize + encode + pool + normalize), only for
	// text input.
	E2ESecondsMedian float64 `json:"e2e_seconds_median,omitempty"`
	E2ETokensPerS    float64 `json:"e2e_tokens_per_s,omitempty"`
	E2ESentencesPerS float64 `json:"e2e_sentences_per_s,omitempty"`
	// Kernels holds the Dense GFLOP/s on the model's shapes over 4096 rows,
	// m×k×n as in shared/peers/gemm, at the same thread count.
	Kernels []kernelResult `json:"kernels,omitempty"`
}

type kernelResult struct {
	Shape      string  `json:"shape"`
	GFLOPPerS  float64 `json:"gflop_per_s"`
	SecondsPer float64 `json:"seconds_per_call"`
}

// benchItem is one input line: a text, or token ids when the file holds
// ids.
type benchItem struct {
	text string
	ids  []int32
}

func bench(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("bench", "--model DIR --input FILE [flags]",
		"embedpipe bench --model ./all-MiniLM-L6-v2 --input texts.jsonl --threads 4 --reps 3")
	model := fs.String("model", "", modelHelp)
	input := fs.String("input", "", `JSONL file: one {"text": …} object, or one JSON array of token ids (or {"input_ids": […]}), per line`)
	threads := fs.Int("threads", 1, "goroutines per batch and for the kernel probe")
	computeName := fs.String("compute", "float32", "number format of the linear layers: float32, int8, or bf16 (bf16 accuracy emulated at float32 speed: no AVX512_BF16 kernels)")
	batchSize := fs.Int("batch-size", 32, "sequences per batch, after sorting by length")
	reps := fs.Int("reps", 3, "timed passes over the whole input (the median is reported)")
	asJSON := fs.Bool("json", false, "print one JSON line instead of text")
	kernelProbe := fs.Bool("kernels", true, "also measure the Dense kernels on the model's shapes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed encoder passes to this file")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	switch {
	case *model == "":
		return fs.usageErrorf("--model is required")
	case *input == "":
		return fs.usageErrorf("--input is required")
	case *threads < 1:
		return fs.usageErrorf("--threads must be at least 1, got %d", *threads)
	case *batchSize < 1:
		return fs.usageErrorf("--batch-size must be at least 1, got %d", *batchSize)
	case *reps < 1:
		return fs.usageErrorf("--reps must be at least 1, got %d", *reps)
	}
	compute, err := encoder.ParseCompute(*computeName)
	if err != nil {
		return fmt.Errorf("--compute: %w", err)
	}
	items, texts, skipped, err := readBenchInput(*input)
	if err != nil {
		return err
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "bench: %s: skipped %d lines whose text is null\n", *input, skipped)
	}
	if len(items) == 0 {
		return fmt.Errorf("%s: no input lines", *input)
	}
	m, err := encoder.Load(*model, encoder.WithThreads(*threads), encoder.WithCompute(compute), hubOption())
	if err != nil {
		return err
	}
	info := m.Info()

	// Token ids for every item: texts are tokenized once, untimed, to sort
	// them; the end-to-end passes tokenize them again.
	ids := make([][]int32, len(items))
	for i, it := range items {
		if texts {
			ids[i], _ = m.TokenizeTo(nil, it.text, "", 0)
		} else {
			ids[i] = it.ids
		}
		if len(ids[i]) == 0 {
			return fmt.Errorf("%s:%d: no tokens", *input, i+1)
		}
		if info.MaxPositions > 0 && len(ids[i]) > info.MaxPositions {
			return fmt.Errorf("%s:%d: %d tokens, longer than the model's %d positions", *input, i+1, len(ids[i]), info.MaxPositions)
		}
	}
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(ids[order[a]]) < len(ids[order[b]]) })

	var batches []*encoder.Batch
	var batchOrder [][]int
	realTokens, paddedTokens, maxTokens := 0, 0, 0
	for lo := 0; lo < len(order); lo += *batchSize {
		hi := min(lo+*batchSize, len(order))
		b := &encoder.Batch{}
		longest := 0
		for _, i := range order[lo:hi] {
			b.Add(ids[i])
			longest = max(longest, len(ids[i]))
		}
		realTokens += b.Tokens()
		paddedTokens += longest * (hi - lo)
		maxTokens = max(maxTokens, b.Tokens())
		batches = append(batches, b)
		batchOrder = append(batchOrder, order[lo:hi])
	}
	hidden := make([]float32, maxTokens*m.Hidden())
	emb := make([]float32, *batchSize*m.Dim())

	var lastCPU float64 // CPU seconds of the last encodePass
	encodePass := func() (float64, error) {
		cpu0 := processCPUSeconds()
		start := time.Now()
		for _, b := range batches {
			if err := m.TokenEmbeddingsBatch(ctx, b, hidden[:b.Tokens()*m.Hidden()]); err != nil {
				return 0, err
			}
		}
		sec := time.Since(start).Seconds()
		lastCPU = processCPUSeconds() - cpu0
		return sec, nil
	}
	fmt.Fprintf(stderr, "bench: %s: %d sequences, %d tokens, %d batches of %d, %d threads (GOMAXPROCS %d)\n",
		info.Dir, len(items), realTokens, len(batches), *batchSize, *threads, runtime.GOMAXPROCS(0))
	if _, err := encodePass(); err != nil { // warm-up
		return err
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
	}
	secs := make([]float64, *reps)
	cpus := make([]float64, *reps)
	for r := range secs {
		if secs[r], err = encodePass(); err != nil {
			return err
		}
		cpus[r] = lastCPU
		fmt.Fprintf(stderr, "bench: encoder pass %d: %.3f s, %.0f tokens/s, %.3f CPU s\n", r+1, secs[r], float64(realTokens)/secs[r], cpus[r])
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	med := median(secs)
	res := benchResult{
		Engine: "embedpipe", Version: runtime.Version(), Model: info.Dir,
		Threads: *threads, Compute: info.Compute, Batch: *batchSize, Sentences: len(items),
		RealTokens: realTokens, PaddedTokens: realTokens, Reps: *reps,
		SecondsMedian: med, SecondsAll: secs,
		TokensPerS:    float64(realTokens) / med,
		SentencesPerS: float64(len(items)) / med,
	}
	res.Dispatch = kernels.Dispatch()
	res.CPUFlags = res.Dispatch.Flags
	res.KernelFamily = res.Dispatch.Float32
	if compute == kernels.ComputeInt8 {
		res.KernelFamily = res.Dispatch.Int8
	}
	res.ModelGFLOPPerS = modelFlops(info, batches) / med / 1e9
	if c := median(cpus); c > 0 {
		res.CPUSecondsMedian = c
		res.TokensPerCPUS = float64(realTokens) / c
	}

	if texts {
		var b encoder.Batch
		e2ePass := func() (float64, error) {
			start := time.Now()
			for _, bo := range batchOrder {
				b.Reset()
				for _, i := range bo {
					if _, err := m.AppendTo(&b, items[i].text, "", 0); err != nil {
						return 0, err
					}
				}
				if err := m.EmbedBatch(ctx, &b, emb[:len(bo)*m.Dim()]); err != nil {
					return 0, err
				}
			}
			return time.Since(start).Seconds(), nil
		}
		if _, err := e2ePass(); err != nil {
			return err
		}
		e2e := make([]float64, *reps)
		for r := range e2e {
			if e2e[r], err = e2ePass(); err != nil {
				return err
			}
		}
		res.E2ESecondsMedian = median(e2e)
		res.E2ETokensPerS = float64(realTokens) / res.E2ESecondsMedian
		res.E2ESentencesPerS = float64(len(items)) / res.E2ESecondsMedian
	}
	if *kernelProbe {
		res.Kernels = probeKernels(info.Hidden, info.Intermediate, *threads, compute)
	}

	if *asJSON {
		line, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", line)
		return err
	}
	fmt.Fprintf(stdout, "model          %s (%d layers, hidden %d)\n", info.Dir, info.Layers, info.Hidden)
	fmt.Fprintf(stdout, "input          %d sequences, %d tokens (no padding), batch %d, threads %d\n", len(items), realTokens, *batchSize, *threads)
	fmt.Fprintf(stdout, "compute        %s\n", info.Compute)
	fmt.Fprintf(stdout, "kernels        %s (cpu flags: %s)\n", res.KernelFamily, strings.Join(res.CPUFlags, " "))
	if compute == kernels.ComputeBF16 {
		fmt.Fprintf(stdout, "bf16 path      %s: %s\n", res.Dispatch.BF16, res.Dispatch.BF16Reason)
	}
	fmt.Fprintf(stdout, "encoder        %.0f tokens/s, %.1f sentences/s (median of %d passes, %.3f s)\n", res.TokensPerS, res.SentencesPerS, *reps, med)
	if res.TokensPerCPUS > 0 {
		fmt.Fprintf(stdout, "encoder CPU    %.0f tokens per CPU second (median %.3f CPU s per pass)\n", res.TokensPerCPUS, res.CPUSecondsMedian)
	}
	fmt.Fprintf(stdout, "encoder flops  %.1f GFLOP/s (dense + attention products)\n", res.ModelGFLOPPerS)
	if texts {
		fmt.Fprintf(stdout, "end-to-end     %.0f tokens/s, %.1f sentences/s (tokenize + encode + pool)\n", res.E2ETokensPerS, res.E2ESentencesPerS)
	}
	for _, k := range res.Kernels {
		fmt.Fprintf(stdout, "kernel         Dense %-16s %.1f GFLOP/s\n", k.Shape, k.GFLOPPerS)
	}
	return nil
}

// readBenchInput reads a JSONL file of texts or of token ids; texts reports
// which (a file must not mix them).
// Lines whose "text" is null carry nothing to embed; they are counted in
// skipped and left out.
func readBenchInput(path string) (items []benchItem, texts bool, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	kind := "" // "text" or "ids"
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var it benchItem
		var k string
		if raw[0] == '[' {
			if err := json.Unmarshal(raw, &it.ids); err != nil {
				return nil, false, 0, fmt.Errorf("%s:%d: token ids: %v", path, line, err)
			}
			k = "ids"
		} else {
			var obj struct {
				Text     json.RawMessage `json:"text"`
				InputIDs []int32         `json:"input_ids"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil {
				return nil, false, 0, fmt.Errorf("%s:%d: %v", path, line, err)
			}
			switch {
			case string(obj.Text) == "null":
				skipped++
				continue
			case obj.Text != nil:
				if err := json.Unmarshal(obj.Text, &it.text); err != nil {
					return nil, false, 0, fmt.Errorf("%s:%d: text: %v", path, line, err)
				}
				k = "text"
			case obj.InputIDs != nil:
				it.ids, k = obj.InputIDs, "ids"
			default:
				return nil, false, 0, fmt.Errorf(`%s:%d: neither "text" nor "input_ids"`, path, line)
			}
		}
		if kind != "" && k != kind {
			return nil, false, 0, fmt.Errorf("%s:%d: mixes %s lines with %s lines", path, line, k, kind)
		}
		kind = k
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, false, 0, fmt.Errorf("%s:%d: %w", path, line+1, err)
	}
	return items, kind == "text", skipped, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// modelFlops counts the multiply-adds (×2) of one pass of a BERT-like
// encoder over the batches: per token and layer the QKV, output and two
// FFN projections, plus Q·Kᵀ and P·V over the token's own sequence.
func modelFlops(info encoder.Info, batches []*encoder.Batch) float64 {
	h, in := float64(info.Hidden), float64(info.Intermediate)
	var dense, attn float64
	for _, b := range batches {
		for i := 0; i < b.Len(); i++ {
			l := float64(len(b.Seq(i)))
			dense += l * 2 * (4*h*h + 2*h*in)
			attn += 2 * 2 * l * l * h
		}
	}
	return float64(info.Layers) * (dense + attn)
}

// probeKernels times Dense on the model's shapes over 4096 rows for about
// 0.3 s each, computing in c, and reports GFLOP/s (2·m·n·k operations
// whatever the number format).
func probeKernels(hidden, inter, threads int, c kernels.Compute) []kernelResult {
	if hidden <= 0 || inter <= 0 {
		return nil
	}
	const rows = 4096
	pool := kernels.NewPool(threads)
	defer pool.Close()
	shapes := [][2]int{{hidden, hidden}, {hidden, inter}, {inter, hidden}} // k, n
	var out []kernelResult
	for _, sh := range shapes {
		k, n := sh[0], sh[1]
		x := make([]float32, rows*k)
		w := make([]float32, n*k)
		for i := range x {
			x[i] = float32(math.Sin(float64(i)))
		}
		for i := range w {
			w[i] = float32(math.Cos(float64(i))) / 16
		}
		d := kernels.NewDenseCompute(c, w, nil, n, k)
		dst := make([]float32, rows*n)
		d.ForwardParallel(pool, dst, x, rows, nil)
		var times []float64
		for deadline := time.Now().Add(300 * time.Millisecond); len(times) < 3 || time.Now().Before(deadline); {
			t0 := time.Now()
			d.ForwardParallel(pool, dst, x, rows, nil)
			times = append(times, time.Since(t0).Seconds())
		}
		sec := median(times)
		out = append(out, kernelResult{
			Shape:      fmt.Sprintf("%dx%dx%d", rows, k, n),
			GFLOPPerS:  2 * rows * float64(k) * float64(n) / sec / 1e9,
			SecondsPer: sec,
		})
	}
	return out
}
