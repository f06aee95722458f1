package workers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"

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

// EmbedRunner is the TaskRunner that embeds with an Embedder and writes a
// Parquet part with two columns: "row" (int64, the row's index in its input
// file) and the output column (list<float>, default "embedding").
type EmbedRunner struct {
	Embedder  Embedder
	BatchSize int // texts per EmbedTo call; 0 means 32
}

// RunTask implements TaskRunner.
func (r *EmbedRunner) RunTask(ctx context.Context, t schemas.Task, input, outDir string) (PartInfo, error) {
	o := t.Options
	if o.Pooling != "" {
		return PartInfo{}, fmt.Errorf("%w: task %s/%d: pooling %q overrides the model's pooling, which workers do not support", ErrPermanent, t.JobID, t.Index, o.Pooling)
	}
	if o.Precision != "" && o.Precision != "float32" {
		return PartInfo{}, fmt.Errorf("%w: task %s/%d: precision %q is not supported by workers (float32 only)", ErrPermanent, t.JobID, t.Index, o.Precision)
	}
	if o.Normalize != nil && !*o.Normalize {
		return PartInfo{}, fmt.Errorf("%w: task %s/%d: normalize=false is not supported by workers", ErrPermanent, t.JobID, t.Index)
	}
	dim := r.Embedder.Dim()
	outDim := dim
	if o.TruncateDim > 0 {
		if o.TruncateDim > dim {
			return PartInfo{}, fmt.Errorf("%w: task %s/%d: truncate_dim %d exceeds the model's %d dimensions", ErrPermanent, t.JobID, t.Index, o.TruncateDim, dim)
		}
		outDim = o.TruncateDim
	}
	prompt := o.Prompt
	if o.PromptName != "" {
		p, err := r.Embedder.Prompt(o.PromptName)
		if err != nil {
			return PartInfo{}, fmt.Errorf("%w: task %s/%d: %v", ErrPermanent, t.JobID, t.Index, err)
		}
		prompt = p
	}
	texts, first, err := ReadTexts(input, schemas.FormatOf(t.Input), t.Column, t.RowGroupLo, t.RowGroupHi)
	if err != nil {
		return PartInfo{}, err
	}
	if t.Rows > 0 && int64(len(texts)) != t.Rows {
		return PartInfo{}, fmt.Errorf("%w: task %s/%d: %s has %d rows in row groups [%d,%d), the plan said %d (file changed since submit?)",
			ErrPermanent, t.JobID, t.Index, input, len(texts), t.RowGroupLo, t.RowGroupHi, t.Rows)
	}
	bs := r.BatchSize
	if t.Options.BatchSize > 0 {
		bs = t.Options.BatchSize
	}
	if bs <= 0 {
		bs = 32
	}
	vecs := make([]float32, len(texts)*dim)
	var tokens int64
	for lo := 0; lo < len(texts); lo += bs {
		if err := ctx.Err(); err != nil {
			return PartInfo{}, err
		}
		hi := min(lo+bs, len(texts))
		n, err := r.Embedder.EmbedTo(ctx, vecs[lo*dim:hi*dim], texts[lo:hi], prompt, o.MaxLength)
		if err != nil {
			return PartInfo{}, fmt.Errorf("workers: task %s/%d: embedding rows %d..%d of %s: %w", t.JobID, t.Index, first+int64(lo), first+int64(hi), input, err)
		}
		tokens += int64(n)
	}
	if outDim < dim {
		vecs = truncateRenorm(vecs, len(texts), dim, outDim)
	}
	col := t.Output.Column
	if col == "" {
		col = "embedding"
	}
	info, err := WritePart(filepath.Join(outDir, t.Part), col, first, vecs, outDim)
	if err != nil {
		return PartInfo{}, err
	}
	info.Tokens = tokens
	return info, nil
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

// partType returns the row type of a part: {row int64; <col> []float32}.
func partType(col string) reflect.Type {
	return reflect.StructOf([]reflect.StructField{
		{Name: "Row", Type: reflect.TypeFor[int64](), Tag: `parquet:"row"`},
		{Name: "Embedding", Type: reflect.TypeFor[[]float32](), Tag: reflect.StructTag(`parquet:"` + col + `,list"`)},
	})
}

// WritePart writes n = len(vecs)/dim rows numbered first, first+1, … as a
// Parquet part at path, atomically: into a hidden temporary file in the same
// directory, synced, then renamed over path, and the directory synced.
func WritePart(path, col string, first int64, vecs []float32, dim int) (PartInfo, error) {
	n := 0
	if dim > 0 {
		n = len(vecs) / dim
	}
	dir, name := filepath.Dir(path), filepath.Base(path)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+name+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return PartInfo{}, fmt.Errorf("workers: writing part %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	rt := partType(col)
	schema := parquet.SchemaOf(reflect.New(rt).Elem().Interface())
	w := parquet.NewWriter(cw, schema, parquet.Compression(&parquet.Zstd), parquet.CreatedBy("embedpipe", "1", ""))
	row := reflect.New(rt).Elem()
	for i := 0; i < n; i++ {
		row.Field(0).SetInt(first + int64(i))
		row.Field(1).Set(reflect.ValueOf(vecs[i*dim : (i+1)*dim : (i+1)*dim]))
		if err := w.Write(row.Interface()); err != nil {
			return PartInfo{}, fmt.Errorf("workers: writing part %s row %d: %w", path, i, err)
		}
	}
	if err := w.Close(); err != nil {
		return PartInfo{}, fmt.Errorf("workers: writing part %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return PartInfo{}, fmt.Errorf("workers: syncing part %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return PartInfo{}, fmt.Errorf("workers: closing part %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return PartInfo{}, fmt.Errorf("workers: renaming part %s: %w", path, err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return PartInfo{}, err
	}
	return PartInfo{Name: name, Rows: int64(n), Bytes: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeFileAtomic writes data to path the way WritePart writes a part.
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

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
