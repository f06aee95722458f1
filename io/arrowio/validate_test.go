package arrowio

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func i32s(v ...int32) *memory.Buffer {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return memory.NewBufferBytes(b)
}

func record(t *testing.T, f arrow.Field, d arrow.ArrayData) arrow.Record {
	t.Helper()
	a := array.MakeFromData(d)
	return array.NewRecord(arrow.NewSchema([]arrow.Field{f}, nil), []arrow.Array{a}, int64(d.Len()))
}

// TestCheckArrays builds arrays whose buffers cannot hold their lengths —
// what a damaged IPC body gives the reader, and what panicked the output
// writer of a mutated file — and valid ones of the same shapes.
func TestCheckArrays(t *testing.T) {
	str := arrow.BinaryTypes.String
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: str}
	dictValues := array.NewData(str, 2, []*memory.Buffer{nil, i32s(0, 1, 2), memory.NewBufferBytes([]byte("ab"))}, nil, 0, 0)
	child := array.NewData(arrow.PrimitiveTypes.Int32, 2, []*memory.Buffer{nil, i32s(1, 2)}, nil, 0, 0)
	for _, tc := range []struct {
		name string
		f    arrow.Field
		d    arrow.ArrayData
		want string // "" for valid
	}{
		{"int32 ok", arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int32}, array.NewData(arrow.PrimitiveTypes.Int32, 2, []*memory.Buffer{nil, i32s(1, 2)}, nil, 0, 0), ""},
		{"int32 short", arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int32}, array.NewData(arrow.PrimitiveTypes.Int32, 3, []*memory.Buffer{nil, i32s(1, 2)}, nil, 0, 0), "values buffer"},
		{"empty bitmap", arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true}, array.NewData(arrow.PrimitiveTypes.Int32, 2, []*memory.Buffer{memory.NewBufferBytes(nil), i32s(1, 2)}, nil, array.UnknownNullCount, 0), "validity buffer"},
		{"nulls without bitmap", arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true}, array.NewData(arrow.PrimitiveTypes.Int32, 2, []*memory.Buffer{nil, i32s(1, 2)}, nil, 1, 0), "without a validity bitmap"},
		{"string ok", arrow.Field{Name: "s", Type: str}, array.NewData(str, 2, []*memory.Buffer{nil, i32s(0, 1, 2), memory.NewBufferBytes([]byte("ab"))}, nil, 0, 0), ""},
		{"offsets past data", arrow.Field{Name: "s", Type: str}, array.NewData(str, 2, []*memory.Buffer{nil, i32s(0, 1, 9), memory.NewBufferBytes([]byte("ab"))}, nil, 0, 0), "offsets reach 9"},
		{"offsets decrease", arrow.Field{Name: "s", Type: str}, array.NewData(str, 2, []*memory.Buffer{nil, i32s(0, 2, 1), memory.NewBufferBytes([]byte("ab"))}, nil, 0, 0), "decrease"},
		{"offsets short", arrow.Field{Name: "s", Type: str}, array.NewData(str, 2, []*memory.Buffer{nil, i32s(0, 1), memory.NewBufferBytes([]byte("ab"))}, nil, 0, 0), "offsets buffer"},
		{"list child short", arrow.Field{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)}, array.NewData(arrow.ListOf(arrow.PrimitiveTypes.Int32), 2, []*memory.Buffer{nil, i32s(0, 1, 3)}, []arrow.ArrayData{child}, 0, 0), "offsets reach 3"},
		{"struct child short", arrow.Field{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32})},
			array.NewData(arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32}), 3, []*memory.Buffer{nil}, []arrow.ArrayData{child}, 0, 0), `field "a" has 2 values for 3 rows`},
		{"dictionary ok", arrow.Field{Name: "d", Type: dict}, array.NewDataWithDictionary(dict, 2, []*memory.Buffer{nil, i32s(1, 0)}, 0, 0, dictValues), ""},
		{"dictionary index", arrow.Field{Name: "d", Type: dict}, array.NewDataWithDictionary(dict, 2, []*memory.Buffer{nil, i32s(1, 7)}, 0, 0, dictValues), "dictionary index 7"},
	} {
		// The data is checked as the reader has it, before an array is
		// made of it (making one of some of these panics already).
		err := checkData(tc.d, tc.f.Name, 0)
		if tc.want == "" {
			err = checkArrays(record(t, tc.f, tc.d))
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
