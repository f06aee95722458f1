package embed

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow/float16"
)

// Precision is an output precision of sentence-transformers'
// quantize_embeddings, by name. The zero value "" means Float32; Parse
// checks a name and UnmarshalText lets a flag.TextVar fill it.
type Precision string

// The precisions.
const (
	Float32 Precision = "float32"
	Float16 Precision = "float16"
	Int8    Precision = "int8"
	Uint8   Precision = "uint8"
	Binary  Precision = "binary"
	Ubinary Precision = "ubinary"
)

// ParsePrecision reads a precision name; "" is Float32.
func ParsePrecision(s string) (Precision, error) {
	return ParseName("precision", s, Float32, Float32, Float16, Int8, Uint8, Binary, Ubinary)
}

// UnmarshalText implements encoding.TextUnmarshaler with ParsePrecision.
func (p *Precision) UnmarshalText(b []byte) error { return UnmarshalName(p, b, ParsePrecision) }

// MarshalText implements encoding.TextMarshaler.
func (p Precision) MarshalText() ([]byte, error) { return []byte(p.orDefault()), nil }

func (p Precision) orDefault() Precision {
	if p == "" {
		return Float32
	}
	return p
}

// NeedsRanges reports whether the precision is calibrated by per-dimension
// ranges.
func (p Precision) NeedsRanges() bool { return p == Int8 || p == Uint8 }

// Width is the number of output values per vector of dim floats: dim, or
// dim bits packed into bytes for Binary and Ubinary.
func (p Precision) Width(dim int) int {
	if p == Binary || p == Ubinary {
		return (dim + 7) / 8
	}
	return dim
}

// ValueBytes is the size of one output value.
func (p Precision) ValueBytes() int {
	switch p.orDefault() {
	case Float32:
		return 4
	case Float16:
		return 2
	}
	return 1
}

// RowBytes is the size of one quantized vector of dim floats.
func (p Precision) RowBytes(dim int) int { return p.Width(dim) * p.ValueBytes() }

// Ranges are int8/uint8 calibration ranges in float32 as numpy computes
// them: per dimension a start and a step.
type Ranges struct {
	starts, steps []float32
}

// NewRanges derives the ranges from per-dimension minima and maxima exactly
// as quantize_embeddings: steps = (max - min) / 255 in float32.
func NewRanges(lo, hi []float32) (Ranges, error) {
	if len(lo) != len(hi) || len(lo) == 0 {
		return Ranges{}, fmt.Errorf("%w: %d minima and %d maxima (want the same non-zero number)", ErrRanges, len(lo), len(hi))
	}
	r := Ranges{starts: append([]float32(nil), lo...), steps: make([]float32, len(lo))}
	for i := range lo {
		r.steps[i] = (hi[i] - lo[i]) / 255
	}
	return r, nil
}

// Dim is the number of dimensions the ranges cover.
func (r Ranges) Dim() int { return len(r.starts) }

// Bounds accumulates per-dimension minima and maxima over vectors, the
// calibration quantize_embeddings does when it is given no ranges.
type Bounds struct {
	lo, hi []float32
	seen   bool
}

// NewBounds returns empty bounds over dim dimensions.
func NewBounds(dim int) *Bounds {
	b := &Bounds{lo: make([]float32, dim), hi: make([]float32, dim)}
	for i := range b.lo {
		b.lo[i], b.hi[i] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	return b
}

// Add widens the bounds to take in v (len(v) is the bounds' dim).
func (b *Bounds) Add(v []float32) {
	b.seen = true
	for d, x := range v[:len(b.lo)] {
		b.lo[d] = min(b.lo[d], x)
		b.hi[d] = max(b.hi[d], x)
	}
}

// Ranges returns the calibration ranges of the vectors added; with none
// added, every start and step is zero.
func (b *Bounds) Ranges() Ranges {
	if !b.seen {
		z := make([]float32, len(b.lo))
		r, _ := NewRanges(z, z)
		return r
	}
	r, _ := NewRanges(b.lo, b.hi)
	return r
}

// QuantizeTo writes n vectors of src (row-major, stride dim) into dst in
// precision p, RowBytes(dim) bytes a row, little-endian as Arrow and numpy
// lay them out: Float32 copies, Float16 rounds to nearest, Int8 and Uint8
// apply r (which must cover dim), Binary and Ubinary pack the signs.
func (p Precision) QuantizeTo(dst []byte, src []float32, n, dim int, r *Ranges) error {
	rb := p.RowBytes(dim)
	if len(dst) < n*rb || len(src) < n*dim {
		return fmt.Errorf("%w: %d bytes for %d rows of %d, %d floats for %d×%d", ErrBuffer, len(dst), n, rb, len(src), n, dim)
	}
	if p.NeedsRanges() && (r == nil || r.Dim() != dim) {
		return fmt.Errorf("%w: %s needs ranges over %d dimensions", ErrRanges, p, dim)
	}
	if n == 0 {
		return nil
	}
	p = p.orDefault()
	for i := 0; i < n; i++ {
		e := src[i*dim : (i+1)*dim]
		out := dst[i*rb : (i+1)*rb]
		switch p {
		case Float32:
			copy(out, unsafe.Slice((*byte)(unsafe.Pointer(&e[0])), 4*dim))
		case Float16:
			h := unsafe.Slice((*float16.Num)(unsafe.Pointer(&out[0])), dim)
			for j, v := range e {
				h[j] = float16.New(v)
			}
		case Int8:
			for j, v := range e {
				out[j] = byte(int8(castInt(float32((v-r.starts[j])/r.steps[j]) - 128)))
			}
		case Uint8:
			for j, v := range e {
				out[j] = uint8(castInt(float32((v - r.starts[j]) / r.steps[j])))
			}
		case Binary, Ubinary:
			packBitsTo(out, e, p == Binary)
		default:
			return fmt.Errorf("%w: precision %q", ErrOptions, string(p))
		}
	}
	return nil
}

// castInt truncates toward zero like numpy's float→int cast; NaN and
// infinities (a zero step over a constant dimension gives 0/0) map to the
// value x86's cvttss2si gives, the "integer indefinite" 0x80000000.
// Out-of-range values wrap as C casts do on x86, which never happens for
// embeddings inside the calibration range.
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

// ValuesTo writes the values of n quantized vectors of dim floats (raw, as
// QuantizeTo writes them) into dst as numbers, p.Width(dim) a row: the
// float16 values widened, the int8 and uint8 codes, the packed bytes of
// Binary (as int8) and Ubinary (as uint8). It is how JSON replies carry
// quantized vectors.
func (p Precision) ValuesTo(dst []float32, raw []byte, n, dim int) error {
	w, rb := p.Width(dim), p.RowBytes(dim)
	if len(dst) < n*w || len(raw) < n*rb {
		return fmt.Errorf("%w: %d floats and %d bytes for %d rows of %d", ErrBuffer, len(dst), len(raw), n, dim)
	}
	if n == 0 {
		return nil
	}
	switch p.orDefault() {
	case Float32:
		copy(dst, unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), n*w))
	case Float16:
		h := unsafe.Slice((*float16.Num)(unsafe.Pointer(&raw[0])), n*w)
		for i, v := range h {
			dst[i] = v.Float32()
		}
	case Int8, Binary:
		for i, b := range raw[:n*w] {
			dst[i] = float32(int8(b))
		}
	default:
		for i, b := range raw[:n*w] {
			dst[i] = float32(b)
		}
	}
	return nil
}
