package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/embedpipe/embedpipe/pipeline"
	"golang.org/x/term"
)

// runEmbed implements "embedpipe embed": it embeds the text column of one or
// more files with pipeline.Run and reports a summary.
func runEmbed(ctx context.Context, args []string) error {
	return embedCmd(ctx, os.Stderr, args)
}

func embedCmd(ctx context.Context, stderr io.Writer, args []string) error {
	fs := newFlags("embed", "--model DIR --input FILE|DIR|GLOB --output FILE|DIR [flags]",
		"embedpipe embed --model ./all-MiniLM-L6-v2 --input docs.parquet --output vectors.parquet",
		"embedpipe embed --model ./bge-small --input 'data/*.jsonl' --output out/ --precision int8 --on-error skip --errors bad.jsonl")
	// The flags fill one typed pipeline.Config; its defaults are the
	// pipeline's exported constants, and WithDefaults resolves the rest.
	var cfg pipeline.Config
	model := fs.String("model", "", modelHelp+" (required)")
	input := fs.String("input", "", inputHelp)
	fs.StringVar(&cfg.Output, "output", "", "output file (one input) or directory (several inputs), or a PostgreSQL URL postgres://… with --table (required)")
	fs.StringVar(&cfg.Column, "column", pipeline.DefaultColumn, "text column")
	fs.StringVar(&cfg.OutputColumn, "output-column", pipeline.DefaultOutputColumn, "embedding column to add")
	fs.IntVar(&cfg.BatchSize, "batch-size", pipeline.DefaultBatchSize, "maximum sequences per encoder batch")
	fs.IntVar(&cfg.MaxBatchTokens, "max-batch-tokens", pipeline.DefaultMaxBatchTokens, "maximum real tokens per encoder batch")
	fs.IntVar(&cfg.Workers, "workers", 0, "concurrent encoder batches (default GOMAXPROCS; each gets GOMAXPROCS/workers threads)")
	fs.StringVar(&cfg.PromptName, "prompt-name", "", "name of a prompt defined by the model")
	fs.StringVar(&cfg.Prompt, "prompt", "", "prompt text prepended to every text")
	fs.TextVar(&cfg.OutputValue, "output-value", pipeline.SentenceEmbedding, "sentence_embedding or token_embeddings (sparse_embedding for a sparse encoder)")
	fs.IntVar(&cfg.SparseTopK, "sparse-top-k", 0, "sparse encoders: keep the K largest weights of each vector (default 0: every positive weight)")
	fs.TextVar(&cfg.Precision, "precision", embed.Float32, "float32, float16, int8, uint8, binary or ubinary")
	computeName := fs.String("compute", "float32", "number format of the model's linear layers: float32, int8 (dynamic quantization, opt-in; BERT-family models), or bf16 (bf16 accuracy emulated at float32 speed, no speed gain; not Qwen3-MoE)")
	rangesPath := fs.String("ranges", "", "int8/uint8 calibration ranges, JSON [[min…],[max…]] (default: computed over the run)")
	fs.IntVar(&cfg.TruncateDim, "truncate-dim", 0, "keep the first N dimensions, then normalize")
	normalize := fs.String("normalize", "", "true or false: override L2 normalization after truncation (default: the model's)")
	fs.IntVar(&cfg.MaxLength, "max-length", 0, "truncate token sequences to N tokens (default 0: the model's max_seq_length)")
	fs.BoolVar(&cfg.Resume, "resume", true, "continue from the checkpoints next to the output; false starts over")
	overwrite := fs.Bool("overwrite", false, "replace an output that a finished run wrote (an unfinished one resumes without it)")
	fs.StringVar(&cfg.OutputFormat, "output-format", "", "format of the outputs of a directory run: parquet, arrow, arrows or jsonl (default: each input's own; CSV inputs give parquet)")
	fs.StringVar(&cfg.CacheDir, "cache", "", "embedding cache directory shared across runs")
	fs.TextVar(&cfg.OnError, "on-error", pipeline.OnErrorFail, "rows that cannot be embedded: fail, skip or null")
	fs.StringVar(&cfg.ErrorsPath, "errors", "", "write the rows that could not be embedded here (JSON lines)")
	summaryPath := fs.String("summary", "", "write the run summary here as JSON")
	quiet := fs.Bool("quiet", false, "print nothing but errors")
	fs.IntVar(&cfg.ChunkTokens, "chunk-tokens", 0, "cut each text into chunks of at most N tokens (special and prompt tokens not counted; at word starts) instead of truncating it, one output row per chunk with chunk_index, chunk_start, chunk_end (byte offsets) and chunk_text")
	fs.IntVar(&cfg.ChunkOverlap, "chunk-overlap", 0, "with --chunk-tokens: tokens shared by consecutive chunks (less than --chunk-tokens)")
	fs.TextVar(&cfg.ChunkMode, "chunk-mode", pipeline.ChunkSplit, "with --chunk-tokens: split (each chunk's text embedded alone) or late (each document encoded once, each chunk's span of token vectors pooled; the document must fit --max-length)")
	fs.IntVar(&cfg.ChunkRows, "chunk-rows", 0, "rows per chunk: checkpoint and length-sorting window (default 512; Parquet chunks also stop at 4 MiB of input)")
	memLimit := fs.String("memory-limit", "auto", "soft memory limit of the Go runtime: auto (the model plus 1.25 × the run's worst-case working memory), off, or a size such as 800MiB; GOMEMLIMIT in the environment takes precedence")
	memProfile := fs.String("memprofile", "", "write a heap profile taken when the live heap peaks to this file")
	metricsAddr := fs.String("metrics", "", "serve /metrics, /health and /live on this address during the run (e.g. 127.0.0.1:9090)")
	var pgf pgFlags
	pgf.register(fs.FlagSet, true)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if *model == "" || *input == "" || cfg.Output == "" {
		return fs.usageErrorf("--model, --input and --output are required")
	}
	if err := checkPGFlags(fs, cfg.Output); err != nil {
		return err
	}
	if cfg.MaxLength < 0 {
		return fs.usageErrorf("--max-length %d: want 0 (the model's max_seq_length) or a positive number of tokens", cfg.MaxLength)
	}
	if *rangesPath != "" && !cfg.Precision.NeedsRanges() {
		return fs.usageErrorf("--ranges applies only to --precision int8 or uint8, not %s", cfg.Precision)
	}
	files, err := dataset.Expand(*input)
	if err != nil {
		return err
	}
	if len(files) == 1 && !pgsink.IsURL(cfg.Output) {
		if st, err := os.Stat(cfg.Output); err == nil && st.IsDir() {
			name := pipeline.OutputName(files[0])
			if cfg.OutputFormat != "" {
				name = strings.TrimSuffix(name, filepath.Ext(name)) + "." + cfg.OutputFormat
			}
			cfg.Output = strings.TrimRight(cfg.Output, "/") + "/" + name
		} else if cfg.OutputFormat != "" {
			return fs.usageErrorf("--output-format applies to runs into a directory; the --output file's extension chooses the format of one file")
		}
		cfg.OutputFormat = ""
		if err := dataset.Writable(cfg.Output); err != nil {
			return err
		}
	}
	for _, f := range files {
		cfg.Inputs = append(cfg.Inputs, pipeline.Input{Path: f})
	}
	if !pgsink.IsURL(cfg.Output) { // a table is upserted by id, not overwritten
		if err := pipeline.CheckOutputs(cfg, *overwrite); err != nil {
			return err
		}
	}
	var pg *pgOutput
	if pgsink.IsURL(cfg.Output) {
		if pg, err = newPGOutput(cfg.Output, pgf, &cfg, files); err != nil {
			return err
		}
	}
	if cfg.Normalize, err = optionalBool("normalize", *normalize); err != nil {
		return err
	}
	if cfg.Ranges, err = readRanges(*rangesPath); err != nil {
		return err
	}
	var threads int
	cfg.Workers, threads = pipeline.SplitThreads(runtime.GOMAXPROCS(0), cfg.Workers)
	compute, err := encoder.ParseCompute(*computeName)
	if err != nil {
		return err
	}
	m, err := encoder.Load(*model, encoder.WithThreads(threads), encoder.WithCompute(compute), hubOption())
	if err != nil {
		return err
	}
	if err := setMemoryLimit(*memLimit, func() int64 { return pipeline.MemoryBound(m, cfg) }); err != nil {
		return err
	}
	if *memProfile != "" {
		stop := peakHeapProfile(*memProfile)
		defer stop()
	}
	rep := newReporter(stderr, *quiet)
	cfg.Progress, cfg.ProgressEvery = rep.progress, rep.every
	if *metricsAddr != "" {
		mctx, stopMetrics := context.WithCancel(ctx)
		defer stopMetrics()
		met, health, err := startMetrics(mctx, *metricsAddr, nil)
		if err != nil {
			return err
		}
		health.SetReady(true)
		var rows, tokens int64
		cfg.Progress = func(s pipeline.Summary) {
			// Progress comes from one goroutine, so the running totals
			// need no lock.
			met.Embedded(s.RowsIn-rows, s.Tokens-tokens)
			rows, tokens = s.RowsIn, s.Tokens
			rep.progress(s)
		}
	}
	var sum pipeline.Summary
	var runErr error
	if pg != nil {
		sum, runErr = pg.run(ctx, m, cfg, stderr, *quiet)
	} else {
		sum, runErr = pipeline.Run(ctx, m, cfg)
	}
	if runErr == nil || errors.Is(runErr, pipeline.ErrInterrupted) {
		rep.done(sum)
	}
	if *summaryPath != "" {
		js, _ := json.MarshalIndent(struct {
			pipeline.Summary
			PeakRSS int64 `json:"peak_rss_bytes,omitempty"`
		}{sum, peakRSS()}, "", "  ")
		if err := fileio.WriteFileAtomic(*summaryPath, append(js, '\n')); err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

// reporter shows progress: a one-line bar redrawn in place on a terminal,
// structured slog lines otherwise, nothing with --quiet. Its rates are
// instantaneous — over the last rateWindow of samples — and count only the
// rows read and tokens encoded by this run, not those a resumed run took
// from its checkpoint.
type reporter struct {
	w     io.Writer
	quiet bool
	tty   bool
	every time.Duration
	log   *slog.Logger
	drawn bool
	// samples are the recent (time, rows, tokens) points of the rates.
	samples []rateSample
	now     func() time.Time
}

type rateSample struct {
	at           time.Time
	rows, tokens int64
}

// rateWindow is the span the instantaneous rates are measured over.
const rateWindow = 5 * time.Second

func newReporter(w io.Writer, quiet bool) *reporter {
	r := &reporter{w: w, quiet: quiet, every: 5 * time.Second, now: time.Now}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.tty, r.every = true, 200*time.Millisecond
	}
	r.log = slog.New(slog.NewTextHandler(w, nil))
	return r
}

// rates adds the sample of s and returns the rows and encoded tokens per
// second over the window, and the seconds left at that row rate (-1 when
// unknown).
func (r *reporter) rates(s pipeline.Summary) (rowsPerS, tokPerS, eta float64) {
	now := r.now()
	cur := rateSample{at: now, rows: s.RowsIn - s.Resumed, tokens: s.EncodedTokens - s.ResumedTokens}
	r.samples = append(r.samples, cur)
	k := 0
	for k < len(r.samples)-2 && now.Sub(r.samples[k+1].at) >= rateWindow {
		k++
	}
	r.samples = r.samples[k:]
	first := r.samples[0]
	eta = -1
	if dt := now.Sub(first.at).Seconds(); dt > 0 {
		rowsPerS = float64(cur.rows-first.rows) / dt
		tokPerS = float64(cur.tokens-first.tokens) / dt
	} else if s.WallSeconds > 0 {
		rowsPerS, tokPerS = s.RowsPerSec, s.TokensPerSec
	}
	if s.TotalRows > 0 && rowsPerS > 0 {
		eta = float64(max(0, s.TotalRows-s.RowsIn)) / rowsPerS
	}
	return rowsPerS, tokPerS, eta
}

func (r *reporter) progress(s pipeline.Summary) {
	if r.quiet {
		return
	}
	rowsPerS, tokPerS, eta := r.rates(s)
	if !r.tty {
		args := []any{"rows", s.RowsIn, "total", s.TotalRows}
		if s.TotalRows > 0 {
			args = append(args, "percent", fmt.Sprintf("%.1f", 100*min(1, float64(s.RowsIn)/float64(s.TotalRows))))
		}
		args = append(args, "rows_per_s", int64(rowsPerS), "tokens_per_s", int64(tokPerS), "resumed", s.Resumed)
		if eta >= 0 {
			args = append(args, "eta_s", int64(eta+0.5))
		}
		r.log.Info("progress", args...)
		return
	}
	const width = 30
	bar := strings.Repeat("·", width)
	pct, total, left := "", "", ""
	if s.TotalRows > 0 {
		f := min(1, float64(s.RowsIn)/float64(s.TotalRows))
		n := int(f * width)
		bar = strings.Repeat("█", n) + strings.Repeat("·", width-n)
		pct = fmt.Sprintf(" %3.0f%%", 100*f)
		total = fmt.Sprintf("/%d", s.TotalRows)
	}
	if eta >= 0 {
		left = "  ETA " + clock(eta)
	}
	fmt.Fprintf(r.w, "\r%s%s %d%s rows  %.0f rows/s  %.0f tok/s  %s%s \x1b[K", bar, pct, s.RowsIn, total, rowsPerS, tokPerS, clock(s.WallSeconds), left)
	r.drawn = true
}

// clock formats seconds as m:ss, or h:mm:ss from an hour on.
func clock(sec float64) string {
	t := int64(sec + 0.5)
	if t >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", t/3600, t/60%60, t%60)
	}
	return fmt.Sprintf("%d:%02d", t/60, t%60)
}

