package parquetio

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// Why a precheck: pqarrow opens every column, and loads the children of
// struct (and map) columns, in goroutines of its own. A panic there — a zstd
// page failing its checksum, a corrupt page header, column metadata that does
// not decode — cannot be recovered by the caller and kills the process, and
// with it every other job the process runs. The precheck does the same work
// first in the caller's goroutine, where Next's recover turns a panic into an
// error naming the file and row group: it opens the page reader of every
// column, and fully decodes the columns that pqarrow would load from its own
// goroutines (the leaves under a struct or map). Top-level leaves and lists
// of them are decoded by pqarrow in the caller's goroutine, so they are not
// decoded twice.

// nestedLeaves returns the leaf column indices that lie under a struct or map
// field of the manifest.
func nestedLeaves(m *pqarrow.SchemaManifest) map[int]bool {
	out := map[int]bool{}
	var walk func(f *pqarrow.SchemaField, under bool)
	walk = func(f *pqarrow.SchemaField, under bool) {
		if f.Field != nil {
			switch f.Field.Type.ID() {
			case arrow.STRUCT, arrow.MAP:
				under = true
			}
		}
		if len(f.Children) == 0 {
			if under && f.ColIndex >= 0 {
				out[f.ColIndex] = true
			}
			return
		}
		for i := range f.Children {
			walk(&f.Children[i], under)
		}
	}
	for i := range m.Fields {
		walk(&m.Fields[i], false)
	}
	return out
}

// precheckRowGroup runs the checks described above on row group rg and
// returns what fails, naming the column; a panic of Arrow's decoders comes
// back as such an error.
func (r *Reader) precheckRowGroup(rg int) error {
	rgr := r.pf.RowGroup(rg)
	for c := 0; c < rgr.NumColumns(); c++ {
		if err := r.precheckColumn(rgr, c); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) precheckColumn(rgr *file.RowGroupReader, c int) (err error) {
	name := fmt.Sprint(c)
	if c < r.pf.MetaData().Schema.NumColumns() {
		name = fmt.Sprintf("%q", r.pf.MetaData().Schema.Column(c).Path())
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("column %s: %v", name, p)
		}
	}()
	if !r.nested[c] {
		if _, err := rgr.GetColumnPageReader(c); err != nil {
			return fmt.Errorf("column %s: %v", name, err)
		}
		return nil
	}
	cr, err := rgr.Column(c)
	if err != nil {
		return fmt.Errorf("column %s: %v", name, err)
	}
	if err := decodeColumn(cr); err != nil {
		return fmt.Errorf("column %s: %v", name, err)
	}
	return nil
}

// precheckBatch is the number of values decoded per call by decodeColumn.
const precheckBatch = 1024

// decodeColumn reads every value and level of a column chunk and discards
// them.
func decodeColumn(cr file.ColumnChunkReader) error {
	def := make([]int16, precheckBatch)
	rep := make([]int16, precheckBatch)
	switch c := cr.(type) {
	case *file.BooleanColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]bool, precheckBatch), def, rep)
	case *file.Int32ColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]int32, precheckBatch), def, rep)
	case *file.Int64ColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]int64, precheckBatch), def, rep)
	case *file.Int96ColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]parquet.Int96, precheckBatch), def, rep)
	case *file.Float32ColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]float32, precheckBatch), def, rep)
	case *file.Float64ColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]float64, precheckBatch), def, rep)
	case *file.ByteArrayColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]parquet.ByteArray, precheckBatch), def, rep)
	case *file.FixedLenByteArrayColumnChunkReader:
		return drainTyped(c, c.ReadBatch, make([]parquet.FixedLenByteArray, precheckBatch), def, rep)
	}
	return fmt.Errorf("unknown physical type %s", cr.Type())
}

func drainTyped[T any](cr file.ColumnChunkReader, read func(int64, []T, []int16, []int16) (int64, int, error), vals []T, def, rep []int16) error {
	for cr.HasNext() {
		n, _, err := read(int64(len(vals)), vals, def, rep)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	return cr.Err()
}
