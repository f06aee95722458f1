package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/explain"
)

// runExplain implements "embedpipe explain": attention, context and
// similarity pictures, report.html and explain.json for a few texts.
func runExplain(ctx context.Context, args []string) error {
	return explainCmd(ctx, os.Stdout, os.Stderr, args)
}

// textList is a repeatable --text flag.
type textList []string

func (t *textList) String() string     { return strings.Join(*t, " | ") }
func (t *textList) Set(s string) error { *t = append(*t, s); return nil }

// indexList is a --layers or --heads flag: "0,2,5-7".
type indexList []int

func (l *indexList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *indexList) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return fmt.Errorf("%q is not an index (from 0) or a range like 2-5", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return fmt.Errorf("%q is not a range like 2-5", part)
			}
		}
		if b-a > 4096 {
			return fmt.Errorf("range %q is too large", part)
		}
		for v := a; v <= b; v++ {
			*l = append(*l, v)
		}
	}
	return nil
}

func explainCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("explain", "--model DIR --text T [--text T2 …] --out DIR [--layers 0,2] [--heads 0-3]",
		`embedpipe explain --model ./all-MiniLM-L6-v2 --text "the river bank flooded" --text "the bank raised its rates" --out bank/`,
		`embedpipe explain --model ./all-MiniLM-L6-v2 --text "a cat sat on the mat" --layers 0,5 --heads 0-3 --out cat/`)
	model := fs.String("model", "", modelHelp+" (required)")
	out := fs.String("out", "", "output directory (required; created if needed): attention.png/.svg (attention-2.png… for later texts),\n"+
		"context.png, similarity.png, routes.png for mixture-of-experts models, report.html, explain.json")
	var texts textList
	fs.Var(&texts, "text", "a text to explain; repeat for several (texts that share a word show its contextual similarity)")
	var layers, heads indexList
	fs.Var(&layers, "layers", "layers the attention pictures show, from 0: \"0,2\" or \"1-3\" (default: all)")
	fs.Var(&heads, "heads", "heads the attention pictures show, from 0 (default: all)")
	maxTokens := fs.Int("max-tokens", explain.DefaultMaxTokens, fmt.Sprintf("refuse texts longer than this many tokens, special tokens included (at most %d)", explain.MaxTokensLimit))
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.usageErrorf("unexpected arguments: %s (quote a text and pass it with --text)", strings.Join(fs.Args(), " "))
	}
	if *model == "" || *out == "" || len(texts) == 0 {
		return fs.usageErrorf("--model, --out and at least one --text are required")
	}
	if *maxTokens < 2 || *maxTokens > explain.MaxTokensLimit {
		return fs.usageErrorf("--max-tokens %d outside [2, %d]", *maxTokens, explain.MaxTokensLimit)
	}
	if len(texts) > explain.MaxTexts {
		return fs.usageErrorf("%d texts: at most %d are explained at once", len(texts), explain.MaxTexts)
	}
	if st, err := os.Stat(*out); err == nil && !st.IsDir() {
		return fs.usageErrorf("--out %s exists and is not a directory", *out)
	}
	m, err := encoder.Load(*model, hubOption())
	if err != nil {
		return err
	}
	defer m.Close()
	res, err := explain.Run(ctx, m, texts, explain.Options{Layers: layers, Heads: heads, MaxTokens: *maxTokens})
	if err != nil {
		return err
	}
	names, err := res.Write(*out)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, "note:", n)
	}
	return nil
}
