package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"800MiB": 800 << 20, "2GiB": 2 << 30, "1.5 GB": 1.5e9, "4096": 4096, "10KB": 10e3, "3B": 3} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "0", "lots", "1TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// TestSetMemoryLimit checks that auto adds the bound (times 1.25) to what
// the process holds, that a size is taken as given and that off leaves the
// limit alone.
func TestSetMemoryLimit(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	if err := setMemoryLimit("300MiB", nil); err != nil || debug.SetMemoryLimit(-1) != 300<<20 {
		t.Fatalf("300MiB: limit %d, %v", debug.SetMemoryLimit(-1), err)
	}
	if err := setMemoryLimit("off", nil); err != nil || debug.SetMemoryLimit(-1) != 300<<20 {
		t.Fatalf("off changed the limit to %d (%v)", debug.SetMemoryLimit(-1), err)
	}
	const bound = 1 << 30
	if err := setMemoryLimit("auto", func() int64 { return bound }); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got < bound*5/4 || got > bound*5/4+1<<30 {
		t.Fatalf("auto: limit %d, want 1.25 GiB plus the process's memory", got)
	}
	if err := setMemoryLimit("big", nil); err == nil {
		t.Fatal("a bad size was accepted")
	}
}

// TestEmbedCompute runs embed in float32 and in the opt-in int8 and bf16
// modes on the sample file: the int8 and bf16 vectors stay within cosine
// 0.999 of the float32 ones, row by row.
func TestEmbedCompute(t *testing.T) {
	// embed sets the process's soft memory limit; give the old one back.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	read := func(compute string) [][]float64 {
		out := filepath.Join(dir, compute+".jsonl")
		args := []string{"--model", "../../testdata/tiny-bert", "--input", "../../testdata/sample.jsonl",
			"--output", out, "--quiet", "--compute", compute}
		if err := runEmbed(context.Background(), args); err != nil {
			t.Fatalf("--compute %s: %v", compute, err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]float64
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var r struct {
				Embedding []float64 `json:"embedding"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			rows = append(rows, r.Embedding)
		}
		return rows
	}
	f32 := read("float32")
	if len(f32) != 8 {
		t.Fatalf("float32 rows: %d, want 8", len(f32))
	}
	for _, mode := range []string{"int8", "bf16"} {
		got := read(mode)
		if len(got) != 8 {
			t.Fatalf("%s rows: %d, want 8", mode, len(got))
		}
		for i := range f32 {
			if (f32[i] == nil) != (got[i] == nil) {
				t.Fatalf("%s row %d: null in one mode only", mode, i)
			}
			if f32[i] == nil {
				continue
			}
			var dot, na, nb float64
			for j := range f32[i] {
				dot += f32[i][j] * got[i][j]
				na += f32[i][j] * f32[i][j]
				nb += got[i][j] * got[i][j]
			}
			if c := dot / math.Sqrt(na*nb); c < 0.999 {
				t.Errorf("row %d: %s cosine to float32 %.6f < 0.999", i, mode, c)
			}
		}
	}
}
