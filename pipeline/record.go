package pipeline

import (
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// withSchema returns rec's columns under schema (same fields, other
// metadata). The caller releases the result.
func withSchema(rec arrow.Record, schema *arrow.Schema) arrow.Record {
	return array.NewRecord(schema, rec.Columns(), rec.NumRows())
}

// stripMetadata returns s without schema-level metadata.
func stripMetadata(s *arrow.Schema) *arrow.Schema {
	return arrow.NewSchema(s.Fields(), nil)
}

// float32Array builds a float32 array of vals; valid[i] false makes row i
// null.
func float32Array(vals []float32, valid []bool) arrow.Array {
	b := array.NewFloat32Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, valid)
	return b.NewArray()
}

// f32Bytes views a float32 slice as bytes without copying.
func f32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), len(f)*4)
}

// keepRows returns rec restricted to the rows where keep is true, as one
// record; when every row is kept it returns rec retained.
func keepRows(rec arrow.Record, keep []bool) (arrow.Record, error) {
	all := true
	for _, k := range keep {
		if !k {
			all = false
			break
		}
	}
	if all {
		rec.Retain()
		return rec, nil
	}
	var runs [][2]int64
	for i := 0; i < len(keep); {
		if !keep[i] {
			i++
			continue
		}
		j := i
		for j < len(keep) && keep[j] {
			j++
		}
		runs = append(runs, [2]int64{int64(i), int64(j)})
		i = j
	}
	return concatRuns(rec, runs)
}

// concatRuns returns the rows of rec in runs ([lo, hi) row ranges, in
// order) as one record; the caller releases it.
func concatRuns(rec arrow.Record, runs [][2]int64) (arrow.Record, error) {
	var n int64
	for _, r := range runs {
		n += r[1] - r[0]
	}
	cols := make([]arrow.Array, rec.NumCols())
	for c := range cols {
		if len(runs) == 0 {
			cols[c] = array.MakeArrayOfNull(memory.DefaultAllocator, rec.Column(c).DataType(), 0)
			continue
		}
		parts := make([]arrow.Array, len(runs))
		for k, r := range runs {
			parts[k] = array.NewSlice(rec.Column(c), r[0], r[1])
		}
		out, err := array.Concatenate(parts, memory.DefaultAllocator)
		for _, p := range parts {
			p.Release()
		}
		if err != nil {
			for _, done := range cols[:c] {
				done.Release()
			}
			return nil, err
		}
		cols[c] = out
	}
	out := array.NewRecord(rec.Schema(), cols, n)
	for _, c := range cols {
		c.Release()
	}
	return out, nil
}
