package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/hubtest"
	"github.com/embedpipe/embedpipe/internal/refs"
	"github.com/embedpipe/embedpipe/schemas"
)

func TestInspect(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := inspect(context.Background(), &out, &errOut, []string{"--model", "../../testdata/tiny-bert"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BertModel", "model_type:", "bert", "layers:", "attention heads:", "4",
		"parameters:", "1,011,360", "dtype:", "F32", "tokenizer:", "WordPiece", "pooling:", "mean",
		"normalize:", "true", "max length:", "128", "prompts:", "files:", "model.safetensors (4,049,576 bytes)", "1_Pooling/config.json ("} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestInspectJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := inspect(context.Background(), &out, &errOut, []string{"--json", "--hash", "--model", "../../testdata/tiny-bert"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		encoder.Info
		ContentHash string `json:"content_hash"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ModelType != "bert" || got.Dim != 32 || got.Layers != 2 || len(got.ContentHash) != 64 {
		t.Fatalf("JSON: %+v", got)
	}
}

func TestInspectErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := inspect(context.Background(), &out, &errOut, nil); err == nil {
		t.Error("no --model: no error")
	}
	err := inspect(context.Background(), &out, &errOut, []string{"--model", t.TempDir()})
	if !errors.Is(err, encoder.ErrModelDir) {
		t.Errorf("empty directory: %v", err)
	}
}

// TestInspectHubID resolves --model org/name through HF_ENDPOINT and
// HF_HOME, then again with HF_HUB_OFFLINE=1 and the server gone.
func TestInspectHubID(t *testing.T) {
	srv, err := hubtest.New(map[string]hubtest.Repo{"acme/tiny-bert": {Dir: "../../testdata/tiny-bert"}})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_ENDPOINT", srv.URL)
	commit := srv.Commit("acme/tiny-bert")
	for _, offline := range []string{"", "1"} {
		if offline == "1" {
			srv.Close()
		}
		t.Setenv("HF_HUB_OFFLINE", offline)
		var out, errOut bytes.Buffer
		if err := inspect(context.Background(), &out, &errOut, []string{"--model", "acme/tiny-bert"}); err != nil {
			t.Fatalf("offline=%q: %v", offline, err)
		}
		if want := "acme/tiny-bert@" + commit; !strings.Contains(out.String(), want) ||
			!strings.Contains(out.String(), filepath.Join(home, "hub", "models--acme--tiny-bert", "snapshots", commit)) {
			t.Fatalf("offline=%q: output lacks %s and its snapshot:\n%s", offline, want, out.String())
		}
	}
}

// TestInspectHeads checks that inspect describes the retrieval heads:
// Dense shapes and activations, the sparse vocabulary and pooling, the
// cross-encoder's labels and activation.
func TestInspectHeads(t *testing.T) {
	shared := refs.Shared(t)
	cases := map[string][]string{
		"tiny-bert-dense":  {"kind:", "embedding", "dense 1:", "32 → 24, bias, Tanh", "embedding dim:", "24"},
		"tiny-bert-dense2": {"dense 1:", "32 → 64, no bias, Identity", "dense 2:", "64 → 32, no bias, Identity"},
		"tiny-splade":      {"kind:", "sparse", "SPLADE over 30522 vocabulary tokens, max pooling, relu activation"},
		"tiny-reranker":    {"kind:", "cross-encoder", "1 label(s) LABEL_0, score = Sigmoid(logit)"},
	}
	for name, wants := range cases {
		var out, errOut bytes.Buffer
		if err := inspect(context.Background(), &out, &errOut, []string{"--model", filepath.Join(shared, "models", name)}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, w := range wants {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: inspect output lacks %q:\n%s", name, w, out.String())
			}
		}
		if strings.Contains(out.String(), "include_prompt") {
			t.Errorf("%s: spurious include_prompt note:\n%s", name, out.String())
		}
	}
}

func TestPerWorkerRates(t *testing.T) {
	rs := []schemas.Result{
		{Worker: "b", Rows: 100, Tokens: 1000, Seconds: 2},
		{Worker: "a", Rows: 30, Tokens: 300, Seconds: 1},
		{Worker: "b", Rows: 50, Tokens: 500, Seconds: 1},
		{Worker: "a", Error: "boom"},
	}
	got := perWorker(rs)
	if len(got) != 2 || got[0].id != "a" || got[0].tasks != 1 || got[0].rows != 30 ||
		got[1].id != "b" || got[1].tasks != 2 || got[1].rows != 150 || got[1].tokens != 1500 || got[1].seconds != 3 {
		t.Fatalf("perWorker = %+v", got)
	}
}
