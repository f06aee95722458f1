package jsonlio

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// Writer writes JSON Lines atomically. It implements fileio.Writer.
type Writer struct {
	af     *fileio.AtomicFile
	bw     *bufio.Writer
	schema *arrow.Schema
	keys   [][]byte
	buf    []byte
	closed bool
}

// Create starts writing path; schema fixes the keys and their order.
func Create(path string, schema *arrow.Schema) (*Writer, error) {
	af, err := fileio.CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{af: af, bw: bufio.NewWriterSize(af, 1<<20), schema: schema}
	for _, f := range schema.Fields() {
		k, _ := json.Marshal(f.Name)
		w.keys = append(w.keys, append(k, ':'))
	}
	return w, nil
}

// Write appends one line per row of rec.
func (w *Writer) Write(ctx context.Context, rec arrow.Record) error {
	if err := fileio.CheckWrite(ctx, w.af.Final(), rec, w.schema); err != nil {
		return err
	}
	cols := rec.Columns()
	for i := 0; i < int(rec.NumRows()); i++ {
		b := append(w.buf[:0], '{')
		for c, col := range cols {
			if c > 0 {
				b = append(b, ',')
			}
			b = append(b, w.keys[c]...)
			var err error
			b, err = appendValue(b, col, i)
			if err != nil {
				return fmt.Errorf("%s: row %d of the batch, column %q: %w", w.af.Final(), i, w.schema.Field(c).Name, err)
			}
		}
		b = append(b, '}', '\n')
		w.buf = b
		if _, err := w.bw.Write(b); err != nil {
			return fmt.Errorf("%s: %w", w.af.Final(), err)
		}
	}
	return nil
}

// appendValue appends the JSON form of row i of col. Float32 and fixed-size
// float32 lists take a fast path; every other type uses arrow's own JSON form.
func appendValue(b []byte, col arrow.Array, i int) (out []byte, err error) {
	// Arrow's JSON forms panic on some valid values (a timestamp nested in
	// a struct, in a zone this machine does not know): a value that cannot
	// be written is an error naming its row, not the end of the process.
	defer func() {
		if p := recover(); p != nil {
			out, err = b, fmt.Errorf("%w: value of type %s cannot be written as JSON: %v", fileio.ErrColumnType, col.DataType(), p)
		}
	}()
	if col.IsNull(i) {
		return append(b, "null"...), nil
	}
	switch a := col.(type) {
	case *array.String:
		return appendString(b, a.Value(i)), nil
	case *array.Float32:
		return appendFloat32(b, a.Value(i)), nil
	case *array.Float64:
		if f := a.Value(i); math.IsNaN(f) || math.IsInf(f, 0) {
			return append(b, "null"...), nil
		}
	case *array.Timestamp:
		return appendTimestamp(b, a, i), nil
	case *array.FixedSizeList:
		if vals, ok := a.ListValues().(*array.Float32); ok {
			lo, hi := a.ValueOffsets(i)
			b = append(b, '[')
			for j := lo; j < hi; j++ {
				if j > lo {
					b = append(b, ',')
				}
				b = appendFloat32(b, vals.Value(int(j)))
			}
			return append(b, ']'), nil
		}
		return appendList(b, a.ListValues(), a.ValueOffsets, i)
	case *array.List:
		return appendList(b, a.ListValues(), a.ValueOffsets, i)
	case *array.LargeList:
		return appendList(b, a.ListValues(), a.ValueOffsets, i)
	case *array.Struct:
		// Written field by field, so that nested values take the same
		// paths as columns (a NaN is null at any depth).
		st := a.DataType().(*arrow.StructType)
		b = append(b, '{')
		for k := 0; k < a.NumField(); k++ {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendString(b, st.Field(k).Name)
			b = append(b, ':')
			if b, err = appendValue(b, a.Field(k), i); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	v, err := json.Marshal(col.GetOneForMarshal(i))
	if err != nil {
		return b, err
	}
	return append(b, v...), nil
}

// appendList writes row i of a list column whose values are vals and whose
// row offsets come from offsets, each element as appendValue writes it.
func appendList(b []byte, vals arrow.Array, offsets func(int) (int64, int64), i int) (out []byte, err error) {
	lo, hi := offsets(i)
	b = append(b, '[')
	for j := lo; j < hi; j++ {
		if j > lo {
			b = append(b, ',')
		}
		if b, err = appendValue(b, vals, int(j)); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendTimestamp writes row i of a in Arrow's JSON form, in the column's
// zone. An Arrow timestamp is an instant in UTC and its zone only says how to
// show it: a zone that this machine's time zone database does not know (Arrow
// itself panics on it) is shown as UTC, which names the same instant.
func appendTimestamp(b []byte, a *array.Timestamp, i int) []byte {
	typ := a.DataType().(*arrow.TimestampType)
	loc, err := typ.GetZone()
	if err != nil || loc == nil {
		loc = time.UTC
	}
	b = append(b, '"')
	b = a.Value(i).ToTime(typ.Unit).In(loc).AppendFormat(b, "2006-01-02 15:04:05.999999999Z0700")
	return append(b, '"')
}

func appendString(b []byte, s string) []byte {
	v, _ := json.Marshal(s)
	return append(b, v...)
}

func appendFloat32(b []byte, f float32) []byte {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
}

// Commit flushes the file and moves it into place.
func (w *Writer) Commit() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.af.CommitAfter(w.bw.Flush)
}

// Abort discards the file.
func (w *Writer) Abort() error {
	w.closed = true
	return w.af.Abort()
}
