package safetensors

// DType is a safetensors element type, spelled as in the header ("F32").
type DType string

// The dtypes of the safetensors format with whole-byte elements. Only F32,
// F16 and BF16 convert to float32; the others are recognised so that Info
// and DTypes can describe any checkpoint.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
	C64    DType = "C64"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	Bool   DType = "BOOL"
)

// dtypeSizes maps every recognised dtype to its element size in bytes.
// Sub-byte dtypes (F4, F6_*) are deliberately absent: their byte counts do not
// follow from element counts alone, and no encoder checkpoint uses them.
var dtypeSizes = map[DType]int{
	F64: 8, C64: 8, I64: 8, U64: 8,
	F32: 4, I32: 4, U32: 4,
	F16: 2, BF16: 2, I16: 2, U16: 2,
	F8E5M2: 1, F8E4M3: 1, F8E8M0: 1, I8: 1, U8: 1, Bool: 1,
}

// Size returns the size in bytes of one element of d, or 0 when d is not a
// recognised dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Known reports whether d is a recognised dtype.
func (d DType) Known() bool { return dtypeSizes[d] != 0 }

// Float reports whether Float32 can convert tensors of dtype d.
func (d DType) Float() bool { return d == F32 || d == F16 || d == BF16 }
