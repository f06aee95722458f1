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
	"io"
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

// truncateRenorm keeps the first k of dim values of each of n vectors
// (Matryoshka truncation) and normalizes them again, compacting in place.
func truncateRenorm(v []float32, n, dim, k int) []float32 {
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

// ReadTexts reads the text column of an input file: for Parquet, the row
// groups [rgLo, rgHi); for JSONL, every line (rgLo and rgHi are ignored). It
// returns the texts and the index of the first one in the file. A null or
// missing text is read as "". Malformed input gives an error wrapping
// ErrBadInput and ErrPermanent that names the file and the row.
func ReadTexts(path, format, column string, rgLo, rgHi int) ([]string, int64, error) {
	switch format {
	case schemas.FormatParquet:
		return readParquetTexts(path, column, rgLo, rgHi)
	case schemas.FormatJSONL:
		texts, err := readJSONLTexts(path, column)
		return texts, 0, err
	}
	return nil, 0, fmt.Errorf("%w: %w: %s: format %q is not supported by workers", ErrPermanent, ErrBadInput, path, format)
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

func readParquetTexts(path, column string, lo, hi int) (texts []string, first int64, err error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	leaf, err := textLeaf(path, pf, column)
	if err != nil {
		return nil, 0, err
	}
	rgs := pf.RowGroups()
	if lo < 0 || hi > len(rgs) || lo > hi {
		return nil, 0, badInput(path, "row groups [%d,%d) out of the file's %d", lo, hi, len(rgs))
	}
	for i := 0; i < lo; i++ {
		first += rgs[i].NumRows()
	}
	buf := make([]parquet.Value, 256)
	for i := lo; i < hi; i++ {
		want := rgs[i].NumRows()
		got := int64(0)
		pages := rgs[i].ColumnChunks()[leaf.ColumnIndex].Pages()
		for {
			p, err := pages.ReadPage()
			if err == io.EOF {
				break
			}
			if err != nil {
				pages.Close()
				return nil, 0, badInput(path, "row group %d, column %q: %v", i, column, err)
			}
			vr := p.Values()
			for {
				n, err := vr.ReadValues(buf)
				for _, v := range buf[:n] {
					if v.IsNull() {
						texts = append(texts, "")
					} else {
						texts = append(texts, string(v.ByteArray()))
					}
					got++
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					parquet.Release(p)
					pages.Close()
					return nil, 0, badInput(path, "row group %d, column %q, row %d: %v", i, column, first+int64(len(texts)), err)
				}
			}
			parquet.Release(p)
		}
		pages.Close()
		if got != want {
			return nil, 0, badInput(path, "row group %d: %d values of column %q for %d rows", i, got, column, want)
		}
	}
	return texts, first, nil
}

func readJSONLTexts(path, column string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("workers: input %w", err)
	}
	defer f.Close()
	var texts []string
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
			return nil, badInput(path, "line %d: %v", line, err)
		}
		raw, ok := obj[column]
		if !ok || string(raw) == "null" {
			texts = append(texts, "")
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badInput(path, "line %d: field %q is not a string", line, column)
		}
		texts = append(texts, s)
	}
	if err := sc.Err(); err != nil {
		return nil, badInput(path, "after line %d: %v", line, err)
	}
	return texts, nil
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
