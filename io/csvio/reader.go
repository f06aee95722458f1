package csvio

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	arrowcsv "github.com/apache/arrow/go/v17/arrow/csv"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// ReadOptions tune a Reader.
type ReadOptions struct {
	// ChunkRows caps the rows per chunk; <= 0 means fileio.DefaultChunkRows.
	ChunkRows int
	// Comma is the field delimiter; 0 means ','.
	Comma rune
	// StringColumns names columns that must stay strings whatever their
	// content (the text column, so that a column of numbers-as-text is not
	// inferred as integers).
	StringColumns []string
	// KeepBadRows hands out records that cannot be parsed (a stray quote)
	// or whose field count differs from the header's as rows of nulls
	// listed in the chunk's BadRows instead of failing the read.
	KeepBadRows bool
}

// Reader reads a CSV file. It implements fileio.Reader.
type Reader struct {
	path string
	f    io.ReadCloser
	r    *arrowcsv.Reader
	row  int64
	seq  int
	done bool
	// first is the chunk read by Open to learn the schema.
	first  arrow.Record
	schema *arrow.Schema
	filter *badRowFilter // nil unless bad rows are kept
}

// Open opens path for reading.
func Open(path string, opts ReadOptions) (*Reader, error) {
	f, err := fileio.OpenText(path)
	if err != nil {
		return nil, err
	}
	chunk := opts.ChunkRows
	if chunk <= 0 {
		chunk = fileio.DefaultChunkRows
	}
	comma := opts.Comma
	if comma == 0 {
		comma = ','
	}
	types := map[string]arrow.DataType{}
	for _, c := range opts.StringColumns {
		types[c] = arrow.BinaryTypes.String
	}
	var src io.Reader = f
	var filter *badRowFilter
	if opts.KeepBadRows {
		filter = newBadRowFilter(f, comma)
		src = filter
	}
	r := arrowcsv.NewInferringReader(src, arrowcsv.WithHeader(true), arrowcsv.WithChunk(chunk), arrowcsv.WithComma(comma),
		arrowcsv.WithNullReader(true, "", "NULL", "null"), arrowcsv.WithColumnTypes(types), arrowcsv.WithLazyQuotes(false))
	rd := &Reader{path: path, f: f, r: r, filter: filter}
	if names, ok := headerOnly(path, comma); ok {
		// Arrow's reader infers types from the first records and fails
		// without any: a file of only a header is an empty table of
		// strings.
		fields := make([]arrow.Field, len(names))
		for i, n := range names {
			fields[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
		}
		rd.schema, rd.done = arrow.NewSchema(fields, nil), true
		return rd, nil
	}
	if err := rd.readFirst(); err != nil {
		r.Release()
		f.Close()
		return nil, err
	}
	return rd, nil
}

// headerOnly reports whether the CSV file at path holds a header and no
// record, and returns the header's names.
func headerOnly(path string, comma rune) ([]string, bool) {
	f, err := fileio.OpenText(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	cr := recordReader(f, comma)
	header, err := cr.Read()
	if err != nil {
		return nil, false
	}
	if _, err := cr.Read(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return header, true
}

// readFirst reads the first chunk, which is when the schema is inferred.
func (rd *Reader) readFirst() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: row 0: %w: %v", rd.path, fileio.ErrCorrupt, p)
		}
	}()
	if rd.r.Next() {
		rd.first = rd.r.Record()
		rd.first.Retain()
	} else if err := rd.r.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("%s: row 0: %w: %v", rd.path, fileio.ErrCorrupt, err)
	}
	rd.schema = rd.r.Schema()
	if rd.schema == nil {
		return fmt.Errorf("%s: %w: no header line", rd.path, fileio.ErrCorrupt)
	}
	return nil
}

// Schema returns the inferred schema.
func (rd *Reader) Schema() *arrow.Schema { return rd.schema }

// Next returns the next chunk, or io.EOF after the last.
func (rd *Reader) Next(ctx context.Context) (c fileio.Chunk, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: row %d: %w: %v", rd.path, rd.row, fileio.ErrCorrupt, p)
		}
	}()
	if err := ctx.Err(); err != nil {
		return fileio.Chunk{}, err
	}
	if rd.first != nil {
		rec := rd.first
		rd.first = nil
		c = fileio.Chunk{Record: rec, Seq: rd.seq, RowGroup: -1, FirstRow: rd.row, BadRows: rd.filter.take(rd.row, rec.NumRows())}
		rd.seq++
		rd.row += rec.NumRows()
		return c, nil
	}
	if rd.done || !rd.r.Next() {
		rd.done = true
		if err := rd.r.Err(); err != nil && err != io.EOF {
			return fileio.Chunk{}, fmt.Errorf("%s: row %d: %w: %v", rd.path, rd.row, fileio.ErrCorrupt, err)
		}
		return fileio.Chunk{}, io.EOF
	}
	rec := rd.r.Record()
	rec.Retain()
	c = fileio.Chunk{Record: rec, Seq: rd.seq, RowGroup: -1, FirstRow: rd.row, BadRows: rd.filter.take(rd.row, rec.NumRows())}
	rd.seq++
	rd.row += rec.NumRows()
	return c, nil
}

// Close releases the file.
func (rd *Reader) Close() error {
	if rd.first != nil {
		rd.first.Release()
		rd.first = nil
	}
	rd.r.Release()
	return rd.f.Close()
}
