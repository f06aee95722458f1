package parquetio

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"

	"github.com/embedpipe/embedpipe/io/arrowio"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// pqarrow v17 cannot write a fixed_size_list column with a null in the
// middle ("lists with non-zero length null components"), nor read back one
// with any null: it expects every list to hold exactly the fixed size, fails
// with "expected all lists to be of size=N" and, in ReadTable, panics. Any
// pqarrow v17 reader of a file whose stored Arrow schema says
// fixed_size_list hits this, not only ours. A fixed-size list and a list
// have the same Parquet layout (a 3-level LIST), so the writer stores the
// column as what it is in Parquet, a nullable list (a null row is a null
// list, at the list level), with the fixed size in the field's metadata
// under FixedSizeKey; pqarrow v17 and v18, parquet-go and DuckDB read it as
// a list with the nulls intact. This package's reader turns it back into a
// fixed_size_list, checking that every non-null row holds exactly the
// fixed size. Files written before, whose stored schema says
// fixed_size_list, are read the same way: the stored type is swapped for a
// list before pqarrow sees it.

// FixedSizeKey is the Arrow field metadata key under which a Parquet file
// written by this package records the size of a fixed_size_list column that
// it stored as a list: "32" for a fixed_size_list<float32>[32] embedding.
const FixedSizeKey = "embedpipe.fixed_size_list"

const arrowSchemaKey = "ARROW:schema"

// toList converts a fixed-size list array into the equivalent list array,
// null rows becoming null empty lists.
func toList(a *array.FixedSizeList) (arrow.Array, error) {
	ft := a.DataType().(*arrow.FixedSizeListType)
	size := int64(ft.Len())
	n := a.Len()
	offsets := make([]int32, n+1)
	bm := make([]byte, bitutil.BytesForBits(int64(n)))
	var pieces []arrow.Array
	defer func() {
		for _, p := range pieces {
			p.Release()
		}
	}()
	var total int64
	for i := 0; i < n; {
		if a.IsNull(i) {
			offsets[i+1] = int32(total)
			i++
			continue
		}
		j := i
		for j < n && a.IsValid(j) {
			bitutil.SetBit(bm, j)
			total += size
			if total > 1<<31-1 {
				return nil, fmt.Errorf("fixed-size list column too large for one row group")
			}
			offsets[j+1] = int32(total)
			j++
		}
		lo, _ := a.ValueOffsets(i)
		_, hi := a.ValueOffsets(j - 1)
		pieces = append(pieces, array.NewSlice(a.ListValues(), lo, hi))
		i = j
	}
	child, err := joinPieces(pieces, ft.Elem())
	if err != nil {
		return nil, err
	}
	defer child.Release()
	lt := arrow.ListOfField(ft.ElemField())
	data := array.NewData(lt, n, []*memory.Buffer{memory.NewBufferBytes(bm), memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets))},
		[]arrow.ArrayData{child.Data()}, a.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

// toFixed converts a list array read back from a column written by toList
// into a fixed_size_list of type ft.
func toFixed(a *array.List, ft *arrow.FixedSizeListType) (arrow.Array, error) {
	size := int64(ft.Len())
	n := a.Len()
	var pieces []arrow.Array
	defer func() {
		for _, p := range pieces {
			p.Release()
		}
	}()
	bm := make([]byte, bitutil.BytesForBits(int64(n)))
	for i := 0; i < n; {
		j := i
		if a.IsNull(i) {
			for j < n && a.IsNull(j) {
				j++
			}
			pieces = append(pieces, array.MakeArrayOfNull(memory.DefaultAllocator, ft.Elem(), int(size)*(j-i)))
			i = j
			continue
		}
		for j < n && a.IsValid(j) {
			lo, hi := a.ValueOffsets(j)
			if hi-lo != size {
				return nil, fmt.Errorf("%w: row %d of a fixed_size_list[%d] column holds %d values", fileio.ErrCorrupt, j, size, hi-lo)
			}
			bitutil.SetBit(bm, j)
			j++
		}
		lo, _ := a.ValueOffsets(i)
		_, hi := a.ValueOffsets(j - 1)
		pieces = append(pieces, array.NewSlice(a.ListValues(), lo, hi))
		i = j
	}
	child, err := joinPieces(pieces, ft.Elem())
	if err != nil {
		return nil, err
	}
	defer child.Release()
	var bitmap *memory.Buffer
	if a.NullN() > 0 {
		bitmap = memory.NewBufferBytes(bm)
	}
	data := array.NewData(ft, n, []*memory.Buffer{bitmap}, []arrow.ArrayData{child.Data()}, a.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data), nil
}

