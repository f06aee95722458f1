package parquetio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// ReadOptions select what a Reader reads.
type ReadOptions struct {
	// RowGroupLo and RowGroupHi select row groups [lo, hi); hi <= 0 means up
	// to the last row group.
	RowGroupLo, RowGroupHi int
	// ChunkRows caps the rows per chunk; <= 0 means fileio.DefaultChunkRows.
	ChunkRows int
	// ChunkBytes, when > 0, also caps the uncompressed bytes per chunk, as
	// estimated from the row group's footer (its uncompressed size over its
	// rows): wide rows then make chunks of fewer rows, so a chunk's memory
	// does not grow with the row width. The estimate depends on the file
	// only, so a chunk's rows are the same on every read. It counts encoded
	// bytes: a dictionary-encoded column of long repeated values takes more
	// memory decoded than the estimate says.
	ChunkBytes int64
}

// Reader reads a Parquet file as fileio.Chunks. It implements fileio.Reader.
type Reader struct {
	path   string
	f      *os.File
	pf     *file.Reader
	fr     *pqarrow.FileReader
	schema *arrow.Schema
	fixed  map[int]*arrow.FixedSizeListType // columns read as lists, handed out as fixed-size lists
	nested map[int]bool                     // leaf columns under a struct or map (see precheck.go)
	lo, hi int
	rows   int64

	chunkRows  int
	chunkBytes int64

	rg       int                  // current row group
	rr       pqarrow.RecordReader // reader of the current row group, nil between groups
	rgFirst  int64                // file row index of the first row of rg
	rgOffset int64                // rows of rg handed out so far
	seq      int
	starts   []int64 // first file row of each row group
}

// Open opens path for reading.
func Open(path string, opts ReadOptions) (r *Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%s: %w: reading footer: %v", path, fileio.ErrCorrupt, p)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// A buffered stream reads pages as they are decoded instead of whole
	// column chunks, so memory does not scale with row-group size.
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	pf, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %v", path, fileio.ErrCorrupt, err)
	}
	chunk := opts.ChunkRows
	if chunk <= 0 {
		chunk = fileio.DefaultChunkRows
	}
	fixed, err := patchStoredSchema(pf.MetaData().KeyValueMetadata())
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w: stored Arrow schema: %v", path, fileio.ErrCorrupt, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(chunk)}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w: %v", path, fileio.ErrCorrupt, err)
	}
	readSchema, err := fr.Schema()
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%s: %w: schema: %v", path, fileio.ErrCorrupt, err)
	}
	schema := readSchema
	if len(fixed) > 0 {
		fields := schema.Fields()
		for i, ft := range fixed {
			if i < len(fields) && fields[i].Type.ID() == arrow.LIST {
				// The size recorded by the writer is in the type again.
				_, md, _, _ := fixedOf(fields[i])
				fields[i].Type, fields[i].Metadata = ft, md
			} else {
				delete(fixed, i)
			}
		}
		md := schema.Metadata()
		schema = arrow.NewSchema(fields, &md)
	}
	n := pf.NumRowGroups()
	lo, hi := opts.RowGroupLo, opts.RowGroupHi
	if hi <= 0 {
		hi = n
	}
	if lo < 0 || lo > hi || hi > n {
		pf.Close()
		return nil, fmt.Errorf("%s: %w: [%d,%d) of %d row groups", path, fileio.ErrRowGroupRange, lo, hi, n)
	}
	starts := make([]int64, n+1)
	for i := 0; i < n; i++ {
		starts[i+1] = starts[i] + pf.MetaData().RowGroup(i).NumRows()
	}
	return &Reader{path: path, f: f, pf: pf, fr: fr, schema: schema, fixed: fixed, nested: nestedLeaves(fr.Manifest), lo: lo, hi: hi, rg: lo, starts: starts,
		rows: starts[hi] - starts[lo], chunkRows: chunk, chunkBytes: opts.ChunkBytes}, nil
}

// Schema returns the Arrow schema of the file.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// NumRows returns the number of rows in the selected row groups.
func (r *Reader) NumRows() int64 { return r.rows }