func (r *reporter) done(s pipeline.Summary) {
	if r.quiet {
		return
	}
	if r.drawn {
		fmt.Fprintln(r.w)
	}
	if !r.tty {
		r.log.Info("summary", "files", s.Files, "rows_in", s.RowsIn, "rows_out", s.RowsOut, "nulls", s.Nulls,
			"invalid_utf8", s.InvalidUTF8, "truncated", s.Truncated, "skipped", s.Skipped, "errors", s.Errors,
			"resumed", s.Resumed, "deduplicated", s.Deduplicated, "cache_hits", s.CacheHits, "tokens", s.Tokens,
			"padding_waste", fmt.Sprintf("%.3f", s.PaddingWaste), "wall_s", fmt.Sprintf("%.3f", s.WallSeconds),
			"encoded_tokens", s.EncodedTokens-s.ResumedTokens, "tokens_per_s", int64(s.TokensPerSec),
			"rows_per_s", int64(s.RowsPerSec), "chunks_out", s.ChunksOut)
		return
	}
	if s.ChunksOut > 0 {
		fmt.Fprintf(r.w, "chunks out %d (from the %d rows out)\n", s.ChunksOut, s.RowsOut)
	}
	fmt.Fprintf(r.w, "rows in %d, out %d (nulls %d, invalid UTF-8 %d, truncated %d, skipped %d, errors %d, resumed %d)\n",
		s.RowsIn, s.RowsOut, s.Nulls, s.InvalidUTF8, s.Truncated, s.Skipped, s.Errors, s.Resumed)
	fmt.Fprintf(r.w, "tokens %d (encoded %d in this run), padding waste %.1f%%, deduplicated %d, cache hits %d, %.2fs, %.0f tokens/s, %.0f rows/s\n",
		s.Tokens, s.EncodedTokens-s.ResumedTokens, 100*s.PaddingWaste, s.Deduplicated, s.CacheHits, s.WallSeconds, s.TokensPerSec, s.RowsPerSec)
}

