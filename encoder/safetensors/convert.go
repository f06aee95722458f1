package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
	"unsafe"
)

// convertTo decodes the little-endian elements of src, of dtype dt, into dst.
// The caller guarantees len(src) == len(dst)*dt.Size() and that dt is a
// float dtype.
func convertTo(dst []float32, src []byte, dt DType) {
	switch dt {
	case F32:
		src = src[:4*len(dst)]
		if nativeLittleEndian && len(dst) > 0 {
			// The file's bytes are already float32s in native order, so a
			// plain copy into dst viewed as bytes is exact and runs at memmove
			// speed; viewing float32s as bytes needs no alignment.
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), src)
			return
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		tab := f16Table()
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(tab[binary.LittleEndian.Uint16(src[2*i:])])
		}
	case BF16:
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	default:
		panic("safetensors: convertTo called with dtype " + string(dt))
	}
}

// f16Table holds the float32 bits of every binary16 pattern. The 256 KiB
// table avoids F16ToF32's data-dependent branches, which mispredict on real
// weights (BenchmarkFloat32/F16), and is built only when an F16 tensor is
// first converted. Bits rather than floats are stored so that NaN payloads
// cannot be touched by floating-point moves.
var f16Table = sync.OnceValue(func() *[1 << 16]uint32 {
	var t [1 << 16]uint32
	for i := range t {
		t[i] = math.Float32bits(F16ToF32(uint16(i)))
	}
	return &t
})

// nativeLittleEndian reports whether this machine stores numbers as the
// safetensors format does.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// F16ToF32 converts IEEE 754 binary16 bits to float32. The conversion is
// exact: every binary16 value, subnormals included, is a float32 value;
// infinities stay infinite and a NaN keeps its sign and payload.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0:
		// Zero or subnormal: mant × 2⁻²⁴. The product is exact because mant
		// has at most 10 significant bits and the scale is a power of two.
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(f) | sign)
	case 0x1f:
		// Infinity or NaN: widen the payload into the float32 mantissa.
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	// Normal: rebias the exponent from 15 to 127.
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// BF16ToF32 converts bfloat16 bits to float32. bfloat16 is the upper half of
// a float32, so the conversion is an exact shift.
func BF16ToF32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// guardFault runs fn, turning a memory fault into an error wrapping ErrIO.
// A mapped file that another process truncates while it is open makes reads
// of the lost pages fault; without this guard that would kill the process
// with SIGBUS instead of failing one load.
func guardFault(t *tensor, fn func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			// Only faults carry an address; anything else is a bug to re-raise.
			if _, ok := r.(interface{ Addr() uintptr }); ok {
				err = fmt.Errorf("%s: tensor %q: memory fault reading mapped file (was it truncated?): %v: %w", t.info.File, t.info.Name, r, ErrIO)
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}
