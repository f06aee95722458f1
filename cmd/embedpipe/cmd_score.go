package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/pipeline"
)

// runScore implements "embedpipe score": it scores the (query, document)
// pairs of one or more files with a cross-encoder through pipeline.Run,
// adding a score and a logit column, and reports a summary. It streams,
// resumes and handles bad rows as embed does.
func runScore(ctx context.Context, args []string) error {
	return scoreCmd(ctx, os.Stderr, args)
}

func scoreCmd(ctx context.Context, stderr io.Writer, args []string) error {
	fs := newFlags("score", "--model DIR --input FILE|DIR|GLOB --output FILE|DIR [--query-column query --document-column document] [flags]",
		"embedpipe score --model ./ms-marco-MiniLM-L6-v2 --input pairs.parquet --query-column query --document-column document --output scored.parquet",
		"embedpipe score --model ./bge-reranker-base --input 'runs/*.jsonl' --output scored/ --on-error skip --errors bad.jsonl")
	model := fs.String("model", "", "cross-encoder: "+modelHelp+" (required)")
	input := fs.String("input", "", inputHelp)
	output := fs.String("output", "", "output file (one input) or directory (several inputs) (required)")
	queryCol := fs.String("query-column", "query", "query column")
	docCol := fs.String("document-column", "document", "document column")
	scoreCol := fs.String("output-column", "score", "score column to add (after the model's activation)")
	logitCol := fs.String("logit-column", "logit", "raw logit column to add")
	batchSize := fs.Int("batch-size", pipeline.DefaultBatchSize, "maximum pairs per encoder batch")
	maxBatchTokens := fs.Int("max-batch-tokens", pipeline.DefaultMaxBatchTokens, "maximum real tokens per encoder batch")
	workers := fs.Int("workers", 0, "concurrent encoder batches (default GOMAXPROCS; each gets GOMAXPROCS/workers threads)")
	maxLength := fs.Int("max-length", 0, "truncate each pair to N tokens, longest first (default: the model's maximum)")
	resume := fs.Bool("resume", true, "continue from the checkpoints next to the output; false starts over")
	overwrite := fs.Bool("overwrite", false, "replace an output that a finished run wrote (an unfinished one resumes without it)")
	var onError pipeline.OnError
	fs.TextVar(&onError, "on-error", pipeline.OnErrorFail, "rows that cannot be scored: fail, skip or null")
	errorsPath := fs.String("errors", "", "write the rows that could not be scored here (JSON lines)")
	summaryPath := fs.String("summary", "", "write the run summary here as JSON")
	quiet := fs.Bool("quiet", false, "print nothing but errors")
	chunkRows := fs.Int("chunk-rows", 0, "rows per chunk: checkpoint and length-sorting window (default 512)")
	memLimit := fs.String("memory-limit", "auto", "soft memory limit of the Go runtime: auto, off, or a size such as 800MiB; GOMEMLIMIT takes precedence")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if *model == "" || *input == "" || *output == "" {
		return fs.usageErrorf("--model, --input and --output are required")
	}
	if *maxLength < 0 {
		return fs.usageErrorf("--max-length %d: want 0 (the model's maximum) or a positive number of tokens", *maxLength)
	}
	files, err := dataset.Expand(*input)
	if err != nil {
		return err
	}
	if len(files) == 1 {
		if st, err := os.Stat(*output); err == nil && st.IsDir() {
			*output = strings.TrimRight(*output, "/") + "/" + pipeline.OutputName(files[0])
		}
		if err := dataset.Writable(*output); err != nil {
			return err
		}
	}
	cfg := pipeline.Config{
		Output: *output, Column: *queryCol, DocumentColumn: *docCol, OutputColumn: *scoreCol, LogitColumn: *logitCol,
		OutputValue: pipeline.Scores, MaxLength: *maxLength, BatchSize: *batchSize, MaxBatchTokens: *maxBatchTokens,
		Workers: *workers, ChunkRows: *chunkRows, Resume: *resume, OnError: onError, ErrorsPath: *errorsPath,
	}
	for _, f := range files {
		cfg.Inputs = append(cfg.Inputs, pipeline.Input{Path: f})
	}
	if err := pipeline.CheckOutputs(cfg, *overwrite); err != nil {
		return err
	}
	procs := runtime.GOMAXPROCS(0)
	if cfg.Workers <= 0 {
		cfg.Workers = procs
	}
	m, err := encoder.LoadContext(ctx, *model, encoder.WithThreads(max(1, procs/cfg.Workers)))
	if err != nil {
		return err
	}
	if m.Info().Kind != encoder.KindCrossEncoder {
		return fmt.Errorf("%s is a %s model; score needs a cross-encoder (a ForSequenceClassification model)", *model, m.Info().Kind)
	}
	if err := setMemoryLimit(*memLimit, func() int64 { return pipeline.MemoryBound(m, cfg) }); err != nil {
		return err
	}
	rep := newReporter(stderr, *quiet)
	cfg.Progress, cfg.ProgressEvery = rep.progress, rep.every
	sum, runErr := pipeline.Run(ctx, m, cfg)
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
