package workers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/parquet-go/parquet-go"
)

// Embedder is what a worker needs of an encoder. Implementations must be
// safe for concurrent use; EmbedTo blocks until the vectors are in dst or
// ctx is done, and does not keep texts or dst after it returns.
type Embedder interface {
	// Dim returns the length of one vector.
	Dim() int
	// Prompt returns the text of the model's prompt named name.
	Prompt(name string) (string, error)
	// EmbedTo writes the pooled, normalized vectors of texts (each
	// prefixed with prompt, truncated at maxLen tokens, 0 meaning the
	// model's maximum) into dst, row-major with stride Dim(), and returns
	// the number of tokens the model saw.
	EmbedTo(ctx context.Context, dst []float32, texts []string, prompt string, maxLen int) (tokens int, err error)
	// ContentHash identifies the model's weights and configuration.
	ContentHash() string
}

// PartInfo describes a part file once it is durable.
type PartInfo struct {
	Name   string
	Rows   int64
	Tokens int64
	Bytes  int64
	SHA256 string
}

// TaskRunner runs one task: it reads the task's rows from the resolved input
// path, embeds them and writes the part as outDir/t.Part atomically (a
// reader sees the old part or the whole new one, never a partial one). Run
// blocks until the part is durable on disk or ctx is done. Errors wrapping
// ErrPermanent are not worth retrying.
type TaskRunner interface {
	RunTask(ctx context.Context, t schemas.Task, input, outDir string) (PartInfo, error)
}

// TruncateNormalize keeps the first k of dim values of each of n vectors
// (Matryoshka truncation) and normalizes them again, compacting in place.
func TruncateNormalize(v []float32, n, dim, k int) []float32 {
	for i := 0; i < n; i++ {
		src := v[i*dim : i*dim+k]
		dst := v[i*k : i*k+k]
		var ss float64
		for _, x := range src {
			ss += float64(x) * float64(x)
		}
		inv := float32(1)
		if ss > 0 {
			inv = float32(1 / math.Sqrt(ss))
		}
		for j, x := range src {
			dst[j] = x * inv
		}
	}
	return v[:n*k]
}

func badInput(path, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s: %s", ErrPermanent, ErrBadInput, path, fmt.Sprintf(format, args...))
}

// ParquetRowGroups returns the row counts of the row groups of a Parquet
// file, after checking that it has a readable byte-array column named
// column.
func ParquetRowGroups(path, column string) ([]int64, error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := textLeaf(path, pf, column); err != nil {
		return nil, err
	}
	var rows []int64
	for _, rg := range pf.RowGroups() {
		rows = append(rows, rg.NumRows())
	}
	return rows, nil
}

func openParquet(path string) (*os.File, *parquet.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("workers: input %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("workers: input %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close()
		return nil, nil, badInput(path, "not a readable Parquet file: %v", err)
	}
	return f, pf, nil
}

func textLeaf(path string, pf *parquet.File, column string) (parquet.LeafColumn, error) {
	leaf, ok := pf.Schema().Lookup(column)
	if !ok {
		return leaf, badInput(path, "no column %q", column)
	}
	if leaf.MaxRepetitionLevel > 0 {
		return leaf, badInput(path, "column %q is repeated, want one string per row", column)
	}
	if k := leaf.Node.Type().Kind(); k != parquet.ByteArray {
		return leaf, badInput(path, "column %q has physical type %v, want a string (BYTE_ARRAY)", column, k)
	}
	return leaf, nil
}

// countJSONLRows counts the rows of a JSONL file, checking that each line
// is a JSON object whose column, when present, is a string or null.
func countJSONLRows(path, column string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("workers: input %w", err)
	}
	defer f.Close()
	var rows int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), schemas.MaxMessageBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return 0, badInput(path, "line %d: %v", line, err)
		}
		rows++
		raw, ok := obj[column]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, badInput(path, "line %d: field %q is not a string", line, column)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, badInput(path, "after line %d: %v", line, err)
	}
	return rows, nil
}

// writeFileAtomic writes data to path atomically: into a hidden temporary
// file in the same directory, synced, then renamed over path, and the
// directory synced.
func writeFileAtomic(path string, data []byte) error {
	dir, name := filepath.Dir(path), filepath.Base(path)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+name+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("workers: writing %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("workers: writing %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("workers: syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("workers: syncing directory %s: %w", dir, err)
	}
	return nil
}