// peakRSS returns the process's peak resident set size (VmHWM), or 0 where
// /proc does not tell. A parent's getrusage(RUSAGE_CHILDREN) is no
// substitute: a child started with vfork inherits the parent's high-water
// mark at exec.
func peakRSS() int64 { return vmHWM("/proc/self/status") }

// vmHWM reads the peak resident set size (VmHWM) from a /proc/PID/status
// file, or 0 where it cannot.
func vmHWM(status string) int64 {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb << 10
		}
	}
	return 0
}

// setMemoryLimit applies the --memory-limit flag after the model is loaded.
// auto sets the model's memory (live heap and runtime overheads right after
// loading) plus 1.25 times bound(): peak RSS then stays at or under that
// figure however long the run, where the collector's default pacing (heap
// goal twice the live heap, freed pages returned lazily) lets it creep up
// with fragmentation and with the largest live heap seen. The bound is a
// sum of worst cases, well above the live heap of a real run, so the
// factor leaves the collector ample room.
func setMemoryLimit(flag string, bound func() int64) error {
	if os.Getenv("GOMEMLIMIT") != "" || flag == "off" {
		return nil
	}
	if flag != "auto" {
		n, err := parseBytes(flag)
		if err != nil {
			return fmt.Errorf("--memory-limit %q: %w", flag, err)
		}
		debug.SetMemoryLimit(n)
		return nil
	}
	runtime.GC()
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	model := int64(s[0].Value.Uint64())
	other := int64(s[1].Value.Uint64())
	for _, x := range s[2:] {
		other -= int64(x.Value.Uint64())
	}
	debug.SetMemoryLimit(model + max(0, other) + bound()*5/4)
	return nil
}

