package pgsink

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgvector/pgvector-go"
)

// column is one column of the target table and where its values come from.
type column struct {
	name   string
	pgType string // as format_type() prints it
	src    int    // field of the record; -1: the synthetic id (Batch.Keys)
	text   bool   // values are strings (checked for NUL bytes)
}

// PGTypeKey is the Arrow field metadata key that overrides a pass-through
// column's PostgreSQL type; only "jsonb" on a string column is honoured.
const PGTypeKey = "pgsink.type"

// pgTypeOf maps a pass-through Arrow type to the PostgreSQL type that holds
// it without loss; nested types go to jsonb.
func pgTypeOf(t arrow.DataType) (string, error) {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return "text", nil
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
		return "bytea", nil
	case arrow.BOOL:
		return "boolean", nil
	case arrow.INT8, arrow.INT16, arrow.UINT8:
		return "smallint", nil
	case arrow.INT32, arrow.UINT16:
		return "integer", nil
	case arrow.INT64, arrow.UINT32:
		return "bigint", nil
	case arrow.FLOAT16, arrow.FLOAT32:
		return "real", nil
	case arrow.FLOAT64:
		return "double precision", nil
	case arrow.DATE32, arrow.DATE64:
		return "date", nil
	case arrow.TIMESTAMP:
		if t.(*arrow.TimestampType).TimeZone != "" {
			return "timestamp with time zone", nil
		}
		return "timestamp without time zone", nil
	case arrow.DICTIONARY:
		return pgTypeOf(t.(*arrow.DictionaryType).ValueType)
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST, arrow.STRUCT, arrow.MAP:
		return "jsonb", nil
	case arrow.NULL:
		return "text", nil
	}
	return "", fmt.Errorf("%w: Arrow type %s has no PostgreSQL mapping", ErrColumnType, t)
}

// stringer is what the string-like Arrow arrays share.
type stringer interface{ Value(int) string }

// byteser is what the binary-like Arrow arrays share.
type byteser interface{ Value(int) []byte }

// valueOf returns row i of a as the Go value pgx encodes for its
// PostgreSQL type (nil for null).
func valueOf(a arrow.Array, i int) (any, error) {
	if a.IsNull(i) {
		return nil, nil
	}
	switch a := a.(type) {
	case stringer:
		return a.Value(i), nil
	case byteser:
		return a.Value(i), nil
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Int8:
		return int16(a.Value(i)), nil
	case *array.Int16:
		return a.Value(i), nil
	case *array.Uint8:
		return int16(a.Value(i)), nil
	case *array.Int32:
		return a.Value(i), nil
	case *array.Uint16:
		return int32(a.Value(i)), nil
	case *array.Int64:
		return a.Value(i), nil
	case *array.Uint32:
		return int64(a.Value(i)), nil
	case *array.Float16:
		return a.Value(i).Float32(), nil
	case *array.Float32:
		return a.Value(i), nil
	case *array.Float64:
		return a.Value(i), nil
	case *array.Date32:
		return a.Value(i).ToTime(), nil
	case *array.Date64:
		return a.Value(i).ToTime(), nil
	case *array.Timestamp:
		return a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit), nil
	case *array.Dictionary:
		return valueOf(a.Dictionary(), a.GetValueIndex(i))
	}
	if a.DataType().ID() == arrow.NULL {
		return nil, nil
	}
	b, err := json.Marshal(a.GetOneForMarshal(i))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// embedding describes the embedding column of the records.
type embedding struct {
	name  string
	src   int
	kind  vecKind
	dim   int  // vector dimensions, or bits
	width int  // values per row in the record
	bias  bool // binary precision: bytes are packed bits minus 128
	// maxEntries bounds a sparsevec's non-zero entries (SparseEntryLimit).
	maxEntries int
}

func (e *embedding) pgType() string { return fmt.Sprintf("%s(%d)", e.kind, e.dim) }

