package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/encoder"
)

// panickingModel panics in its second encoder batch.
type panickingModel struct {
	*encoder.Model
	calls int
}

func (m *panickingModel) EmbedBatch(ctx context.Context, b *encoder.Batch, dst []float32) error {
	if m.calls++; m.calls == 2 {
		var s []int
		_ = s[3] // an index out of range, as a damaged input once caused
	}
	return m.Model.EmbedBatch(ctx, b, dst)
}

// TestStagePanicIsAnError checks that a panic inside a stage ends the run
// with an error naming the input and where it happened, instead of killing
// the process.
func TestStagePanicIsAnError(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.parquet")
	genInput(t, in, 100, 100)
	m := &panickingModel{Model: loadTinyBert(t)}
	_, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: filepath.Join(dir, "out.parquet"), ChunkRows: 10, BatchSize: 10, Workers: 1})
	if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), "safely_test.go") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want one line of ErrInternal naming %s and the panicking line", err, in)
	}
}