// parseBytes reads a size: a number of bytes with an optional B, KiB, MiB,
// GiB, KB, MB or GB suffix.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := 1.0
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || v*mult > math.MaxInt64/2 {
		return 0, errors.New("want a positive size such as 800MiB or 2GiB, or auto, or off")
	}
	return int64(v * mult), nil
}

// peakHeapProfile samples the live heap every 50ms and, each time it grows
// by more than 5% over the largest seen, takes a heap profile; stop writes
// the last one taken (the peak's) to path. The profile shows the objects
// live at the GC before the peak, which is where memory goes at its worst.
func peakHeapProfile(path string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	var best bytes.Buffer
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak+peak/20 {
				peak = v
				best.Reset()
				pprof.Lookup("heap").WriteTo(&best, 0)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if err := os.WriteFile(path, best.Bytes(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "memprofile: %v\n", err)
		}
	}
}

// optionalBool reads the value v of a flag --name such as --normalize that
// overrides a default only when given: "" gives nil, else true or false.
func optionalBool(name, v string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("--%s %q: want true or false", name, v)
	}
	return &b, nil
}

// readRanges reads the int8/uint8 calibration ranges of a --ranges file,
// or gives none when path is "".
func readRanges(path string) ([2][]float32, error) {
	if path == "" {
		return [2][]float32{}, nil
	}
	return pipeline.ReadRanges(path)
}
