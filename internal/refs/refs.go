package refs

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// SharedDir returns the path of the shared directory: $EMBEDPIPE_SHARED if
// set, else the "shared" directory beside the repository root. It returns ""
// when neither exists.
func SharedDir() string {
	if d := os.Getenv("EMBEDPIPE_SHARED"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		return ""
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	// file is <root>/internal/refs/refs.go.
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	d := filepath.Join(filepath.Dir(root), "shared")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	return ""
}

// Shared returns the shared directory or skips the test with a clear message
// when it is absent.
func Shared(tb testing.TB) string {
	tb.Helper()
	d := SharedDir()
	if d == "" {
		tb.Skip("shared material (../shared or $EMBEDPIPE_SHARED) is absent: skipping reference test")
	}
	return d
}

// ModelDir returns the path of shared model directory name, skipping the test
// when the shared material is absent.
func ModelDir(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(Shared(tb), "models", name)
}

// Row is one row of a <model>.parquet reference file.
type Row struct {
	Text           *string   `parquet:"text,optional"`
	InputIDs       []int32   `parquet:"input_ids,list"`
	Embedding      []float32 `parquet:"embedding,list"`
	EmbeddingQuery []float32 `parquet:"embedding_query,list,optional"`
}

// TokenRow is one row of a <model>.token_embeddings.parquet reference file:
// Values holds NTokens×dim floats.
type TokenRow struct {
	Text    *string   `parquet:"text,optional"`
	NTokens int32     `parquet:"n_tokens"`
	Values  []float32 `parquet:"values,list"`
}

// TokenizerRow is one row of a tokenizer.<name>.parquet reference file
// (untruncated ids; tokens and offsets are JSON strings).
type TokenizerRow struct {
	Text     *string `parquet:"text,optional"`
	InputIDs []int32 `parquet:"input_ids,list"`
	Tokens   string  `parquet:"tokens,optional"`
	Offsets  string  `parquet:"offsets,optional"`
}

// Read reads every row of the reference Parquet file name (relative to
// shared/refs) into []T.
func Read[T any](tb testing.TB, name string) []T {
	tb.Helper()
	path := filepath.Join(Shared(tb), "refs", name)
	rows, err := ReadFile[T](path)
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// ReadFile reads every row of the Parquet file at path into []T.
func ReadFile[T any](path string) ([]T, error) {
	rows, err := parquet.ReadFile[T](path)
	if err != nil {
		return nil, fmt.Errorf("refs: reading %s: %w", path, err)
	}
	return rows, nil
}
