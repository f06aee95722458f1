package sink

import (
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder/embed"
)

// ElemType is the Arrow element type of vectors in precision p: float32,
// float16, int8 (int8 and binary) or uint8 (uint8 and ubinary).
func ElemType(p embed.Precision) arrow.DataType {
	switch p {
	case embed.Float16:
		return arrow.FixedWidthTypes.Float16
	case embed.Int8, embed.Binary:
		return arrow.PrimitiveTypes.Int8
	case embed.Uint8, embed.Ubinary:
		return arrow.PrimitiveTypes.Uint8
	}
	return arrow.PrimitiveTypes.Float32
}

// VectorType is the Arrow type of a column of dim-float vectors in
// precision p: fixed_size_list<ElemType(p)>[p.Width(dim)].
func VectorType(p embed.Precision, dim int) arrow.DataType {
	return arrow.FixedSizeListOfNonNullable(int32(p.Width(dim)), ElemType(p))
}

// VectorColumn builds a VectorType(p, dim) array over n rows from raw, the
// rows as embed.Precision.QuantizeTo writes them (p.RowBytes(dim) bytes a
// row; for Float32 the little-endian floats). valid[i] false makes row i
// null (its values stay present, as Arrow requires of fixed-size lists);
// nil valid means every row is valid. The array takes raw over without
// copying; the caller releases it.
func VectorColumn(p embed.Precision, dim, n int, raw []byte, valid []bool) arrow.Array {
	var nulls int
	var bitmap *memory.Buffer
	for _, v := range valid {
		if !v {
			nulls++
		}
	}
	if nulls > 0 {
		bm := make([]byte, bitutil.BytesForBits(int64(n)))
		for i, v := range valid {
			if v {
				bitutil.SetBit(bm, i)
			}
		}
		bitmap = memory.NewBufferBytes(bm)
	}
	elem, width := ElemType(p), p.Width(dim)
	child := array.NewData(elem, n*width, []*memory.Buffer{nil, memory.NewBufferBytes(raw[:n*p.RowBytes(dim)])}, nil, 0, 0)
	defer child.Release()
	data := array.NewData(VectorType(p, dim), n, []*memory.Buffer{bitmap}, []arrow.ArrayData{child}, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}
