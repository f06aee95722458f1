package fileio

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// TextColumn reads strings from one Arrow column whatever its string
// encoding: string, large_string, string_view, binary, large_binary, or a
// dictionary of any of these.
type TextColumn struct {
	get   func(i int) string
	valid func(i int) bool
	n     int
}

// IsTextType reports whether t can back a TextColumn.
func IsTextType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW, arrow.BINARY, arrow.LARGE_BINARY:
		return true
	case arrow.DICTIONARY:
		return IsTextType(t.(*arrow.DictionaryType).ValueType)
	}
	return false
}

// NewTextColumn wraps arr, or returns an error wrapping ErrColumnType.
func NewTextColumn(arr arrow.Array) (TextColumn, error) {
	tc := TextColumn{valid: arr.IsValid, n: arr.Len()}
	switch a := arr.(type) {
	case *array.String:
		tc.get = a.Value
	case *array.LargeString:
		tc.get = a.Value
	case *array.StringView:
		tc.get = a.Value
	case *array.Binary:
		tc.get = a.ValueString
	case *array.LargeBinary:
		tc.get = func(i int) string { return string(a.Value(i)) }
	case *array.Dictionary:
		inner, err := NewTextColumn(a.Dictionary())
		if err != nil {
			return TextColumn{}, err
		}
		tc.get = func(i int) string { return inner.get(a.GetValueIndex(i)) }
	default:
		return TextColumn{}, fmt.Errorf("%w: %s (want a string type)", ErrColumnType, arr.DataType())
	}
	return tc, nil
}

// Len returns the number of rows.
func (c TextColumn) Len() int { return c.n }

// Value returns row i and whether it is non-null.
func (c TextColumn) Value(i int) (string, bool) {
	if !c.valid(i) {
		return "", false
	}
	return c.get(i), true
}

// ColumnIndex returns the index of the field called name in s, or an error
// wrapping ErrMissingColumn that lists the columns the file has.
func ColumnIndex(s *arrow.Schema, name, file string) (int, error) {
	idx := s.FieldIndices(name)
	if len(idx) == 0 {
		names := make([]string, len(s.Fields()))
		for i, f := range s.Fields() {
			names[i] = f.Name
		}
		return -1, fmt.Errorf("%s: %w %q; the file has columns %q", file, ErrMissingColumn, name, names)
	}
	return idx[0], nil
}