// storedSchema returns the schema a Writer stores in the file for schema:
// every top-level fixed_size_list field becomes a list field whose metadata
// records the size under FixedSizeKey.
func storedSchema(schema *arrow.Schema) *arrow.Schema {
	fields := schema.Fields()
	changed := false
	for i, f := range fields {
		ft, ok := f.Type.(*arrow.FixedSizeListType)
		if !ok {
			continue
		}
		keys := append(f.Metadata.Keys(), FixedSizeKey)
		vals := append(f.Metadata.Values(), strconv.Itoa(int(ft.Len())))
		fields[i].Type = arrow.ListOfField(ft.ElemField())
		fields[i].Metadata = arrow.NewMetadata(keys, vals)
		changed = true
	}
	if !changed {
		return schema
	}
	md := schema.Metadata()
	return arrow.NewSchema(fields, &md)
}

// fixedOf returns the fixed_size_list type that a list field stored by
// storedSchema stands for, and the field's metadata without FixedSizeKey;
// ok is false for any other field. A size that is not a positive integer
// is an error.
func fixedOf(f arrow.Field) (ft *arrow.FixedSizeListType, md arrow.Metadata, ok bool, err error) {
	lt, isList := f.Type.(*arrow.ListType)
	i := f.Metadata.FindKey(FixedSizeKey)
	if !isList || i < 0 {
		return nil, f.Metadata, false, nil
	}
	n, err := strconv.ParseInt(f.Metadata.Values()[i], 10, 32)
	if err != nil || n <= 0 {
		return nil, f.Metadata, false, fmt.Errorf("field %q: %s = %q, want a positive size", f.Name, FixedSizeKey, f.Metadata.Values()[i])
	}
	keys := slices.Delete(f.Metadata.Keys(), i, i+1)
	vals := slices.Delete(f.Metadata.Values(), i, i+1)
	if len(keys) > 0 {
		md = arrow.NewMetadata(keys, vals)
	}
	return arrow.FixedSizeListOfField(int32(n), lt.ElemField()), md, true, nil
}

// patchStoredSchema finds, in the file's stored Arrow schema, the top-level
// fields that are fixed-size lists: list fields recorded by storedSchema,
// and fixed_size_list fields (files written before it), which it replaces
// by lists in md. It returns the fixed-size types by field index.
func patchStoredSchema(md metadata.KeyValueMetadata) (map[int]*arrow.FixedSizeListType, error) {
	for _, kv := range md {
		if kv.Key != arrowSchemaKey || kv.Value == nil {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(*kv.Value)
		if err != nil {
			if raw, err = base64.RawStdEncoding.DecodeString(*kv.Value); err != nil {
				return nil, err
			}
		}
		// pqarrow reads the same bytes after this: a lying length in them
		// must be caught here, before either reader allocates from it.
		if err := arrowio.VerifyStreamBytes(raw); err != nil {
			return nil, err
		}
		r, err := ipc.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		s := r.Schema()
		r.Release()
		fixed := map[int]*arrow.FixedSizeListType{}
		swapped := false
		fields := s.Fields()
		for i, f := range fields {
			if ft, ok := f.Type.(*arrow.FixedSizeListType); ok {
				fixed[i] = ft
				fields[i].Type = arrow.ListOfField(ft.ElemField())
				swapped = true
				continue
			}
			ft, _, ok, err := fixedOf(f)
			if err != nil {
				return nil, err
			}
			if ok {
				fixed[i] = ft
			}
		}
		if len(fixed) == 0 {
			return nil, nil
		}
		if swapped {
			md := s.Metadata()
			var buf bytes.Buffer
			w := ipc.NewWriter(&buf, ipc.WithSchema(arrow.NewSchema(fields, &md)))
			if err := w.Close(); err != nil {
				return nil, err
			}
			v := base64.StdEncoding.EncodeToString(buf.Bytes())
			kv.Value = &v
		}
		return fixed, nil
	}
	return nil, nil
}

// joinPieces returns the concatenation of pieces as one array of element type
// elem (an empty one when there are none), which the caller must release.
// The pieces stay owned by the caller.
func joinPieces(pieces []arrow.Array, elem arrow.DataType) (arrow.Array, error) {
	switch len(pieces) {
	case 0:
		return array.MakeArrayOfNull(memory.DefaultAllocator, elem, 0), nil
	case 1:
		pieces[0].Retain()
		return pieces[0], nil
	default:
		return array.Concatenate(pieces, memory.DefaultAllocator)
	}
}
