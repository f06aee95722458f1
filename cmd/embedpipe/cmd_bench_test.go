package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/embedpipe/embedpipe/encoder/kernels"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchTextsJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl",
		"--batch-size", "3", "--reps", "2", "--threads", "2", "--json"}
	if err := bench(context.Background(), &out, &errOut, args); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var r benchResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	// sample.jsonl has 8 lines, one with a null text.
	if r.Sentences != 7 || r.Batch != 3 || r.Threads != 2 || r.Reps != 2 || len(r.SecondsAll) != 2 {
		t.Errorf("unexpected run description: %+v", r)
	}
	if r.RealTokens < 2*7 || r.PaddedTokens != r.RealTokens {
		t.Errorf("real tokens %d, padded %d", r.RealTokens, r.PaddedTokens)
	}
	if !(r.TokensPerS > 0 && r.SentencesPerS > 0 && r.E2ETokensPerS > 0 && r.ModelGFLOPPerS > 0) {
		t.Errorf("missing throughput figures: %+v", r)
	}
	if len(r.Kernels) != 3 || r.Kernels[0].Shape != "4096x32x32" || r.Kernels[1].Shape != "4096x32x64" || !(r.Kernels[2].GFLOPPerS > 0) {
		t.Errorf("kernel probe: %+v", r.Kernels)
	}
	if r.KernelFamily != kernels.Family() || r.Dispatch.Float32 != kernels.Family() || r.CPUFlags == nil || r.Dispatch.BF16Reason == "" {
		t.Errorf("kernel dispatch not reported: family %q, flags %v, dispatch %+v", r.KernelFamily, r.CPUFlags, r.Dispatch)
	}
	if !strings.Contains(errOut.String(), "skipped 1 lines whose text is null") {
		t.Errorf("stderr does not mention the skipped line:\n%s", errOut.String())
	}
}

// TestBenchCompute runs the int8 and bf16 modes, reported in the result,
// and checks that an unknown mode fails before any work with a clear error.
func TestBenchCompute(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, mode := range []string{"int8", "bf16"} {
		out.Reset()
		args := []string{"--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl",
			"--reps", "1", "--kernels=false", "--compute", mode, "--json"}
		if err := bench(context.Background(), &out, &errOut, args); err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		var r benchResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v: %q", err, out.String())
		}
		if r.Compute != mode || !(r.TokensPerS > 0) {
			t.Errorf("--compute %s: compute %q, %v tokens/s", mode, r.Compute, r.TokensPerS)
		}
	}
	for mode, want := range map[string]string{"int4": "supported: float32, int8, bf16", "BF16": "supported"} {
		err := bench(context.Background(), &out, &errOut, []string{"--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl", "--compute", mode})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--compute %s: %v, want an error mentioning %q", mode, err, want)
		}
	}
}

func TestBenchTokenIDs(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "ids.jsonl")
	if err := os.WriteFile(in, []byte("[101, 7592, 102]\n{\"input_ids\": [101, 2088, 2088, 102]}\n\n[101,102]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := bench(context.Background(), &out, &errOut, []string{"--model", "../../testdata/tiny-bert", "--input", in, "--reps", "1", "--kernels=false"}); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"3 sequences, 9 tokens", "encoder", "tokens/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "end-to-end") {
		t.Errorf("end-to-end figures reported for token ids:\n%s", out.String())
	}
}

func TestBenchInputErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, content, want string }{
		{"mixed", "{\"text\": \"a\"}\n[101, 102]\n", "bad.jsonl:2: mixes ids lines with text lines"},
		{"no field", "{\"id\": 1}\n", `bad.jsonl:1: neither "text" nor "input_ids"`},
		{"bad json", "{\"text\": \n", "bad.jsonl:1:"},
		{"bad ids", "[101, \"x\"]\n", "bad.jsonl:1: token ids"},
		{"empty ids", "[]\n", "bad.jsonl:1: no tokens"},
		{"too long", "[" + strings.Repeat("101,", 600) + "102]\n", "bad.jsonl:1: 601 tokens, longer than the model's 512 positions"},
		{"empty file", "\n", "no input lines"},
	}
	for _, tc := range cases {
		in := filepath.Join(dir, "bad.jsonl")
		if err := os.WriteFile(in, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		err := bench(context.Background(), &out, &errOut, []string{"--model", "../../testdata/tiny-bert", "--input", in, "--reps", "1", "--kernels=false"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"--input", "x"}, {"--model", "m"}, {"--model", "m", "--input", "x", "--reps", "0"}, {"--model", "m", "--input", "x", "--threads", "0"}} {
		if err := bench(context.Background(), &out, &errOut, args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
