package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// TestExplainCommand runs "embedpipe explain" on the README's bank pair and
// checks the files it lists exist and explain.json names both texts.
func TestExplainCommand(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-bert")
	out := filepath.Join(t.TempDir(), "x")
	var stdout, stderr bytes.Buffer
	err := explainCmd(context.Background(), &stdout, &stderr, []string{"--model", dir,
		"--text", "the river bank flooded", "--text", "the bank raised its rates", "--out", out, "--layers", "1", "--heads", "0-1"})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	lines := strings.Fields(stdout.String())
	if len(lines) != 8 {
		t.Fatalf("listed %q", lines)
	}
	for _, l := range lines {
		if st, err := os.Stat(l); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", l, err)
		}
	}
	var res struct {
		ShownLayers []int `json:"shown_layers"`
		ShownHeads  []int `json:"shown_heads"`
		Texts       []struct {
			Text string `json:"text"`
		} `json:"texts"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "explain.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Texts) != 2 || res.Texts[1].Text != "the bank raised its rates" || len(res.ShownLayers) != 1 || res.ShownLayers[0] != 1 || len(res.ShownHeads) != 2 {
		t.Errorf("explain.json: %+v", res)
	}
}

// TestExplainBadFlags checks that bad flags are refused with a message
// saying what is wrong, before any output is written.
func TestExplainBadFlags(t *testing.T) {
	dir := refs.ModelDir(t, "tiny-bert")
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	out := filepath.Join(tmp, "out")
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"--model", dir, "--out", out}, "at least one --text"},
		{[]string{"--text", "a", "--out", out}, "--model"},
		{[]string{"--model", dir, "--text", "a", "--out", out, "--layers", "x"}, "not an index"},
		{[]string{"--model", dir, "--text", "a", "--out", out, "--heads", "3-1"}, "not a range"},
		{[]string{"--model", dir, "--text", "a", "--out", out, "--layers", "7"}, "layer 7 does not exist"},
		{[]string{"--model", dir, "--text", "a", "--out", out, "--max-tokens", "0"}, "--max-tokens 0"},
		{[]string{"--model", dir, "--text", "a", "--out", file}, "not a directory"},
		{[]string{"--model", dir, "--text", "a", "--out", out, "stray"}, "unexpected arguments"},
		{[]string{"--model", dir, "--text", strings.Repeat("word ", 80), "--out", out}, "82 tokens, more than the limit of 64"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := explainCmd(context.Background(), &stdout, &stderr, c.args)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want an error mentioning %q", c.args, err, c.msg)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused run created %s", out)
	}
}
