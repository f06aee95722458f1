package encoder_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/internal/refs"
)

// cosine returns the cosine similarity of a and b, in float64.
func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// maxAbs returns the largest |a[i]-b[i]|.
func maxAbs(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func load(t testing.TB, dir string, opts ...encoder.Option) *encoder.Model {
	t.Helper()
	m, err := encoder.Load(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// minilmMarker marks a complete generated minilm-l6-shape directory; bump
// its version if the generator's output ever changes.
const minilmMarker = ".embedpipe-complete-v1"

// minilmDir returns the minilm-l6-shape model directory, generating it once
// into a cache under os.TempDir() with the shared genmodel tool (88 MB,
// a few seconds). Concurrent test binaries each generate into a private
// directory and the first rename wins.
func minilmDir(t testing.TB) string {
	t.Helper()
	shared := refs.Shared(t)
	dir := filepath.Join(os.TempDir(), "embedpipe-minilm-l6-shape")
	if _, err := os.Stat(filepath.Join(dir, minilmMarker)); err == nil {
		return dir
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "embedpipe-minilm-gen-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "model")
	cmd := exec.Command("go", "run", ".", "-spec", "minilm-l6-shape", "-out", out)
	cmd.Dir = filepath.Join(shared, "tools", "genmodel")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("generating minilm-l6-shape: %v\n%s", err, stderr.String())
	}
	if err := os.WriteFile(filepath.Join(out, minilmMarker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(out, dir); err != nil {
		// Another process may have won the race; use its copy if complete,
		// else replace a stale incomplete one.
		if _, serr := os.Stat(filepath.Join(dir, minilmMarker)); serr == nil {
			return dir
		}
		os.RemoveAll(dir)
		if err := os.Rename(out, dir); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
