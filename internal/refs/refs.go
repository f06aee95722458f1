package refs

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
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

// ReadJSONL reads every row of the gzip JSON Lines reference file name
// (relative to shared/refs, e.g. "tiny-splade.jsonl.gz") into []T,
// skipping the test when the shared material is absent.
func ReadJSONL[T any](tb testing.TB, name string) []T {
	tb.Helper()
	rows, err := ReadJSONLFile[T](filepath.Join(Shared(tb), "refs", name))
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// ReadJSONLFile reads every row of the JSON Lines file at path, gzip
// compressed when the name ends in .gz, into []T. Errors name the file
// and the line.
func ReadJSONLFile[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("refs: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if filepath.Ext(path) == ".gz" {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("refs: %s: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	var rows []T
	for line := 1; sc.Scan(); line++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("refs: %s: line %d: %w", path, line, err)
		}
		rows = append(rows, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("refs: %s: %w", path, err)
	}
	return rows, nil
}

// DenseRow is one row of the tiny-bert-dense*.jsonl.gz references.
type DenseRow struct {
	Text      string    `json:"text"`
	InputIDs  []int32   `json:"input_ids"`
	Embedding []float64 `json:"embedding"`
}

// SparseRow is one row of the tiny-splade.jsonl.gz reference: the SPLADE
// vector's indices (ascending) and values.
type SparseRow struct {
	Text     string    `json:"text"`
	InputIDs []int32   `json:"input_ids"`
	Indices  []int32   `json:"indices"`
	Values   []float64 `json:"values"`
}

// PairRow is one row of the tiny-reranker.jsonl.gz reference: a (query,
// passage) pair, its ids and token types, and the cross-encoder's logit and
// score.
type PairRow struct {
	Pair         string  `json:"pair"`
	Query        string  `json:"query"`
	Passage      string  `json:"passage"`
	InputIDs     []int32 `json:"input_ids"`
	TokenTypeIDs []int32 `json:"token_type_ids"`
	Logit        float64 `json:"logit"`
	Score        float64 `json:"score"`
}
