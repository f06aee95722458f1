package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/embedpipe/embedpipe/io/arrowio"
	"github.com/embedpipe/embedpipe/io/csvio"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/jsonlio"
	"github.com/embedpipe/embedpipe/io/parquetio"
)

// Format is a file format embedpipe reads or writes.
type Format string

// The formats, named by their canonical extension.
const (
	Parquet     Format = "parquet"
	ArrowFile   Format = "arrow"
	ArrowStream Format = "arrows"
	JSONL       Format = "jsonl"
	CSV         Format = "csv"
)

// FormatOf returns the format of path from its extension.
func FormatOf(path string) (Format, error) {
	if fileio.IsGzip(path) {
		// Only the line-oriented formats are read as a stream; Parquet
		// and Arrow compress internally and need random access.
		switch strings.ToLower(filepath.Ext(path[:len(path)-3])) {
		case ".jsonl", ".ndjson":
			return JSONL, nil
		case ".csv":
			return CSV, nil
		}
		return "", fmt.Errorf("%s: %w (gzip applies to .jsonl.gz and .csv.gz; Parquet and Arrow files compress internally)", path, fileio.ErrUnsupportedFormat)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		return Parquet, nil
	case ".arrow", ".feather", ".ipc":
		return ArrowFile, nil
	case ".arrows":
		return ArrowStream, nil
	case ".jsonl", ".ndjson":
		return JSONL, nil
	case ".csv":
		return CSV, nil
	}
	return "", fmt.Errorf("%s: %w (want .parquet, .arrow, .feather, .arrows, .jsonl or .csv)", path, fileio.ErrUnsupportedFormat)
}

// ReadOptions select what Open reads.
type ReadOptions struct {
	// ChunkRows caps the rows per chunk; <= 0 means fileio.DefaultChunkRows.
	ChunkRows int
	// ChunkBytes, when > 0, caps the estimated uncompressed bytes per chunk
	// of Parquet files (see parquetio.ReadOptions); other formats chunk by
	// rows only.
	ChunkBytes int64
	// RowGroupLo and RowGroupHi select Parquet row groups [lo, hi); both 0
	// means all. A range on a non-Parquet file is an error.
	RowGroupLo, RowGroupHi int
	// TextColumn is kept a string column by readers that infer types (CSV).
	TextColumn string
	// MoreTextColumns are kept string columns too (a cross-encoder's
	// document column).
	MoreTextColumns []string
	// KeepBadRows makes the readers of formats whose rows can be malformed
	// one by one (JSONL, CSV) hand such rows out as nulls listed in the
	// chunk's BadRows instead of failing the read, so that the caller's
	// row-error policy decides.
	KeepBadRows bool
}

// Open opens path with the reader its extension names.
func Open(path string, opts ReadOptions) (fileio.Reader, error) {
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	if f != Parquet && (opts.RowGroupLo != 0 || opts.RowGroupHi != 0) {
		return nil, fmt.Errorf("%s: %w: row-group ranges apply to Parquet files only", path, fileio.ErrRowGroupRange)
	}
	switch f {
	case Parquet:
		return parquetio.Open(path, parquetio.ReadOptions{RowGroupLo: opts.RowGroupLo, RowGroupHi: opts.RowGroupHi, ChunkRows: opts.ChunkRows, ChunkBytes: opts.ChunkBytes})
	case ArrowFile, ArrowStream:
		return arrowio.Open(path, arrowio.ReadOptions{ChunkRows: opts.ChunkRows, Stream: f == ArrowStream})
	case JSONL:
		return jsonlio.Open(path, jsonlio.ReadOptions{ChunkRows: opts.ChunkRows, KeepBadRows: opts.KeepBadRows})
	case CSV:
		var cols []string
		if opts.TextColumn != "" {
			cols = []string{opts.TextColumn}
		}
		cols = append(cols, opts.MoreTextColumns...)
		return csvio.Open(path, csvio.ReadOptions{ChunkRows: opts.ChunkRows, StringColumns: cols, KeepBadRows: opts.KeepBadRows})
	}
	return nil, fmt.Errorf("%s: %w", path, fileio.ErrUnsupportedFormat)
}

// WriteOptions tune Create.
type WriteOptions struct {
	// NoDictionary names Parquet columns written without dictionary
	// encoding.
	NoDictionary []string
}

// Writable reports, without touching the file system, whether Create can
// write path's format.
func Writable(path string) error {
	f, err := FormatOf(path)
	if err != nil {
		return err
	}
	if fileio.IsGzip(path) {
		return fmt.Errorf("%s: %w: cannot write gzip (write .parquet, .arrow, .arrows or .jsonl)", path, fileio.ErrUnsupportedFormat)
	}
	if f == CSV {
		return fmt.Errorf("%s: %w: cannot write csv (write .parquet, .arrow, .arrows or .jsonl)", path, fileio.ErrUnsupportedFormat)
	}
	return nil
}

// Create starts writing path with the writer its extension names.
func Create(path string, schema *arrow.Schema) (fileio.Writer, error) {
	return CreateWith(path, schema, WriteOptions{})
}

// CreateWith is Create with options.
func CreateWith(path string, schema *arrow.Schema, opts WriteOptions) (fileio.Writer, error) {
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	switch f {
	case Parquet:
		return parquetio.Create(path, schema, parquetio.WriteOptions{NoDictionary: opts.NoDictionary})
	case ArrowFile, ArrowStream:
		return arrowio.Create(path, schema, arrowio.WriteOptions{Stream: f == ArrowStream})
	case JSONL:
		return jsonlio.Create(path, schema)
	}
	return nil, fmt.Errorf("%s: %w: cannot write %s (write .parquet, .arrow, .arrows or .jsonl)", path, fileio.ErrUnsupportedFormat, f)
}

// Expand turns an input argument into the sorted list of files it names: a
// file names itself, a directory names the files in it with a known
// extension, anything else is a glob pattern.
func Expand(arg string) ([]string, error) {
	st, err := os.Stat(arg)
	if err == nil && !st.IsDir() {
		return []string{arg}, nil
	}
	var cands []string
	if err == nil {
		ents, err := os.ReadDir(arg)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				cands = append(cands, filepath.Join(arg, e.Name()))
			}
		}
	} else {
		cands, err = filepath.Glob(arg)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", arg, err)
		}
	}
	var out []string
	for _, c := range cands {
		if st, err := os.Stat(c); err != nil || st.IsDir() {
			continue
		}
		if _, err := FormatOf(c); err == nil {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("input %q: no readable files (%w)", arg, os.ErrNotExist)
	}
	return out, nil
}
