package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// runInspect implements "embedpipe inspect": it loads a model directory and
// describes it, as text or (with --json) as the encoder.Info JSON object.
func runInspect(ctx context.Context, args []string) error {
	return inspect(ctx, os.Stdout, os.Stderr, args)
}

func inspect(_ context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlags("inspect", "[--json] [--hash] --model DIR | DIR",
		"embedpipe inspect ./all-MiniLM-L6-v2", "embedpipe inspect --model ./bge-small --json --hash")
	model := fs.String("model", "", modelHelp)
	asJSON := fs.Bool("json", false, "print the model description as JSON")
	hash := fs.Bool("hash", false, "also compute the content hash (reads every weight file)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *model == "" && fs.NArg() == 1 {
		*model = fs.Arg(0)
	} else if err := fs.noArgs(); err != nil {
		return err
	}
	if *model == "" {
		return fs.usageErrorf("--model is required")
	}
	m, err := encoder.Load(*model, hubOption())
	if err != nil {
		return err
	}
	info := m.Info()
	var contentHash string
	if *hash {
		contentHash = m.ContentHash()
	}
	if *asJSON {
		out := struct {
			encoder.Info
			Files       []string `json:"files"`
			ContentHash string   `json:"content_hash,omitempty"`
		}{info, m.Files(), contentHash}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("model", "%s", info.Dir)
	if info.Hub != "" {
		row("hub", "%s@%s", info.Hub, info.Revision)
	}
	row("architecture", "%s", info.Arch)
	row("model_type", "%s", info.ModelType)
	row("embedding dim", "%d", info.Dim)
	row("hidden size", "%d", info.Hidden)
	row("layers", "%d", info.Layers)
	if info.KVHeads > 0 && info.KVHeads != info.Heads {
		row("attention heads", "%d (%d key/value heads)", info.Heads, info.KVHeads)
	} else {
		row("attention heads", "%d", info.Heads)
	}
	row("intermediate size", "%d (%s)", info.Intermediate, info.Activation)
	row("vocabulary", "%d", info.Vocab)
	row("parameters", "%s (%.1fM)", groupDigits(info.Params), float64(info.Params)/1e6)
	row("dtype", "%s (computed in float32)", info.DType)
	row("tokenizer", "%s", info.TokenizerKind)
	row("kind", "%s", info.Kind)
	row("pooling", "%s", info.Pooling)
	for i, d := range info.Dense {
		bias := "no bias"
		if d.Bias {
			bias = "bias"
		}
		row(fmt.Sprintf("dense %d", i+1), "%d → %d, %s, %s", d.In, d.Out, bias, d.Activation)
	}
	if sp := info.Sparse; sp != nil {
		row("sparse", "SPLADE over %d vocabulary tokens, %s pooling, %s activation (scratch ≤ %.1f MiB per batch)",
			sp.Vocab, sp.Pooling, sp.Activation, float64(sp.ScratchBytes)/(1<<20))
	}
	if ce := info.CrossEncoder; ce != nil {
		row("cross-encoder", "%d label(s) %s, score = %s(logit) (%s)", len(ce.Labels), strings.Join(ce.Labels, ", "), ce.Activation, ce.ActivationSource)
	}
	kd := kernels.Dispatch()
	row("kernels", "float32 %s, int8 %s, bf16 %s (cpu flags: %s)", kd.Float32, kd.Int8, kd.BF16, strings.Join(kd.Flags, " "))
	row("bf16 path", "%s", kd.BF16Reason)
	row("normalize", "%v", info.Normalize)
	row("max length", "%d tokens (position table %d)", info.MaxSeqLen, info.MaxPositions)
	if len(info.Prompts) == 0 {
		row("prompts", "none")
	}
	for i, name := range slices.Sorted(maps.Keys(info.Prompts)) {
		k := ""
		if i == 0 {
			k = "prompts:"
		}
		def := ""
		if name == info.DefaultPrompt {
			def = " (default)"
		}
		fmt.Fprintf(tw, "%s\t%s = %q%s\n", k, name, info.Prompts[name], def)
	}
	for i, n := range info.Notes {
		k := ""
		if i == 0 {
			k = "notes:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, n)
	}
	for i, f := range m.Files() {
		k := ""
		if i == 0 {
			k = "files:"
		}
		size := "unreadable"
		if st, err := os.Stat(filepath.Join(info.Dir, filepath.FromSlash(f))); err == nil {
			size = groupDigits(st.Size()) + " bytes"
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\n", k, f, size)
	}
	if contentHash != "" {
		row("content hash", "%s", contentHash)
	}
	return tw.Flush()
}

// groupDigits writes n with thousands separators: 22713216 → 22,713,216.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
