package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/float16"
)

// precision is an output precision of sentence-transformers'
// quantize_embeddings.
type precision int

const (
	pFloat32 precision = iota
	pFloat16
	pInt8
	pUint8
	pBinary
	pUbinary
)

func parsePrecision(s string) (precision, error) {
	switch s {
	case "float32", "":
		return pFloat32, nil
	case "float16":
		return pFloat16, nil
	case "int8":
		return pInt8, nil
	case "uint8":
		return pUint8, nil
	case "binary":
		return pBinary, nil
	case "ubinary":
		return pUbinary, nil
	}
	return 0, fmt.Errorf("%w: precision %q (want float32, float16, int8, uint8, binary or ubinary)", ErrConfig, s)
}

// needsRanges reports whether the precision is calibrated by per-dimension
// ranges.
func (p precision) needsRanges() bool { return p == pInt8 || p == pUint8 }

// width is the number of output values per embedding of dim floats.
func (p precision) width(dim int) int {
	if p == pBinary || p == pUbinary {
		return (dim + 7) / 8
	}
	return dim
}

// elemType is the Arrow element type of the output list.
func (p precision) elemType() arrow.DataType {
	switch p {
	case pFloat16:
		return arrow.FixedWidthTypes.Float16
	case pInt8, pBinary:
		return arrow.PrimitiveTypes.Int8
	case pUint8, pUbinary:
		return arrow.PrimitiveTypes.Uint8
	}
	return arrow.PrimitiveTypes.Float32
}

// ranges are int8/uint8 calibration ranges in float32 as numpy computes them.
type ranges struct {
	starts, steps []float32
}

// newRanges derives starts and steps from per-dim minima and maxima exactly
// as quantize_embeddings: steps = (max - min) / 255 in float32.
func newRanges(lo, hi []float32) ranges {
	r := ranges{starts: append([]float32(nil), lo...), steps: make([]float32, len(lo))}
	for i := range lo {
		r.steps[i] = (hi[i] - lo[i]) / 255
	}
	return r
}

// quantizeInt8To writes ((e - start) / step - 128) cast to int8 (numpy's
// astype truncates toward zero; out-of-range values wrap as C casts do on
// x86, which never happens for embeddings inside the calibration range).
func quantizeInt8To(dst []int8, e []float32, r ranges) {
	for i, v := range e {
		dst[i] = int8(castInt(float32((v-r.starts[i])/r.steps[i]) - 128))
	}
}

// quantizeUint8To writes ((e - start) / step) cast to uint8.
func quantizeUint8To(dst []uint8, e []float32, r ranges) {
	for i, v := range e {
		dst[i] = uint8(castInt(float32((v - r.starts[i]) / r.steps[i])))
	}
}

// castInt truncates toward zero like numpy's float→int cast; NaN and
// infinities (a zero step over a constant dimension gives 0/0) map to the
// value x86's cvttss2si gives, the "integer indefinite" 0x80000000.
func castInt(f float32) int64 {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) || f >= 1<<31 || f < -(1<<31) {
		return int64(int32(math.MinInt32))
	}
	return int64(int32(f))
}

// packBitsTo packs e > 0 into bytes, first dimension in the most significant
// bit, as numpy.packbits; signed (binary) subtracts 128.
func packBitsTo(dst []byte, e []float32, signed bool) {
	for i := range dst {
		var b byte
		for j := 0; j < 8; j++ {
			k := i*8 + j
			if k < len(e) && e[k] > 0 {
				b |= 0x80 >> j
			}
		}
		if signed {
			b -= 128
		}
		dst[i] = b
	}
}

func toFloat16(dst []float16.Num, e []float32) {
	for i, v := range e {
		dst[i] = float16.New(v)
	}
}

// ReadRanges reads a calibration ranges file: JSON [[min…],[max…]] (the
// layout of the ranges array sentence-transformers takes, 2×dim).
func ReadRanges(path string) ([2][]float32, error) {
	var out [2][]float32
	data, err := os.ReadFile(path)
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrRanges, err)
	}
	var rows [][]float32
	if err := json.Unmarshal(data, &rows); err != nil {
		return out, fmt.Errorf("%w: %s: %v", ErrRanges, path, err)
	}
	if len(rows) != 2 || len(rows[0]) != len(rows[1]) || len(rows[0]) == 0 {
		return out, fmt.Errorf("%w: %s: want a 2×dim array [[min…],[max…]]", ErrRanges, path)
	}
	return [2][]float32{rows[0], rows[1]}, nil
}
