package main

import (
	"context"
	"io"
	"os"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/pipeline"
)

// runTokenize implements "embedpipe tokenize": it writes the input columns
// plus input_ids (list<int32>), the ids the model sees for each text.
func runTokenize(ctx context.Context, args []string) error {
	return tokenizeCmd(ctx, os.Stderr, args)
}

func tokenizeCmd(ctx context.Context, stderr io.Writer, args []string) error {
	fs := newFlags("tokenize", "--model DIR --input FILE --output FILE [flags]",
		"embedpipe tokenize --model ./all-MiniLM-L6-v2 --input docs.jsonl --output ids.jsonl")
	model := fs.String("model", "", modelHelp+" (required)")
	input := fs.String("input", "", "input file (required)")
	output := fs.String("output", "", "output file (required): .parquet, .arrow, .arrows or .jsonl")
	column := fs.String("column", "text", "text column")
	maxLength := fs.Int("max-length", 0, "truncate to N ids, special tokens included (default 0: the model's max_seq_length, as in embed)")
	overwrite := fs.Bool("overwrite", false, "replace an existing output file")
	noTruncate := fs.Bool("no-truncate", false, "write every id, however long the text (not with --max-length)")
	prompt := fs.String("prompt", "", "prompt text prepended to every text")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if *model == "" || *input == "" || *output == "" {
		return fs.usageErrorf("--model, --input and --output are required")
	}
	// The pipeline reads 0 as no truncation and a negative length as the
	// model's; the flag follows embed, where 0 is the model's.
	maxLen := *maxLength
	switch {
	case *maxLength < 0:
		return fs.usageErrorf("--max-length %d: want 0 (the model's max_seq_length) or a positive number of ids", *maxLength)
	case *noTruncate && *maxLength > 0:
		return fs.usageErrorf("--no-truncate and --max-length together")
	case *noTruncate:
		maxLen = 0
	case *maxLength == 0:
		maxLen = -1
	}
	if err := dataset.Writable(*output); err != nil {
		return err
	}
	if err := pipeline.CheckOutputs(pipeline.Config{Inputs: []pipeline.Input{{Path: *input}}, Output: *output}, *overwrite); err != nil {
		return err
	}
	m, err := encoder.Load(*model, hubOption())
	if err != nil {
		return err
	}
	_, err = pipeline.Tokenize(ctx, m, pipeline.TokenizeConfig{
		Input: pipeline.Input{Path: *input}, Output: *output, Column: *column, Prompt: *prompt, MaxLength: maxLen,
	})
	return err
}
