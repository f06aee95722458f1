package parquetio

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// DefaultRowGroupRows and DefaultRowGroupBytes bound a row group: it ends
// at whichever comes first. A row group is buffered in memory until
// complete, so together they bound the writer's memory whatever the width
// of the rows.
const (
	DefaultRowGroupRows  = 8192
	DefaultRowGroupBytes = 32 << 20
)

// DefaultPageBytes is the target size of a data page. The column writers
// take values in batches of writeBatchRows and close a page once it
// exceeds the target, so a page holds at most about writeBatchRows rows
// more than it: a small batch keeps pages of wide rows (large binary
// columns) near the target, and so the memory of whoever reads them.
const (
	DefaultPageBytes = 1 << 20
	writeBatchRows   = 64
)

// WriteOptions tune a Writer.
type WriteOptions struct {
	// RowGroupRows caps the rows per row group; <= 0 means DefaultRowGroupRows.
	RowGroupRows int
	// Compression defaults to zstd.
	Compression *compress.Compression
	// CompressionLevel is the codec's level; 0 means DefaultZstdLevel for
	// zstd and the codec's default otherwise.
	CompressionLevel int
	// NoDictionary names columns written without dictionary encoding (free
	// text that rarely repeats); fixed-size list columns never use it.
	NoDictionary []string
}

// DefaultZstdLevel favours speed: embeddings barely compress, and the
// writer must not slow the pipeline down.
const DefaultZstdLevel = 1

// Writer writes Arrow records to a Parquet file that carries the Arrow schema,
// zstd-compressed by default. It implements fileio.Writer.
type Writer struct {
	af      *fileio.AtomicFile
	fw      *pqarrow.FileWriter
	schema  *arrow.Schema
	rgRows  int
	rgBytes int64
	pending []arrow.Record // rows of the row group being gathered
	nrows   int
	nbytes  int64
	closed  bool
}

// Create starts writing path with the given schema.
func Create(path string, schema *arrow.Schema, opts WriteOptions) (*Writer, error) {
	rows := opts.RowGroupRows
	if rows <= 0 {
		rows = DefaultRowGroupRows
	}
	codec := compress.Codecs.Zstd
	if opts.Compression != nil {
		codec = *opts.Compression
	}
	level := opts.CompressionLevel
	if level == 0 && codec == compress.Codecs.Zstd {
		level = DefaultZstdLevel
	}
	af, err := fileio.CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	popts := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithMaxRowGroupLength(int64(rows)),
		parquet.WithDataPageSize(DefaultPageBytes),
		parquet.WithBatchSize(writeBatchRows),
		parquet.WithCreatedBy("embedpipe"),
	}
	if level != 0 {
		popts = append(popts, parquet.WithCompressionLevel(level))
	}
	// Dictionary encoding of embedding floats costs time and saves nothing:
	// switch it off for the leaves of fixed-size list columns.
	stored := storedSchema(schema)
	if sc, err := pqarrow.ToParquet(stored, nil, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); err == nil {
		for i := 0; i < sc.NumColumns(); i++ {
			path := sc.Column(i).ColumnPath()
			if f, ok := schema.FieldsByName(path[0]); ok && len(f) > 0 && (f[0].Type.ID() == arrow.FIXED_SIZE_LIST || slices.Contains(opts.NoDictionary, path[0])) {
				popts = append(popts, parquet.WithDictionaryFor(path.String(), false))
			}
		}
	}
	props := parquet.NewWriterProperties(popts...)
	fw, err := pqarrow.NewFileWriter(stored, writeOnly{af}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		af.Abort()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Writer{af: af, fw: fw, schema: schema, rgRows: rows, rgBytes: DefaultRowGroupBytes}, nil
}

// Write appends rec.
func (w *Writer) Write(ctx context.Context, rec arrow.Record) error {
	if err := fileio.CheckWrite(ctx, w.af.Final(), rec, w.schema); err != nil {
		return err
	}
	for off := int64(0); off < rec.NumRows(); {
		k := min(rec.NumRows()-off, int64(w.rgRows-w.nrows))
		sl := rec.NewSlice(off, off+k)
		w.pending = append(w.pending, sl)
		w.nrows += int(k)
		w.nbytes += recordBytes(sl)
		off += k
		if w.nrows >= w.rgRows || w.nbytes >= w.rgBytes {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the gathered rows as one row group. Columns go through
// WriteColumnData so that fixed-size lists can be handed over as lists (see
// toList).
func (w *Writer) flush() error {
	if w.nrows == 0 {
		return nil
	}
	defer func() {
		for _, r := range w.pending {
			r.Release()
		}
		w.pending, w.nrows, w.nbytes = w.pending[:0], 0, 0
	}()
	w.fw.NewRowGroup()
	for c := 0; c < w.schema.NumFields(); c++ {
		parts := make([]arrow.Array, len(w.pending))
		typ := w.schema.Field(c).Type
		for i, r := range w.pending {
			parts[i] = r.Column(c)
			parts[i].Retain()
			if fl, ok := parts[i].(*array.FixedSizeList); ok {
				l, err := toList(fl)
				fl.Release()
				if err != nil {
					releaseAll(parts[:i])
					return fmt.Errorf("%s: column %q: %w", w.af.Final(), w.schema.Field(c).Name, err)
				}
				parts[i], typ = l, l.DataType()
			}
		}
		// The pieces go in as one chunked column: no copy into a single
		// array.
		ch := arrow.NewChunked(typ, parts)
		releaseAll(parts)
		err := w.fw.WriteColumnChunked(ch, 0, int64(w.nrows))
		ch.Release()
		if err != nil {
			return fmt.Errorf("%s: column %q: %w", w.af.Final(), w.schema.Field(c).Name, err)
		}
	}
	return nil
}

// Commit finishes the file and moves it into place.
func (w *Writer) Commit() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.flush(); err != nil {
		w.fw.Close()
		w.af.Abort()
		return err
	}
	return w.af.CommitAfter(w.fw.Close)
}

// Abort discards the file.
func (w *Writer) Abort() error {
	if w.closed {
		return w.af.Abort()
	}
	w.closed = true
	for _, r := range w.pending {
		r.Release()
	}
	w.pending = nil
	w.fw.Close()
	return w.af.Abort()
}

// writeOnly hides the Close method of the atomic file from pqarrow, which
// closes any sink that has one: the file must stay open for fsync and rename.
type writeOnly struct{ w io.Writer }

func (w writeOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		a.Release()
	}
}

// recordBytes estimates the memory rec references: the sizes of the
// buffers of every column, children included. Slices count their whole
// buffers, which errs on the side of smaller row groups.
func recordBytes(rec arrow.Record) int64 {
	var n int64
	var walk func(d arrow.ArrayData)
	walk = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			walk(c)
		}
	}
	for _, c := range rec.Columns() {
		walk(c.Data())
	}
	return n
}
