package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
)

func TestInspect(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := inspect(context.Background(), &out, &errOut, []string{"--model", "../../testdata/tiny-bert"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BertModel", "model_type:", "bert", "layers:", "attention heads:", "4",
		"parameters:", "1,011,360", "dtype:", "F32", "tokenizer:", "WordPiece", "pooling:", "mean",
		"normalize:", "true", "max length:", "128", "prompts:"} {
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