// newEmbedding checks the record field f against the precision and returns
// the embedding column.
func newEmbedding(f arrow.Field, src int, o *Options) (*embedding, error) {
	kind, err := precisionKind(o.Precision)
	if err != nil {
		return nil, err
	}
	if kind == kSparsevec {
		return newSparseEmbedding(f, src, o)
	}
	fl, ok := f.Type.(*arrow.FixedSizeListType)
	if !ok {
		return nil, fmt.Errorf("%w: embedding column %q is %s, want a fixed-size list", ErrOptions, f.Name, f.Type)
	}
	e := &embedding{name: f.Name, src: src, kind: kind, width: int(fl.Len())}
	want := arrow.PrimitiveTypes.Float32
	switch o.Precision {
	case "float16":
		want = arrow.FixedWidthTypes.Float16
	case "binary":
		want, e.bias = arrow.PrimitiveTypes.Int8, true
	case "ubinary":
		want = arrow.PrimitiveTypes.Uint8
	}
	if !arrow.TypeEqual(fl.Elem(), want) {
		return nil, fmt.Errorf("%w: embedding column %q holds %s, precision %s wants %s", ErrOptions, f.Name, fl.Elem(), o.Precision, want)
	}
	e.dim = e.width
	if kind == kBit {
		e.dim = 8 * e.width
		if o.Dim > 0 {
			if (o.Dim+7)/8 != e.width {
				return nil, fmt.Errorf("%w: %d bits do not pack into %d bytes", ErrOptions, o.Dim, e.width)
			}
			e.dim = o.Dim
		}
	} else if o.Dim > 0 && o.Dim != e.dim {
		return nil, fmt.Errorf("%w: dimension %d given, the records have %d", ErrOptions, o.Dim, e.dim)
	}
	if e.dim < 1 || e.dim > kind.maxDim() {
		return nil, fmt.Errorf("%w: %s(%d): pgvector's %s holds 1 to %d dimensions", ErrDimension, kind, e.dim, kind, kind.maxDim())
	}
	if o.Index != IndexNone && o.Index != "" && e.dim > kind.maxIndexDim() {
		return nil, fmt.Errorf("%w: %s(%d): pgvector indexes %s columns of at most %d dimensions (choose --create-index none, a lower --truncate-dim or another precision)", ErrDimension, kind, e.dim, kind, kind.maxIndexDim())
	}
	return e, nil
}

// embedValues decodes the embedding column of one record; scratch is reused
// for the float16 → float32 conversion.
type embedValues struct {
	e    *embedding
	list *array.FixedSizeList
	f32  []float32
	u8   []byte
	half []float32
}

func (e *embedding) values(a arrow.Array) (*embedValues, error) {
	l, ok := a.(*array.FixedSizeList)
	if !ok {
		return nil, fmt.Errorf("%w: embedding column %q is %s", ErrOptions, e.name, a.DataType())
	}
	v := &embedValues{e: e, list: l}
	switch vals := l.ListValues().(type) {
	case *array.Float32:
		v.f32 = vals.Float32Values()
	case *array.Float16:
		hv := vals.Values()
		v.half = make([]float32, len(hv))
		for i, h := range hv {
			v.half[i] = h.Float32()
		}
	case *array.Int8:
		raw := vals.Int8Values()
		v.u8 = make([]byte, len(raw))
		for i, b := range raw {
			v.u8[i] = byte(int16(b) + 128)
		}
	case *array.Uint8:
		v.u8 = vals.Uint8Values()
	default:
		return nil, fmt.Errorf("%w: embedding column %q holds %s", ErrOptions, e.name, vals.DataType())
	}
	return v, nil
}

// rowValues returns the reader of one record's embedding column a: row i
// as the pgvector/pgx value, nil for a null embedding, or why the row
// cannot be written.
func (e *embedding) rowValues(a arrow.Array, where string) (func(i int) (any, error), error) {
	if e.kind == kSparsevec {
		sv, err := e.sparseValues(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return sv.at, nil
	}
	ev, err := e.values(a)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if w := ev.list.DataType().(*arrow.FixedSizeListType).Len(); w != int32(e.width) {
		return nil, fmt.Errorf("%w: %s: embedding width %d, the table holds %s", ErrRow, where, w, e.pgType())
	}
	return func(i int) (any, error) { return ev.at(i), nil }, nil
}

// at returns row i as the pgvector/pgx value, or nil for a null embedding.
func (v *embedValues) at(i int) any {
	if v.list.IsNull(i) {
		return nil
	}
	lo, hi := v.list.ValueOffsets(i)
	switch {
	case v.f32 != nil:
		return pgvector.NewVector(v.f32[lo:hi])
	case v.half != nil:
		return pgvector.NewHalfVector(v.half[lo:hi])
	}
	return pgtype.Bits{Bytes: v.u8[lo:hi], Len: int32(v.e.dim), Valid: true}
}

// ident quotes a possibly schema-qualified name.
func ident(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}
