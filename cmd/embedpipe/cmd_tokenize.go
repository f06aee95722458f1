package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

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
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", modelHelp+" (required)")
	input := fs.String("input", "", "input file (required)")
	output := fs.String("output", "", "output file (required): .parquet, .arrow, .arrows or .jsonl")
	column := fs.String("column", "text", "text column")
	maxLength := fs.Int("max-length", -1, "truncate to N ids (0: no truncation; default: the model's max_seq_length)")
	prompt := fs.String("prompt", "", "prompt text prepended to every text")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: embedpipe tokenize --model DIR --input FILE --output FILE [--column text] [--max-length N]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *model == "" || *input == "" || *output == "" {
		fs.Usage()
		return errors.New("--model, --input and --output are required")
	}
	if err := dataset.Writable(*output); err != nil {
		return err
	}
	m, err := encoder.Load(*model, hubOption())
	if err != nil {
		return err
	}
	_, err = pipeline.Tokenize(ctx, m, pipeline.TokenizeConfig{
		Input: pipeline.Input{Path: *input}, Output: *output, Column: *column, Prompt: *prompt, MaxLength: *maxLength,
	})
	return err
}
