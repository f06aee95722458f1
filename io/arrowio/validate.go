package arrowio

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
)

// Why a check of the arrays: Arrow's IPC reader takes each array's length,
// null count and buffers from the file as they are, and the kernels that
// later read them (null counting, slicing, writing) index the buffers by
// those lengths without checking. A damaged body — a bitmap shorter than
// its array, offsets past the end of the data — then panics deep inside
// the writer of the output. checkArrays walks a record batch once, after
// reading, and checks what the later reads rely on.

// checkArrays reports the first array of rec, by column path, whose
// buffers cannot hold its length, or nil.
func checkArrays(rec arrow.Record) error {
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rec.NumRows() {
			return fmt.Errorf("column %q: %d values in a batch of %d rows", rec.ColumnName(i), col.Len(), rec.NumRows())
		}
		if err := checkData(col.Data(), rec.ColumnName(i), 0); err != nil {
			return err
		}
	}
	return nil
}

func checkData(d arrow.ArrayData, path string, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("column %q: nested deeper than %d", path, maxNesting)
	}
	off, n := d.Offset(), d.Len()
	if off < 0 || n < 0 {
		return fmt.Errorf("column %q: offset %d, length %d", path, off, n)
	}
	end := off + n
	bufs := d.Buffers()
	bufLen := func(i int) int {
		if i >= len(bufs) || bufs[i] == nil {
			return -1
		}
		return bufs[i].Len()
	}
	need := func(i, bytes int, what string) error {
		if l := bufLen(i); l < bytes {
			return fmt.Errorf("column %q: %s buffer of %d bytes for %d values (offset %d) needs %d", path, what, max(l, 0), n, off, bytes)
		}
		return nil
	}
	// The validity bitmap: absent only when there are no nulls.
	if l := bufLen(0); l >= 0 && (l > 0 || n > 0) && d.DataType().ID() != arrow.NULL {
		if err := need(0, (end+7)/8, "validity"); err != nil {
			return err
		}
	} else if d.NullN() != 0 && d.DataType().ID() != arrow.NULL && n > 0 {
		return fmt.Errorf("column %q: %d nulls without a validity bitmap", path, d.NullN())
	}
	children := d.Children()
	switch t := d.DataType().(type) {
	case *arrow.BooleanType:
		return need(1, (end+7)/8, "values")
	case arrow.FixedWidthDataType:
		if _, ok := t.(*arrow.DictionaryType); !ok {
			return need(1, end*t.BitWidth()/8, "values")
		}
	}
	switch t := d.DataType().(type) {
	case *arrow.DictionaryType:
		w := t.IndexType.(arrow.FixedWidthDataType).BitWidth() / 8
		if err := need(1, end*w, "indices"); err != nil {
			return err
		}
		dict := d.Dictionary()
		if dict == nil {
			return fmt.Errorf("column %q: dictionary-encoded without a dictionary", path)
		}
		if err := checkData(dict, path+".dictionary", depth+1); err != nil {
			return err
		}
		idx := bufs[1].Bytes()
		for i := off; i < end; i++ {
			var v int64
			switch w {
			case 1:
				v = int64(int8(idx[i]))
			case 2:
				v = int64(int16(binary.LittleEndian.Uint16(idx[2*i:])))
			case 4:
				v = int64(int32(binary.LittleEndian.Uint32(idx[4*i:])))
			default:
				v = int64(binary.LittleEndian.Uint64(idx[8*i:]))
			}
			if v < 0 || v >= int64(dict.Len()) {
				if isNull(d, i) {
					continue
				}
				return fmt.Errorf("column %q: dictionary index %d at row %d outside a dictionary of %d", path, v, i-off, dict.Len())
			}
		}
		return nil
	case *arrow.StringType, *arrow.BinaryType:
		return checkOffsets(d, path, 4, bufLen(2))
	case *arrow.LargeStringType, *arrow.LargeBinaryType:
		return checkOffsets(d, path, 8, bufLen(2))
	case *arrow.ListType, *arrow.LargeListType:
		if len(children) != 1 {
			return fmt.Errorf("column %q: a list with %d children", path, len(children))
		}
		width := 4 // offsets of a list; a large list's are 8 bytes
		if _, large := t.(*arrow.LargeListType); large {
			width = 8
		}
		if err := checkOffsets(d, path, width, children[0].Len()); err != nil {
			return err
		}
		return checkData(children[0], path+"[]", depth+1)
	case *arrow.FixedSizeListType:
		if len(children) != 1 {
			return fmt.Errorf("column %q: a fixed-size list with %d children", path, len(children))
		}
		if want := end * int(t.Len()); children[0].Len() < want {
			return fmt.Errorf("column %q: %d child values for %d lists of %d", path, children[0].Len(), end, t.Len())
		}
		return checkData(children[0], path+"[]", depth+1)
	case *arrow.StructType:
		if len(children) != t.NumFields() {
			return fmt.Errorf("column %q: a struct of %d fields with %d children", path, t.NumFields(), len(children))
		}
		for i, c := range children {
			if c.Len() < end {
				return fmt.Errorf("column %q: field %q has %d values for %d rows", path, t.Field(i).Name, c.Len(), end)
			}
			if err := checkData(c, path+"."+t.Field(i).Name, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *arrow.MapType:
		if len(children) != 1 {
			return fmt.Errorf("column %q: a map with %d children", path, len(children))
		}
		if err := checkOffsets(d, path, 4, children[0].Len()); err != nil {
			return err
		}
		return checkData(children[0], path+"{}", depth+1)
	}
	return nil
}

// isNull reports whether row i (counted from the buffer's start) of d is
// null by its validity bitmap, which checkData has sized.
func isNull(d arrow.ArrayData, i int) bool {
	bufs := d.Buffers()
	if len(bufs) == 0 || bufs[0] == nil || bufs[0].Len() == 0 {
		return false
	}
	return bufs[0].Bytes()[i/8]&(1<<(i%8)) == 0
}

// checkOffsets checks the offsets buffer (buffer 1) of a variable-size
// array d: long enough, non-decreasing from a non-negative start, and
// ending within limit, the length of the data (values bytes or child
// values) they index.
func checkOffsets(d arrow.ArrayData, path string, width, limit int) error {
	off, n := d.Offset(), d.Len()
	bufs := d.Buffers()
	if n == 0 {
		return nil
	}
	if len(bufs) < 2 || bufs[1] == nil || bufs[1].Len() < (off+n+1)*width {
		l := 0
		if len(bufs) >= 2 && bufs[1] != nil {
			l = bufs[1].Len()
		}
		return fmt.Errorf("column %q: offsets buffer of %d bytes for %d values (offset %d)", path, l, n, off)
	}
	b := bufs[1].Bytes()
	at := func(i int) int64 {
		if width == 4 {
			return int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
		return int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	prev := at(off)
	if prev < 0 {
		return fmt.Errorf("column %q: negative offset %d", path, prev)
	}
	for i := off + 1; i <= off+n; i++ {
		v := at(i)
		if v < prev {
			return fmt.Errorf("column %q: offsets decrease at row %d (%d after %d)", path, i-off, v, prev)
		}
		prev = v
	}
	if limit < 0 {
		limit = 0
	}
	if prev > int64(limit) {
		return fmt.Errorf("column %q: offsets reach %d in %d values", path, prev, limit)
	}
	return nil
}