// Next returns the next chunk, or io.EOF after the last.
func (r *Reader) Next(ctx context.Context) (c fileio.Chunk, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: row group %d, row %d: %w: %v", r.path, r.rg, r.rgFirst+r.rgOffset, fileio.ErrCorrupt, p)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return fileio.Chunk{}, err
		}
		if r.rg >= r.hi {
			return fileio.Chunk{}, io.EOF
		}
		if r.rr == nil {
			if err := r.precheckRowGroup(r.rg); err != nil {
				return fileio.Chunk{}, fmt.Errorf("%s: row group %d: %w: %v", r.path, r.rg, fileio.ErrCorrupt, err)
			}
			r.fr.Props.BatchSize = int64(r.rowsPerChunk(r.rg))
			rr, err := r.fr.GetRecordReader(ctx, nil, []int{r.rg})
			if err != nil {
				return fileio.Chunk{}, fmt.Errorf("%s: row group %d: %w: %v", r.path, r.rg, fileio.ErrCorrupt, err)
			}
			r.rr, r.rgFirst, r.rgOffset = rr, r.starts[r.rg], 0
		}
		rec, err := r.rr.Read()
		if rec != nil && rec.NumRows() > 0 {
			if rec, err = r.restoreFixed(rec); err != nil {
				return fileio.Chunk{}, fmt.Errorf("%s: row group %d, row %d: %w", r.path, r.rg, r.rgFirst+r.rgOffset, err)
			}
			c := fileio.Chunk{Record: rec, Seq: r.seq, RowGroup: r.rg, FirstRow: r.rgFirst + r.rgOffset}
			r.seq++
			r.rgOffset += rec.NumRows()
			return c, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fileio.Chunk{}, fmt.Errorf("%s: row group %d, row %d: %w: %v", r.path, r.rg, r.rgFirst+r.rgOffset, fileio.ErrCorrupt, err)
		}
		// End of this row group.
		want := r.starts[r.rg+1] - r.starts[r.rg]
		r.rr.Release()
		r.rr = nil
		if r.rgOffset != want {
			return fileio.Chunk{}, fmt.Errorf("%s: row group %d, row %d: %w: row group holds %d rows, footer says %d",
				r.path, r.rg, r.rgFirst+r.rgOffset, fileio.ErrCorrupt, r.rgOffset, want)
		}
		r.rg++
	}
}

// rowsPerChunk returns the rows of the chunks of row group rg: ChunkRows,
// or fewer when ChunkBytes caps them.
func (r *Reader) rowsPerChunk(rg int) int {
	n := r.chunkRows
	if r.chunkBytes <= 0 {
		return n
	}
	// The row group's TotalByteSize is the compressed size for some
	// writers (Arrow Go's) and the uncompressed one for others: sum the
	// columns' uncompressed sizes instead.
	md := r.pf.MetaData().RowGroup(rg)
	rows, size := md.NumRows(), int64(0)
	for c := 0; c < md.NumColumns(); c++ {
		if cc, err := md.ColumnChunk(c); err == nil {
			size += cc.TotalUncompressedSize()
		}
	}
	if rows <= 0 || size <= 0 {
		return n
	}
	perRow := max(1, size/rows)
	return int(max(1, min(int64(n), r.chunkBytes/perRow)))
}

// Close releases the file.
func (r *Reader) Close() error {
	if r.rr != nil {
		r.rr.Release()
		r.rr = nil
	}
	if r.pf != nil {
		err := r.pf.Close()
		r.pf = nil
		return err
	}
	return nil
}

// restoreFixed returns rec (retained, or rebuilt) with the fixed-size list
// columns that were read as lists converted back.
func (r *Reader) restoreFixed(rec arrow.Record) (arrow.Record, error) {
	if len(r.fixed) == 0 {
		rec.Retain()
		return rec, nil
	}
	cols := make([]arrow.Array, rec.NumCols())
	var made []arrow.Array
	defer func() {
		for _, a := range made {
			a.Release()
		}
	}()
	for i := range cols {
		cols[i] = rec.Column(i)
		if ft, ok := r.fixed[i]; ok {
			l, ok := cols[i].(*array.List)
			if !ok {
				return nil, fmt.Errorf("%w: column %d is %s, want a list", fileio.ErrCorrupt, i, cols[i].DataType())
			}
			a, err := toFixed(l, ft)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", r.schema.Field(i).Name, err)
			}
			made = append(made, a)
			cols[i] = a
		}
	}
	return array.NewRecord(r.schema, cols, rec.NumRows()), nil
}
